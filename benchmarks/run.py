"""Time usagetally side by side with what users would use instead, and write the results.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``). Options: ``--quick`` for a
short run, ``--smoke`` for the test gate (tiny sizes, nothing written unless
``--output-dir`` is given), ``--json PATH`` to keep the raw values as a pyperf suite.

Every contender reads the same bytes, in the same chunks, and returns the final usage in
wire form; all of them are timed in one process, inside one asyncio event loop, in
interleaved rounds (the order rotates each round) so that noise from the shared machine hits
every contender alike. Ratios are taken within a round, contender against usagetally, and
their median is reported. Statistics (median, standard deviation) are pyperf's. Peak memory
on the 200 MB stream is measured in a fresh subprocess per contender. See
``benchmarks/README.md`` for why the runner does not use ``pyperf.Runner``'s worker
processes.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import cProfile
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import types
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pyperf
import targets as issue16
from workloads import (
    BIG_STREAM_BYTES,
    Workload,
    big_stream_chunks,
    big_stream_size,
    big_stream_usage,
    long_line,
    server_tool_loop,
    standard_workloads,
)

import usagetally

if TYPE_CHECKING:
    from anthropic.types.beta import BetaMessageParam

ROOT = Path(__file__).resolve().parent.parent
MODEL = "claude-sonnet-4-6"
MESSAGES: list[BetaMessageParam] = [{"role": "user", "content": "Tell me about the migration."}]
TEXT_WORKLOAD = "text-20000"


# -- the contenders ------------------------------------------------------------------------
#
# Each takes a workload and returns its final usage in wire form (a dict), except the floor,
# which parses nothing and returns the number of blocks.


def ut_feed(w: Workload) -> dict[str, Any]:
    return feed_chunks(w.chunks)


def feed_chunks(chunks: Iterable[bytes]) -> dict[str, Any]:
    acc = usagetally.UsageAccumulator()
    feed = acc.feed
    for chunk in chunks:
        feed(chunk)
    return _wire(acc.finish())


async def _byte_source(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def ut_accumulate(w: Workload) -> dict[str, Any]:
    return _wire(await usagetally.accumulate(_byte_source(w.chunks)))


def _wire(usage: usagetally.BetaUsage) -> dict[str, Any]:
    wire: dict[str, Any] = usagetally.converter.unstructure(usage)
    return wire


def httpx_sse_json(w: Workload) -> dict[str, Any]:
    return httpx_sse_chunks(w.chunks)


def httpx_sse_decoders() -> Any:
    """httpx-sse's ``_decoders`` module (its line decoder and its event decoder).

    httpx-sse's package ``__init__`` imports httpx, which this project does not install
    (the SDK uses httpx2), and the decoders need nothing of it. Without httpx the module is
    loaded from httpx-sse's own files under a private package name, so ``httpx_sse`` itself
    is never replaced in ``sys.modules``.
    """
    try:
        from httpx_sse import _decoders
    except ImportError:
        private = "_bench_httpx_sse"
        if private not in sys.modules:
            spec = importlib.util.find_spec("httpx_sse")
            if spec is None or not spec.submodule_search_locations:
                raise
            package = types.ModuleType(private)
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules[private] = package
        _decoders = importlib.import_module(private + "._decoders")
    return _decoders


def httpx_sse_chunks(chunks: Iterable[bytes]) -> dict[str, Any]:
    """httpx-sse's own decoders (UTF-8 text, lines, events), json.loads of every event."""
    decoders = httpx_sse_decoders()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines = decoders.SSELineDecoder()
    events = decoders.SSEDecoder()
    usage: dict[str, Any] = {}
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            sse = events.decode(line)
            if sse is None:
                continue
            event = json.loads(sse.data)
            kind = event.get("type")
            if kind == "message_start":
                usage = dict(event["message"]["usage"])
            elif kind == "message_delta":
                usage.update((k, v) for k, v in event["usage"].items() if v is not None)
    for line in lines.flush():
        events.decode(line)
    return usage


def floor_split(w: Workload) -> int:
    return len(w.data.split(b"\n\n"))


