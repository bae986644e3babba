"""The speed targets of issue 16, each printed as a ratio measured side by side in one run.

Run: ``.venv/bin/python benchmarks/targets.py`` (``--quick`` for fewer rounds, ``--only
large,small,framing,worker,import,memory`` for some of them). ``make bench`` runs it too
(``benchmarks/run.py`` calls :func:`measure_targets`), and ``benchmarks/run.py --ratios``
prints just these ratios.

How the figures are taken, so that they hold on a loaded two-core machine:

- Time is process CPU time (``time.process_time``), not wall time: another process taking
  the core does not count.
- Every ratio is taken within one round between two cases timed one right after the other;
  the cases of a target are interleaved, their order rotating each round, and the median
  over the rounds is reported.
- Each value repeats its call until it takes at least ``min_time`` of CPU time.

usagetally is timed as a user calls it: ``feed`` per chunk and ``finish`` (a ``BetaUsage``);
the wire form (a dict) is only built to check that every contender agrees.

The practical floor: :func:`handwritten` is the minimal accumulator a user could write for
the Messages API's canonical framing (``event: NAME\\ndata: JSON\\n\\n``): it finds the
usage events by their names on the bytes, ``json.loads`` only their data lines and merges by
overwriting. It is correct on canonical streams only (a reframed stream, a retyped event or
a failure it gets wrong or misses), which is what usagetally costs beyond it.
:func:`scan_floor` is ``bytes.count(b"\\n")`` over the chunks: reading every byte once.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workloads as wl

import usagetally

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.sse"))


# -- the floors ------------------------------------------------------------------------------

_USAGE_NAMES = (b"event: message_start\ndata: ", b"event: message_delta\ndata: ")


def handwritten(chunks: Iterable[bytes]) -> dict[str, Any]:
    """A minimal accumulator for canonical streams: the practical floor."""
    usage: dict[str, Any] = {}
    pending: list[bytes] = []
    for chunk in chunks:
        end = chunk.rfind(b"\n\n") + 2
        if end < 2:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
            end = chunk.rfind(b"\n\n") + 2
            pending = []
        if end < len(chunk):
            pending.append(chunk[end:])
        for name in _USAGE_NAMES:
            at = chunk.find(name, 0, end)
            while at >= 0:
                start = at + len(name)
                stop = chunk.index(b"\n", start)
                event = json.loads(chunk[start:stop])
                if event["type"] == "message_start":
                    usage = dict(event["message"]["usage"])
                else:
                    usage.update((k, v) for k, v in event["usage"].items() if v is not None)
                at = chunk.find(name, stop, end)
    return usage


def scan_floor(chunks: Iterable[bytes]) -> int:
    """Read every byte once and find nothing: ``bytes.count(b"\\n")`` per chunk."""
    return sum(chunk.count(b"\n") for chunk in chunks)


def ut_usage(chunks: Iterable[bytes]) -> usagetally.BetaUsage:
    """usagetally as timed: ``UsageAccumulator.feed`` per chunk, then ``finish``."""
    acc = usagetally.UsageAccumulator()
    feed = acc.feed
    for chunk in chunks:
        feed(chunk)
    return acc.finish()


def ut_feed(chunks: Iterable[bytes]) -> dict[str, Any]:
    """The same, in wire form (a dict, to compare with the hand-written one's)."""
    wire: dict[str, Any] = usagetally.converter.unstructure(ut_usage(chunks))
    return wire


# -- timing ----------------------------------------------------------------------------------


@dataclass
class Settings:
    rounds: int = 11
    min_time: float = 0.03


QUICK = Settings(rounds=5, min_time=0.01)


def _cpu(call: Callable[[], object], loops: int) -> float:
    start = time.process_time()
    for _ in range(loops):
        call()
    return (time.process_time() - start) / loops


def interleaved(cases: dict[str, Callable[[], object]], s: Settings) -> dict[str, list[float]]:
    """CPU seconds per call of each case, one value per round, the order rotating."""
    loops = {}
    for key, call in cases.items():
        call()  # warm up
        one = max(_cpu(call, 1), 1e-6)
        loops[key] = max(1, min(10_000, round(s.min_time / one)))
    values: dict[str, list[float]] = {key: [] for key in cases}
    keys = list(cases)
    gc.collect()
    gc.freeze()
    try:
        for r in range(s.rounds):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                gc.collect()
                values[key].append(_cpu(cases[key], loops[key]))
    finally:
        gc.unfreeze()
    return values


def ratio(values: dict[str, list[float]], key: str, ref: str) -> float:
    """The median over rounds of key/ref."""
    return statistics.median(a / b for a, b in zip(values[key], values[ref], strict=True))


@dataclass
class Figure:
    group: str
    name: str
    measured: float
    target: float
    higher_is_better: bool = False
    unit: str = "x"
    note: str = ""

    @property
    def met(self) -> bool:
        if self.higher_is_better:
            return self.measured >= self.target
        return self.measured <= self.target

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        status = "met   " if self.met else "MISSED"
        figure = f"{self.measured:.2f}{self.unit}"
        return f"{status} {figure:>10} (target {op} {self.target:g}{self.unit})  {self.name}"


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, figure: Figure, log: Callable[[str], None]) -> None:
        self.figures.append(figure)
        log(figure.line())


