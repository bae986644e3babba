"""How ``benchmarks/run.py`` times its contenders: side by side, in one process.

Every pair of workload and contender is warmed up and calibrated (a call repeated until a
value lasts ``Settings.min_time``), then timed once per round, in an order that rotates each
round, with the heap built before timing frozen (:func:`frozen_heap`). A value is process CPU
time per call; a :class:`Series` holds one per round, and :func:`paired_ratios` takes ratios
within a round. Also here: the check that every contender gives the workload's usage
(:func:`check_agreement`, :func:`disagreements`), the structure micro-benchmark, the timing of
the server-tool loop without its pings (:func:`ping_check`) and the profile of ``feed``.
``benchmarks/README.md`` says why the runner does not use ``pyperf.Runner``'s worker processes.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import math
import pstats
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pyperf
from contenders import (
    FEED,
    FLOOR,
    HTTPX_SSE,
    MEMORY_CONTENDERS,
    REFERENCE,
    Contender,
    SdkClients,
    contenders,
    ut_feed,
)
from workloads import BIG_STREAM_BYTES, Workload, server_tool_loop


@dataclass
class Series:
    """The values (seconds per call) of one contender on one workload, one per round."""

    loops: int
    warmup: float
    values: list[float] = field(default_factory=list)

    def benchmark(self, name: str) -> pyperf.Benchmark:
        values = self.values if len(self.values) > 1 else self.values * 2
        run = pyperf.Run(
            values,
            warmups=[(self.loops, self.warmup)],
            metadata={"name": name, "loops": self.loops, "unit": "second"},
            collect_metadata=False,
        )
        return pyperf.Benchmark([run])


async def _time(c: Contender, w: Workload, loops: int) -> float:
    gc.collect()
    call = c.call
    # Process CPU time: another process taking the core does not count (issue 16).
    if c.is_async:
        start = time.process_time()
        for _ in range(loops):
            await call(w)
        elapsed = time.process_time() - start
    else:
        start = time.process_time()
        for _ in range(loops):
            call(w)
        elapsed = time.process_time() - start
    return elapsed / loops


async def _result(c: Contender, w: Workload) -> Any:
    return await c.call(w) if c.is_async else c.call(w)


@dataclass(frozen=True)
class Settings:
    rounds: int
    min_time: float  # seconds per value: calls are repeated (loops) to reach it
    max_loops: int
    scale: float
    big_bytes: int
    structure_rounds: int
    traced: bool = True  # also measure the Python heap under tracemalloc
    memory: tuple[str, ...] = MEMORY_CONTENDERS


FULL = Settings(
    rounds=15, min_time=0.05, max_loops=1000, scale=1.0, big_bytes=BIG_STREAM_BYTES,
    structure_rounds=15,
)  # fmt: skip
QUICK = Settings(
    rounds=5, min_time=0.02, max_loops=200, scale=1.0, big_bytes=BIG_STREAM_BYTES,
    structure_rounds=5,
)  # fmt: skip
SMOKE = Settings(
    rounds=2,
    min_time=0.0,
    max_loops=1,
    scale=0.01,
    big_bytes=2_000_000,
    structure_rounds=2,
    traced=False,
    memory=("feed",),
)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave everything built so far out of the garbage collector's work while timing.

    The workloads, the modules and the SDK's models make a full collection cost about
    200 ms; frozen, it costs microseconds, and the collection before each value only clears
    what the previous contender left. Every contender allocates after the freeze alike.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _calibrate(
    workloads: list[Workload], cs: list[Contender], s: Settings, log: Callable[[str], None]
) -> dict[str, dict[str, Series]]:
    """Run each pair once, then choose its loops and record a warm-up value."""
    series: dict[str, dict[str, Series]] = {}
    for w in workloads:
        series[w.name] = {}
        for c in cs:
            start = time.process_time()
            await _result(c, w)
            first = time.process_time() - start
            loops = 1 if first <= 0 else math.ceil(s.min_time / first)
            loops = max(1, min(s.max_loops, loops))
            warm = await _time(c, w, loops)
            series[w.name][c.key] = Series(loops=loops, warmup=warm)
        log(f"  calibrated {w.name}")
    return series


async def measure(
    workloads: list[Workload], cs: list[Contender], s: Settings, log: Callable[[str], None]
) -> dict[str, dict[str, Series]]:
    """Warm up and calibrate each pair, then time every pair once per round."""
    with frozen_heap():
        series = await _calibrate(workloads, cs, s, log)
        for r in range(s.rounds):
            start = time.perf_counter()
            for w in workloads:
                shift = r % len(cs)
                for c in cs[shift:] + cs[:shift]:
                    sr = series[w.name][c.key]
                    sr.values.append(await _time(c, w, sr.loops))
            log(f"  round {r + 1}/{s.rounds}: {time.perf_counter() - start:.1f} s")
    return series


async def final_usages(workloads: list[Workload], cs: list[Contender]) -> dict[str, dict[str, Any]]:
    """Run every contender once per workload: ``{workload: {contender: final usage}}``."""
    # Plain loops: an await inside a nested comprehension is a SyntaxError before Python 3.11.
    results: dict[str, dict[str, Any]] = {}
    for w in workloads:
        results[w.name] = {}
        for c in cs:
            if c.returns_usage:
                results[w.name][c.key] = await _result(c, w)
    return results


def check_agreement(workloads: list[Workload]) -> dict[str, dict[str, Any]]:
    """The final usage every contender gives on every workload (the smoke test's check)."""

    async def main() -> dict[str, dict[str, Any]]:
        sdk = SdkClients()
        try:
            return await final_usages(workloads, contenders(sdk))
        finally:
            await sdk.aclose()

    return anyio.run(main)


def disagreements(workloads: list[Workload], results: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for w in workloads:
        for key, usage in results[w.name].items():
            if usage != w.usage:
                problems.append(f"{w.name}: {key} gives {usage!r}, expected {w.usage!r}")
    return problems


async def measure_contenders(
    workloads: list[Workload], s: Settings, log: Callable[[str], None]
) -> tuple[list[Contender], dict[str, dict[str, Series]]]:
    """Check that every contender agrees on every workload, then time them all."""
    sdk = SdkClients()
    try:
        cs = contenders(sdk)
        problems = disagreements(workloads, await final_usages(workloads, cs))
        if problems:
            raise SystemExit("contenders disagree:\n" + "\n".join(problems))
        log("all contenders agree on every workload")
        series = await measure(workloads, cs, s, log)
    finally:
        await sdk.aclose()
    return cs, series


def paired_ratios(series: dict[str, Series], key: str, ref: str = REFERENCE) -> list[float]:
    """The ratio contender/reference within each round."""
    return [a / b for a, b in zip(series[key].values, series[ref].values, strict=True)]


# -- the structure micro-benchmark -----------------------------------------------------------


def structure_bench(rounds: int, min_time: float) -> dict[str, Series]:
    """usagetally's converter against the SDK's pydantic model, on one usage payload.

    The payload and both calls are those of ``benchmarks/bench_structure.py`` (which times
    them with ``pyperf.Runner``); here they run side by side, alternating, in this process.
    """
    import bench_structure

    bench_structure.check_same_result()
    cases: dict[str, Callable[[], object]] = {
        "usagetally": bench_structure.structure_usagetally,
        "sdk": bench_structure.structure_sdk,
    }
    loops = 1
    if min_time > 0:
        start = time.perf_counter()
        for _ in range(100):
            cases["sdk"]()
        loops = max(1, math.ceil(min_time / ((time.perf_counter() - start) / 100)))
    out: dict[str, Series] = {}
    for key, case in cases.items():
        out[key] = Series(loops=loops, warmup=_time_sync(case, loops))
    for r in range(rounds):
        for key in list(cases) if r % 2 == 0 else list(reversed(cases)):
            out[key].values.append(_time_sync(cases[key], loops))
    return out


def _time_sync(case: Callable[[], object], loops: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(loops):
        case()
    return (time.perf_counter() - start) / loops


# -- what a missed target is checked with ----------------------------------------------------


def ping_check(w: Workload, s: Settings) -> list[tuple[Workload, dict[str, Series]]]:
    """Time the server-tool loop with and without its pings, side by side."""
    bare = server_tool_loop(
        turns=max(2, int(8 * s.scale)),
        text_per_turn=max(1, int(60 * s.scale)),
        pings_per_turn=max(1, int(250 * s.scale)),
        answer_deltas=max(1, int(2_000 * s.scale)),
        pings=False,
    )
    series = anyio.run(measure, [w, bare], [FEED, HTTPX_SSE, FLOOR], s, lambda message: None)
    return [(w, series[w.name]), (bare, series[bare.name])]


def profile_feed(w: Workload, repeat: int = 5, top: int = 8) -> str:
    """A cProfile of usagetally's feed on ``w``: the functions with the most own time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        ut_feed(w)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    lines = [f"{'calls':>9} {'own ms':>9} {'share':>6}  function"]
    for (filename, line, name), (_, ncalls, own, _cum, _) in rows:
        where = f"{Path(filename).name}:{line}" if line else filename
        share = own / total
        lines.append(
            f"{ncalls // repeat:>9} {own / repeat * 1e3:>9.2f} {share:>6.0%}  {name} ({where})"
        )
    return "\n".join(lines)