def floor_count(w: Workload) -> int:
    return issue16.scan_floor(w.chunks)


def handwritten(w: Workload) -> dict[str, Any]:
    return issue16.handwritten(w.chunks)


class SdkClients:
    """One ``AsyncAnthropic`` over ``httpx2.MockTransport`` serving the current workload.

    Like ``usagetally.testing.anthropic_client`` but the body is sent in the workload's
    chunks (64 KiB, or 1 KiB for the long lines), as every other contender reads it.
    """

    def __init__(self) -> None:
        import anthropic  # imported here: the memory subprocesses do without it
        import httpx2

        self.chunks: list[bytes] = []

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(
                200,
                headers={"content-type": "text/event-stream"},
                content=_byte_source(self.chunks),
            )

        http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        self.client = anthropic.AsyncAnthropic(api_key="bench", max_retries=0, http_client=http)

    async def stream_final_message(self, w: Workload) -> dict[str, Any]:
        self.chunks = w.chunks
        async with self.client.beta.messages.stream(
            model=MODEL,
            max_tokens=64_000,
            messages=MESSAGES,
        ) as stream:
            message = await stream.get_final_message()
        return message.usage.to_dict(mode="json", warnings=False)

    async def create_stream(self, w: Workload) -> dict[str, Any]:
        self.chunks = w.chunks
        stream = await self.client.beta.messages.create(
            model=MODEL,
            max_tokens=64_000,
            messages=MESSAGES,
            stream=True,
        )
        usage: dict[str, Any] = {}
        async with stream:
            async for event in stream:
                if event.type == "message_start":
                    usage = event.message.usage.to_dict(mode="json", warnings=False)
                elif event.type == "message_delta":
                    delta = event.usage.to_dict(mode="json", warnings=False)
                    usage.update((k, v) for k, v in delta.items() if v is not None)
        return usage

    async def aclose(self) -> None:
        await self.client.close()


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    call: Callable[[Workload], Any]
    is_async: bool = False
    returns_usage: bool = True


FEED = Contender("feed", "usagetally `UsageAccumulator.feed` + `finish`", ut_feed)
HTTPX_SSE = Contender("httpx-sse", "httpx-sse decoder + `json.loads` + merge", httpx_sse_json)
FLOOR = Contender("floor", "floor: `bytes.split(b'\\n\\n')`", floor_split, returns_usage=False)
HANDWRITTEN = Contender(
    "handwritten",
    "practical floor: a hand-written accumulator for canonical streams (`benchmarks/targets.py`)",
    handwritten,
)
SCAN = Contender(
    "scan", "scan floor: `bytes.count(b'\\n')` per chunk", floor_count, returns_usage=False
)


def contenders(sdk: SdkClients) -> list[Contender]:
    return [
        FEED,
        Contender(
            "accumulate", "usagetally `accumulate` (async bytes)", ut_accumulate, is_async=True
        ),
        Contender(
            "sdk-stream",
            "SDK `beta.messages.stream()` + `get_final_message()`",
            sdk.stream_final_message,
            is_async=True,
        ),
        Contender(
            "sdk-create",
            "SDK `beta.messages.create(stream=True)`, merged by hand",
            sdk.create_stream,
            is_async=True,
        ),
        HTTPX_SSE,
        HANDWRITTEN,
        FLOOR,
        SCAN,
    ]


REFERENCE = "feed"


def join_chunks(w: Workload) -> int:
    return len(b"".join(w.chunks))


def sweep_contenders() -> list[Contender]:
    """What the long-line sweep times: usagetally, httpx-sse, and joining the chunks."""
    return [
        FEED,
        HTTPX_SSE,
        Contender("join", "`b''.join(chunks)`, nothing parsed", join_chunks, returns_usage=False),
    ]


def sweep_workloads(scale: float) -> list[Workload]:
    base = max(16 * 1024, int(1024 * 1024 * scale))
    return [long_line(base * k) for k in (1, 2, 4, 8)]


MEMORY_CONTENDERS = ("feed", "accumulate", "httpx-sse")


# -- measuring -------------------------------------------------------------------------------


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