# -- the targets -----------------------------------------------------------------------------


def large_workloads(quick: bool) -> list[wl.Workload]:
    """Text-heavy, tool-heavy and server-tool-heavy streams of 1 MB and more, 64 KiB chunks."""
    k = 1 if quick else 4
    return [
        wl.text_answer(10_000 * k),
        wl.tool_heavy(k * 2, chars=150_000),
        wl.server_tool_loop(turns=16 * k, answer_deltas=4_000 * k),
    ]


def _floor_cases(chunks: list[bytes]) -> dict[str, Callable[[], object]]:
    return {
        "usagetally": lambda: ut_usage(chunks),
        "handwritten": lambda: handwritten(chunks),
        "scan": lambda: scan_floor(chunks),
    }


def _check(name: str, chunks: list[bytes], expected: dict[str, Any] | None, r: Results) -> bool:
    ours = ut_feed(chunks)
    if expected is not None and ours != expected:
        r.problems.append(f"{name}: usagetally gives {ours!r}, expected {expected!r}")
    theirs = handwritten(chunks)
    if theirs != ours:
        r.problems.append(f"{name}: the hand-written accumulator disagrees; left out")
        return False
    return True


def target_large(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    for w in large_workloads(quick):
        if not _check(w.name, w.chunks, w.usage, r):
            continue
        v = interleaved(_floor_cases(w.chunks), s)
        mb = len(w.data) / 1e6
        speed = mb / statistics.median(v["handwritten"])
        note = (
            f"{mb:.1f} MB; hand-written {speed:,.0f} MB/s; hand-written is "
            f"{ratio(v, 'handwritten', 'scan'):.1f}x the scan floor"
        )
        r.add(Figure("large", f"large `{w.name}` vs hand-written ({note})",
                     ratio(v, "usagetally", "handwritten"), 2.0), log)  # fmt: skip


def _events(data: bytes) -> list[bytes]:
    return [block + b"\n\n" for block in data.split(b"\n\n") if block]


def small_streams() -> list[tuple[str, bytes]]:
    out = [(f"examples/{p.name}", p.read_bytes()) for p in EXAMPLES]
    for deltas in (20, 100, 300):
        w = wl.text_answer(deltas)
        out.append((f"{w.name} ({len(w.data) / 1000:.0f} KB)", w.data))
    return out


# The decoder as the accumulator sets it up (the catalogue's event names, _wire.py), to time
# the decoding part of a small stream alone.
_DECODER = {
    "keep": ("message_start", "message_delta", "message_stop", "error", "message"),
    "check_type": True,
    "unchecked": ("ping",),
    "pause_after": ("message_stop", "message"),
    "pass_over": ("content_block_start", "content_block_delta", "content_block_stop", "ping"),
}


def decoder_only(chunks: Iterable[bytes]) -> int:
    """The accumulator's decoder over the chunks, resuming at each pause: decoding alone."""
    decoder = usagetally.SSEDecoder(**_DECODER)  # type: ignore[arg-type]
    n = 0
    for chunk in chunks:
        n += len(decoder.feed_located(chunk))
        while decoder.paused:
            n += len(decoder.resume())
    return n


def target_small(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    for name, data in small_streams():
        for how, chunks in (("one chunk", [data]), ("chunk per event", _events(data))):
            label = f"{name}, {how}"
            if not _check(label, chunks, None, r):
                continue
            cases = _floor_cases(chunks)
            cases["decoder"] = functools.partial(decoder_only, chunks)
            v = interleaved(cases, s)
            part = ratio(v, "decoder", "handwritten")
            r.add(Figure("small", f"small {label} vs hand-written (decoding alone: {part:.1f}x)",
                         ratio(v, "usagetally", "handwritten"), 2.5), log)  # fmt: skip


def _reframe(data: bytes, how: str) -> bytes:
    blocks = [b for b in data.split(b"\n\n") if b]
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "cr":
        return data.replace(b"\n", b"\r")
    if how == "no-event":
        return b"".join(b.split(b"\n", 1)[1] + b"\n\n" for b in blocks)
    if how == "id":
        return b"".join(b"id: %d\n" % i + b + b"\n\n" for i, b in enumerate(blocks))
    if how == "comment":
        return b"".join(b": keep-alive\n" + b + b"\n\n" for b in blocks)
    raise ValueError(how)


FRAMINGS = ("crlf", "no-event", "id", "comment", "cr")


def _decode_every_event(chunks: list[bytes]) -> int:
    # The least a reader of events without event lines must do (their type is their data's,
    # and the catalogue's malformed unnamed content block must fail): json.loads each one.
    data = b"".join(chunks)
    n = 0
    for block in data.split(b"\n\n"):
        if block:
            json.loads(block[6:])
            n += 1
    return n


def target_framing(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    for w in (wl.text_answer(5_000 if quick else 20_000), wl.server_tool_loop()):
        canonical = w.chunks
        cases: dict[str, Callable[[], object]] = {
            "canonical": functools.partial(ut_usage, canonical)
        }
        for how in FRAMINGS:
            chunks = list(wl.chunked(_reframe(w.data, how), wl.STREAM_CHUNK))
            if ut_feed(chunks) != w.usage:
                r.problems.append(f"{w.name} {how}: usagetally gives another usage")
            cases[how] = functools.partial(ut_usage, chunks)
            if how == "no-event":
                cases["decoding every event"] = functools.partial(_decode_every_event, chunks)
        v = interleaved(cases, s)
        for how in FRAMINGS:
            floor = ""
            if how == "no-event":
                floor = (f"; `json.loads` of every event alone: "
                         f"{ratio(v, 'decoding every event', 'canonical'):.1f}x")  # fmt: skip
            r.add(Figure("framing", f"framing {how} vs canonical (`{w.name}`, same content{floor})",
                         ratio(v, how, "canonical"), 2.0), log)  # fmt: skip


def _worker_streams(n: int) -> list[list[bytes]]:
    data = wl.text_answer(60).data
    return [_events(data) for _ in range(n)]


async def _bare(streams: list[list[bytes]]) -> int:
    import anyio

    done = 0

    async def one(chunks: list[bytes]) -> None:
        nonlocal done
        acc = usagetally.UsageAccumulator()
        for chunk in chunks:
            acc.feed(chunk)
        acc.finish()
        done += 1

    async with anyio.create_task_group() as tg:
        for chunks in streams:
            tg.start_soon(one, chunks)
    return done


async def _worker(streams: list[list[bytes]]) -> int:
    import anyio

    async def one(worker: usagetally.UsageWorker, key: int, chunks: list[bytes]) -> None:
        async with worker.open(key) as sink:
            for chunk in chunks:
                await sink.send(chunk)

    async with usagetally.UsageWorker() as worker, anyio.create_task_group() as tg:
        for key, chunks in enumerate(streams):
            tg.start_soon(one, worker, key, chunks)
    return worker.totals.requests


def target_worker(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    import anyio

    streams = _worker_streams(1_000)
    items = sum(len(c) for c in streams)
    for backend in ("asyncio", "trio"):
        try:
            if anyio.run(_worker, streams, backend=backend) != len(streams):
                r.problems.append(f"worker on {backend}: not every stream finished")
        except ImportError:
            r.problems.append(f"worker on {backend}: backend not installed")
            continue
        cases: dict[str, Callable[[], object]] = {
            "worker": functools.partial(anyio.run, _worker, streams, backend=backend),
            "bare": functools.partial(anyio.run, _bare, streams, backend=backend),
        }
        v = interleaved(cases, Settings(s.rounds, 0.0))
        r.add(Figure("worker", f"UsageWorker throughput vs bare accumulators, {backend}, "
                     f"1,000 streams, {items:,} items", 1 / ratio(v, "worker", "bare"), 0.8,
                     higher_is_better=True), log)  # fmt: skip


_IMPORT = "import time; t = time.process_time(); import {}; print(time.process_time() - t)"
# Import, then read one stream: what a program that feeds bytes pays before its first result.
_FIRST_USE = (
    "import time; data = open('examples/plain.sse', 'rb').read(); "
    "t = time.process_time(); import usagetally; acc = usagetally.UsageAccumulator(); "
    "acc.feed(data); acc.finish(); print(time.process_time() - t)"
)


@functools.cache
def _import_env() -> dict[str, str]:
    # Imports are timed as an installed package runs: with its bytecode compiled (pip
    # compiles it on install, and attrs and cattrs were installed that way). A private
    # bytecode cache stands in for it, so a machine with PYTHONDONTWRITEBYTECODE set (this
    # one has) does not time usagetally compiling its own sources against attrs and cattrs
    # loading theirs precompiled. Each command is run once first to fill the cache.
    import os
    import tempfile

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="usagetally-pyc-")
    for command in (_IMPORT.format("usagetally"), _IMPORT.format("attrs, cattrs"), _FIRST_USE):
        subprocess.run([sys.executable, "-c", command], env=env, cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
    return env


def _cpu_of(command: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", command],
        capture_output=True, text=True, check=True, cwd=ROOT, env=_import_env(),
    )  # fmt: skip
    return float(out.stdout)


def _import_cpu(module: str) -> float:
    return _cpu_of(_IMPORT.format(module))


def target_import(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    values: dict[str, list[float]] = {"usagetally": [], "attrs, cattrs": [], "first use": []}
    for i in range(max(2 * s.rounds, 10)):
        for case in list(values) if i % 2 == 0 else list(reversed(values)):
            values[case].append(_cpu_of(_FIRST_USE) if case == "first use" else _import_cpu(case))
    ms = {case: statistics.median(v) * 1000 for case, v in values.items()}
    r.add(Figure("import", "`import usagetally` vs `import attrs, cattrs` (fresh process, "
                 f"bytecode compiled; {ms['usagetally']:.1f} ms vs {ms['attrs, cattrs']:.1f} ms "
                 f"CPU; import and reading `examples/plain.sse`: {ms['first use']:.1f} ms, "
                 f"{ratio(values, 'first use', 'attrs, cattrs'):.2f}x)",
                 ratio(values, "usagetally", "attrs, cattrs"), 1.3), log)  # fmt: skip


_MEMORY = """
import gc, sys, tracemalloc
sys.path.insert(0, "benchmarks")
import usagetally, workloads
blocks = [b + b"\\n\\n" for b in workloads.text_answer(50).data.split(b"\\n\\n") if b]
head = b"".join(blocks[:10])  # message_start, ping, content_block_start, text deltas
accs = [usagetally.UsageAccumulator() for _ in range(10)]
for acc in accs:
    acc.feed(head)
del accs
gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
accs = [usagetally.UsageAccumulator() for _ in range({n})]
for acc in accs:
    acc.feed(head)
gc.collect()
print((tracemalloc.get_traced_memory()[0] - before) / {n})
"""


def target_memory(s: Settings, quick: bool, r: Results, log: Callable[[str], None]) -> None:
    n = 1_000
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY.format(n=n)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    per = float(out.stdout) / 1024
    r.add(Figure("memory", f"memory per in-flight stream (tracemalloc, {n:,} accumulators "
                 "each fed its first 10 events)", per, 2.5, unit=" KB"), log)  # fmt: skip


TARGETS: dict[str, Callable[[Settings, bool, Results, Callable[[str], None]], None]] = {
    "large": target_large,
    "small": target_small,
    "framing": target_framing,
    "worker": target_worker,
    "import": target_import,
    "memory": target_memory,
}


def measure_targets(
    quick: bool = False, only: Iterable[str] = TARGETS, log: Callable[[str], None] = print
) -> Results:
    """Measure the chosen targets; each figure is logged as it is taken."""
    s = QUICK if quick else Settings()
    results = Results()
    for key in only:
        TARGETS[key](s, quick, results, log)
    for problem in results.problems:
        log(f"PROBLEM {problem}")
    return results


def main(argv: list[str] | None = None) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller streams")
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    args = parser.parse_args(argv)
    only = [key for key in args.only.split(",") if key]
    unknown = set(only) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    results = measure_targets(args.quick, only)
    missed = sum(not f.met for f in results.figures)
    print(f"{len(results.figures) - missed} of {len(results.figures)} targets met")
    return results


if __name__ == "__main__":
    main()