# -- memory on the 200 MB stream -------------------------------------------------------------


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise LookupError(name)


def _reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM) of this process; False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") <= _status_kib("VmRSS") + 64


def _consume(key: str, chunks: Iterable[bytes]) -> dict[str, Any]:
    if key == "feed":
        return feed_chunks(chunks)
    if key == "accumulate":

        async def main() -> dict[str, Any]:
            return _wire(await usagetally.accumulate(_byte_source(chunks)))

        return anyio.run(main)
    if key == "httpx-sse":
        return httpx_sse_chunks(chunks)
    if key == "generate":
        for _ in chunks:
            pass
        return {}
    raise ValueError(key)


def memory_child(key: str, total: int, use_tracemalloc: bool) -> None:
    """Consume the lazy stream once, after a warm-up, and print what it cost as JSON."""
    _consume(key, big_stream_chunks(1))  # warm-up (1 MB): pool, code paths, caches
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    baseline = _status_kib("VmRSS")
    reset = _reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    start = time.perf_counter()
    usage = _consume(key, big_stream_chunks(total))
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if use_tracemalloc else 0
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "key": key,
        "bytes": big_stream_size(total),
        "seconds": seconds,
        "growth_kib": peak - baseline,
        "method": "VmHWM reset" if reset else "ru_maxrss (an upper bound)",
        "traced_bytes": traced_peak - traced_before,
        "usage_ok": key == "generate" or usage == big_stream_usage(total),
    }
    print(json.dumps(result))


def run_memory_child(key: str, total: int, use_tracemalloc: bool = False) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__)), "--memory-child", key, "--bytes", str(total)]
    if use_tracemalloc:
        args.append("--tracemalloc")
    done = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["usage_ok"]:
        raise SystemExit(f"memory run of {key}: wrong final usage")
    return result


@dataclass
class Memory:
    key: str
    rss: dict[str, Any]
    traced: dict[str, Any] | None


def measure_memory(
    total: int, keys: Iterable[str], traced: bool, log: Callable[[str], None]
) -> list[Memory]:
    out = []
    for key in ("generate", *keys):
        log(f"memory: {key}")
        rss = run_memory_child(key, total)
        heap = run_memory_child(key, total, True) if traced and key != "httpx-sse" else None
        out.append(Memory(key, rss, heap))
    return out


# -- profiling -------------------------------------------------------------------------------


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


# -- the report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, LookupError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = []
    for dist in ("usagetally", "anthropic", "httpx2", "httpx-sse", "pydantic", "anyio", "pyperf"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
    }


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _x(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


@dataclass
class Target:
    key: str
    workload: str
    text: str
    figure: str
    met: bool
    limit: str = ""


@dataclass
class Report:
    mode: str
    settings: Settings
    workloads: list[Workload]
    contenders: list[Contender]
    series: dict[str, dict[str, Series]]
    structure: dict[str, Series]
    sweep: dict[str, dict[str, Series]]
    sweep_contenders: list[Contender]
    memory: list[Memory]
    started: datetime.datetime
    seconds: float
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    profiles: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    ping_check: list[tuple[Workload, dict[str, Series]]] = field(default_factory=list)
    practical: issue16.Results | None = None  # issue 16's targets (benchmarks/targets.py)

    def median(self, workload: str, key: str) -> float:
        return statistics.median(self.series[workload][key].values)

    def ratio(self, workload: str, key: str, ref: str = REFERENCE) -> float:
        return statistics.median(paired_ratios(self.series[workload], key, ref))


def _across(a: Series, b: Series) -> float:
    """The median over rounds of b/a, two workloads of the same round."""
    return statistics.median(y / x for x, y in zip(a.values, b.values, strict=True))


def evaluate(report: Report) -> None:
    """Check the issue's targets, and profile usagetally where one is missed."""
    names = [w.name for w in report.workloads]
    text = TEXT_WORKLOAD if TEXT_WORKLOAD in names else names[0]
    streams = names[:3]
    lines = [n for n in names if n.startswith("line-")]

    def add(key: str, workload: str, text_: str, figure: str, met: bool) -> None:
        report.targets.append(Target(key, workload, text_, figure, met))

    r = report.ratio(text, "sdk-stream")
    add(
        "sdk-stream",
        text,
        f"at least 100x faster than `messages.stream()` + `get_final_message()` (`{text}`)",
        _x(r),
        r >= 100,
    )
    r = report.ratio(text, "sdk-create")
    add(
        "sdk-create",
        text,
        f"at least 30x faster than iterating `create(stream=True)` (`{text}`)",
        _x(r),
        r >= 30,
    )
    for name in streams:
        r = report.ratio(name, "httpx-sse")
        add(
            "httpx-sse",
            name,
            f"at least 8x faster than httpx-sse + `json.loads` (`{name}`)",
            _x(r),
            r >= 8,
        )
    for name in streams:
        r = 1 / report.ratio(name, "handwritten")
        add(
            "handwritten",
            name,
            f"at most 2x the hand-written accumulator (`{name}`)",
            _x(r),
            r <= 2,
        )
    for name in streams:
        r = 1 / report.ratio(name, "floor")
        add("floor", name, f"within 3x of the `bytes.split` floor (`{name}`)", _x(r), r <= 3)
    if len(lines) == 2:
        small, big = lines
        r = _across(report.series[small]["feed"], report.series[big]["feed"])
        add(
            "linear",
            big,
            f"`{big}` costs at most 6x `{small}` (linear: 4x, quadratic: 16x)",
            _x(r),
            r <= 6,
        )
    for m in report.memory:
        if m.key in ("feed", "accumulate"):
            mb = m.rss["growth_kib"] / 1024
            add(
                "memory",
                "",
                f"peak RSS growth under 10 MB on the {m.rss['bytes'] / 1e6:.0f} MB stream "
                f"(`{m.key}`)",
                f"{mb:.1f} MB",
                mb < 10,
            )
    by_name = {w.name: w for w in report.workloads}
    for t in report.targets:
        if t.met:
            continue
        if t.workload in by_name and t.workload not in report.profiles:
            report.profiles[t.workload] = profile_feed(by_name[t.workload])
        t.limit = LIMITS.get((t.key, t.workload)) or LIMITS.get((t.key, ""), "")
        if t.workload == "server-tools" and not report.ping_check:
            report.ping_check = ping_check(by_name[t.workload], report.settings)


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


# What limits a target when it is missed, found by profiling during development (cProfile,
# counting what the decoder scans, and timing variants of the core); shown only for a
# missed target, next to the profile of the run itself.
_PING_LIMIT = (
    "the pings. `ping` was in the accumulator's keep set (`_KEPT` in "
    "`src/usagetally/_accumulator.py`, kept so that a gap in event indices after "
    "`message_stop` means a forbidden event), so the decoder's pass-over scanner "
    "(`_PassOver.skip` and `_pass_region` in `src/usagetally/_sse.py`), which passes over whole "
    "`content_block_*` events on the bytes, stops at every ping: each is split into lines, "
    "built as a `ServerSentEvent` and dispatched. A ping amid skippable events also makes "
    "`_pass_region`'s counting check fail, and the region is shrunk and counted again until "
    "the ping is cornered (about nine failed checks per isolated ping with 64 KiB chunks, "
    "each counting LFs, blocks and every known event name): on this workload `_pass_region` "
    "examines 2.6x the stream's bytes (1.1x on `text-20000`). The table below, from this "
    "run, shows the same stream without its pings. During development, on 21 MB of the "
    "lazy big stream (one ping every 500 deltas), `feed` ran at 124 MB/s, and at 339 MB/s "
    "with `ping` taken out of the keep set. The fix belongs in the core: pass over `ping` "
    "on the bytes until `message_stop` (and only then widen the decoder's `keep` to see "
    "every later event), and when a region check fails, pass the region up to the first "
    "event that cannot be skipped instead of shrinking it"
)
LIMITS: dict[tuple[str, str], str] = {
    ("httpx-sse", "server-tools"): _PING_LIMIT,
    ("floor", "server-tools"): _PING_LIMIT,
    ("linear", ""): (
        "the cache, not the algorithm. The 1 KiB pieces of the line are held until its LF "
        "arrives (`SSEDecoder._partial`) and joined once, so the work is linear, but a 4 MiB "
        "line no longer fits in this CPU's 2 MiB L2 cache per core while a 1 MiB line does. "
        "The sweep above shows it: from 4 to 8 MiB the cost doubles, and joining the same "
        "chunks with no parsing at all (`b''.join`) takes the same step from 1 to 4 MiB. "
        "A decoder could avoid holding a data line of an event it will not keep only when "
        "the `event:` line came first and no later one can change the type, which the spec "
        "does not promise"
    ),
}


def _sentence(text: str) -> str:
    return "What limits it: " + text + "."


def render(report: Report, chart: str | None) -> str:
    m = machine()
    out: list[str] = []
    put = out.append
    put("# Performance\n")
    put(
        "<!-- Generated by benchmarks/run.py; do not edit by hand. Rerun: make bench -->\n\n"
        "How long it takes to get the final usage out of a streamed Messages API response: "
        "usagetally side by side with what you would use instead, on the same bytes, in the "
        "same chunks, in one process. Lower is better; the ratio columns say how many times "
        "longer a contender takes than usagetally, as the median of the ratios taken within "
        "each round.\n\n"
    )
    load0, load1 = report.load
    put(
        f"Run of {report.started:%Y-%m-%d %H:%M} UTC, mode `{report.mode}` "
        f"({report.settings.rounds} rounds after a warm-up and calibration; "
        f"each value repeats a call until it lasts {report.settings.min_time * 1e3:.0f} ms); "
        f"the whole run took {report.seconds:.0f} s.\n"
    )
    if report.mode == "smoke":
        put("**Smoke run: tiny workloads, the figures mean nothing.**\n")
    put("\n## Machine\n\n")
    put(f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM\n")
    put(f"- OS: {m['os']}\n- Python: {m['python']}\n- Packages: {m['packages']}\n")
    put(
        f"- Load average (1, 5, 15 min): {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the "
        f"start, {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end. This is a shared "
        "2-core machine where other work (test suites) runs at the same time: medians and "
        "ratios within a round are reported because they resist that noise; absolute times "
        "will differ on your machine, the ratios much less.\n"
    )
    if chart:
        put(f"\n![Median time per workload and contender (log scale)]({chart})\n")
    put("\n## Workloads\n\n")
    put("| workload | what | bytes | events | chunks |\n|---|---|---:|---:|---|\n")
    for w in report.workloads:
        put(
            f"| `{w.name}` | {w.description} | {len(w.data):,} | {w.events:,} | "
            f"{len(w.chunks):,} of {w.chunk_size // 1024} KiB |\n"
        )
    put(
        "\nAll are generated by `benchmarks/workloads.py`, deterministically (fixed seeds), as "
        "valid Anthropic SSE with realistic text deltas; every contender returns the same "
        "final usage on each (the runner checks it before timing, and so does "
        "`tests/test_benchmarks_smoke.py`).\n"
    )
    put("\n## Results\n\n")
    labels = {c.key: c.label for c in report.contenders}
    for w in report.workloads:
        put(f"\n### `{w.name}`\n\n")
        put(
            "| contender | median (ms) | stdev (ms) | vs `feed` | vs `accumulate` |\n"
            "|---|---:|---:|---:|---:|\n"
        )
        series = report.series[w.name]
        for c in report.contenders:
            sr = series[c.key]
            bench = sr.benchmark(f"{w.name}/{c.key}")
            rf = "1" if c.key == "feed" else _x(report.ratio(w.name, c.key, "feed"))
            ra = "1" if c.key == "accumulate" else _x(report.ratio(w.name, c.key, "accumulate"))
            put(
                f"| {labels[c.key]} | {_ms(bench.median())} | {_ms(bench.stdev())} "
                f"| {rf} | {ra} |\n"
            )
    if report.sweep:
        put("\n### Long lines: cost against size\n\n")
        sizes = list(report.sweep)
        put(
            "| contender | "
            + " | ".join(f"`{n}` (ms)" for n in sizes)
            + f" | `{sizes[2]}` / `{sizes[0]}` | `{sizes[3]}` / `{sizes[2]}` |\n"
            + "|---|"
            + "---:|" * (len(sizes) + 2)
            + "\n"
        )
        for c in report.sweep_contenders:
            meds = [_ms(statistics.median(report.sweep[n][c.key].values)) for n in sizes]
            r41 = _across(report.sweep[sizes[0]][c.key], report.sweep[sizes[2]][c.key])
            r84 = _across(report.sweep[sizes[2]][c.key], report.sweep[sizes[3]][c.key])
            put(f"| {c.label} | " + " | ".join(meds) + f" | {_x(r41)} | {_x(r84)} |\n")
        put(
            "\nThe same event with a data line of each size, fed in 1 KiB chunks, timed the "
            "same way as above (the ratios are medians of ratios within a round). Linear time "
            "doubles with each step; quadratic time quadruples. `b''.join` of the chunks "
            "parses nothing: it is the cost of holding and joining the line once, which is "
            "what the memory hierarchy of the machine charges for a line of that size.\n"
        )
    put("\n### Structuring one usage with four iterations\n\n")
    st = report.structure
    ours = st["usagetally"].benchmark("structure/usagetally")
    sdk = st["sdk"].benchmark("structure/sdk")
    r = statistics.median(
        a / b for a, b in zip(st["sdk"].values, st["usagetally"].values, strict=True)
    )
    put(
        "| contender | median (µs) | stdev (µs) | ratio |\n|---|---:|---:|---:|\n"
        f"| usagetally `converter.structure(payload, BetaUsage)` | {ours.median() * 1e6:.2f} "
        f"| {ours.stdev() * 1e6:.2f} | 1 |\n"
        f"| SDK `BetaUsage.model_validate(payload)` | {sdk.median() * 1e6:.2f} "
        f"| {sdk.stdev() * 1e6:.2f} | {_x(r)} |\n"
        "\nThe payload and the two calls are those of `benchmarks/bench_structure.py`: a "
        "`BetaUsage` with four iterations (compaction, message, advisor_message, message), "
        "each with its cache split, plus `server_tool_use` and `output_tokens_details`; here "
        "the two alternate in one process. Structuring is paid two or three times per stream "
        "(each `message_start` and `message_delta`), never per event.\n"
    )
    put("\n### Memory on the 200 MB stream\n\n")
    gen = next((m for m in report.memory if m.key == "generate"), None)
    gen_seconds = gen.rss["seconds"] if gen else 0.0
    put(
        "| contender | stream | peak RSS growth | Python heap peak | time (one run) "
        "| throughput |\n"
        "|---|---:|---:|---:|---:|---:|\n"
    )
    for mem in report.memory:
        heap = f"{mem.traced['traced_bytes'] / 1e6:.2f} MB" if mem.traced else "not measured"
        seconds = mem.rss["seconds"]
        size = mem.rss["bytes"]
        if mem.key == "generate":
            label = "the generator alone (included in every row below)"
            speed = f"{size / 1e6 / max(seconds, 1e-9):,.0f} MB/s"
        else:
            label = labels.get(mem.key, mem.key)
            speed = f"{size / 1e6 / max(seconds - gen_seconds, 1e-9):,.0f} MB/s"
        put(
            f"| {label} | {size / 1e6:.0f} MB | {mem.rss['growth_kib'] / 1024:.1f} MB | {heap} "
            f"| {seconds:.2f} s | {speed} |\n"
        )
    method = report.memory[0].rss["method"] if report.memory else "none"
    put(
        "\nMethod: each row runs in a fresh subprocess "
        "(`benchmarks/run.py --memory-child NAME`). It first consumes a 1 MB stream (imports, "
        "caches and the generator's pool are then in place), collects garbage and reads its "
        "resident set (`VmRSS` in `/proc/self/status`); it then resets the kernel's peak "
        "(`echo 5 > /proc/self/clear_refs`, so that `VmHWM` restarts from the current RSS) "
        "and consumes the stream, which `benchmarks/workloads.py` generates lazily in 64 KiB "
        "chunks from a pool of about 1.4 MB, copying one block (about 1 MB) at a time to set "
        "its index. Growth is `VmHWM` after minus `VmRSS` before: what the process needed on "
        "top of what it had, generator included. Where the reset is not allowed the runner "
        "falls back on `getrusage(RUSAGE_SELF).ru_maxrss` after minus `VmRSS` before, an upper "
        "bound. The heap column comes from a second run under `tracemalloc` (peak traced "
        "memory minus traced memory before; the generator's block copies are in it). Method "
        f"used in this run: {method}. Throughput subtracts the generator's own time. The SDK "
        "is left out: `get_final_message()` keeps the whole text, and building it from 1.5 "
        "million deltas takes hours.\n"
    )
    put("\n## Targets\n\n")
    put("Targets of issue 5, ratios from this run.\n\n| target | measured | |\n|---|---:|---|\n")
    for t in report.targets:
        put(f"| {t.text} | {t.figure} | {'met' if t.met else '**missed**'} |\n")
    missed = [t for t in report.targets if not t.met]
    if missed:
        put("\n### What limits the missed targets\n")
        limits: dict[str, list[Target]] = {}
        for t in missed:
            limits.setdefault(t.limit, []).append(t)
        for limit, ts in limits.items():
            put("\n" + "".join(f"- {t.text}: {t.figure}\n" for t in ts))
            put(f"\n{_sentence(limit) if limit else 'Not analysed yet; see the profile below.'}\n")
        if report.ping_check:
            pc = report.ping_check
            put(
                "\nThe same server-tool loop with and without its pings, timed side by side "
                "in this run:\n\n"
                "| stream | events | `feed` (ms) | httpx-sse (ms) | floor (ms) "
                "| `feed` / floor | httpx-sse / `feed` |\n|---|---:|---:|---:|---:|---:|---:|\n"
            )
            for w, series in pc:
                med = {k: statistics.median(v.values) for k, v in series.items()}
                to_floor = 1 / statistics.median(paired_ratios(series, "floor"))
                sse = statistics.median(paired_ratios(series, "httpx-sse"))
                put(
                    f"| `{w.name}` | {w.events:,} | {_ms(med['feed'])} "
                    f"| {_ms(med['httpx-sse'])} | {_ms(med['floor'])} | {_x(to_floor)} "
                    f"| {_x(sse)} |\n"
                )
        for name, prof in report.profiles.items():
            put(
                f"\nProfile of `UsageAccumulator.feed` on `{name}` in this run (cProfile, per "
                f"stream, the functions with the most own time):\n\n```text\n{prof}\n```\n"
            )
    if report.practical is not None:
        put("\n## Targets of issue 16: the practical floor\n\n")
        put(
            "Each figure is a ratio of process CPU times taken side by side in this run by "
            "`benchmarks/targets.py` (interleaved cases, order rotating each round, median of "
            "the per-round ratios; its docstring says how each is taken). The hand-written "
            "accumulator finds the usage events by name and `json.loads` only their data "
            "lines: correct on canonical streams only.\n\n"
            "| target | measured | limit | |\n|---|---:|---:|---|\n"
        )
        for f in report.practical.figures:
            op = ">=" if f.higher_is_better else "<="
            put(
                f"| {f.name} | {f.measured:.2f}{f.unit} | {op} {f.target:g}{f.unit} "
                f"| {'met' if f.met else '**missed**'} |\n"
            )
        for problem in report.practical.problems:
            put(f"\n- {problem}\n")
    put("\n## How to rerun\n\n")
    put(
        "```sh\nmake bench                                   # the full run, rewrites this page\n"
        ".venv/bin/python benchmarks/run.py --quick    # fewer rounds\n"
        ".venv/bin/python benchmarks/run.py --json results.json  # also keep the raw values\n"
        ".venv/bin/python benchmarks/run.py --ratios   # only issue 16's ratios\n"
        "```\n\n"
        "The raw values are a pyperf suite: `python -m pyperf stats results.json`, or "
        "`python -m pyperf compare_to old.json new.json` between two runs. "
        "`benchmarks/README.md` describes the contenders, the workloads and why the "
        "runner measures in one process.\n"
    )
    return "".join(out)


def draw(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [w.name for w in report.workloads]
    cs = report.contenders
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    width = 0.8 / len(cs)
    for i, c in enumerate(cs):
        xs = [j + (i - (len(cs) - 1) / 2) * width for j in range(len(names))]
        ys = [report.median(n, c.key) * 1e3 for n in names]
        errs = [
            statistics.stdev(report.series[n][c.key].values) * 1e3
            if len(report.series[n][c.key].values) > 1
            else 0.0
            for n in names
        ]
        label = c.label.replace("`", "")
        ax.bar(xs, ys, width, yerr=errs, label=label, capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("median time per stream (ms, log scale)")
    ax.set_title("Final usage of a stream: usagetally and the alternatives (lower is better)")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def dump_json(report: Report, path: Path) -> None:
    suite = pyperf.BenchmarkSuite(
        [
            sr.benchmark(f"{w}/{key}")
            for w, by_key in report.series.items()
            for key, sr in by_key.items()
        ]
        + [sr.benchmark(f"structure/{key}") for key, sr in report.structure.items()]
    )
    suite.dump(str(path), replace=True)


# -- main ------------------------------------------------------------------------------------


async def _measure_all(
    workloads: list[Workload], s: Settings, log: Callable[[str], None]
) -> tuple[list[Contender], dict[str, dict[str, Series]]]:
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


def main(argv: list[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, for the test gate")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where performance.md and _static/performance.png go (default: docs/, "
        "nothing for --smoke)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write a pyperf suite here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--memory-child", choices=(*MEMORY_CONTENDERS, "generate"))
    parser.add_argument("--bytes", type=int, default=BIG_STREAM_BYTES)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--ratios", action="store_true", help="only issue 16's ratios (benchmarks/targets.py)"
    )
    args = parser.parse_args(argv)
    if args.ratios:
        issue16.main(["--quick"] if args.quick else [])
        raise SystemExit(0)
    if args.memory_child:
        memory_child(args.memory_child, args.bytes, args.tracemalloc)
        raise SystemExit(0)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    settings, mode_name = (SMOKE, "smoke") if args.smoke else (FULL, "full")
    if args.quick:
        settings, mode_name = QUICK, "quick"
    output: Path | None = args.output_dir
    if output is None and not args.smoke:
        output = ROOT / "docs"
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    load0 = os.getloadavg()
    log(f"generating workloads (scale {settings.scale})")
    workloads = standard_workloads(settings.scale)
    cs, series = anyio.run(_measure_all, workloads, settings, log)
    log("long-line sweep")
    sweep_ws = sweep_workloads(settings.scale)
    sweep_cs = sweep_contenders()
    sweep = anyio.run(measure, sweep_ws, sweep_cs, settings, log)
    del sweep_ws
    log("structure micro-benchmark")
    with frozen_heap():
        structure = structure_bench(settings.structure_rounds, settings.min_time)
    memory = measure_memory(settings.big_bytes, settings.memory, settings.traced, log)
    report = Report(
        mode=mode_name,
        settings=settings,
        workloads=workloads,
        contenders=cs,
        series=series,
        structure=structure,
        sweep=sweep,
        sweep_contenders=sweep_cs,
        memory=memory,
        started=started,
        seconds=0.0,
        load=(load0, load0),
    )
    evaluate(report)
    if not args.smoke:
        log("issue 16's targets (benchmarks/targets.py)")
        report.practical = issue16.measure_targets(quick=args.quick, log=log)
    report.seconds = time.perf_counter() - clock
    report.load = (load0, os.getloadavg())
    if output is not None:
        chart = output / "_static" / "performance.png"
        draw(report, chart)
        (output / "performance.md").write_text(render(report, "_static/performance.png"))
        log(f"wrote {output / 'performance.md'} and {chart}")
    if args.json is not None:
        dump_json(report, args.json)
    if not args.quiet:
        for t in report.targets:
            print(f"{'met   ' if t.met else 'MISSED'} {t.figure:>10}  {t.text}")
    return report


if __name__ == "__main__":
    main()
