"""The scaling campaign (issue 13): time per byte and peak memory of every stream shape.

For each shape, normal and hostile, a stream of each size (doubling from 64 KiB to 16 MiB by
default) is fed to a ``UsageAccumulator`` whole and in 64 KiB chunks. For each run it reports
the process CPU time per byte (``time.process_time``, the best of a few repetitions) and the
peak of the Python heap (``tracemalloc``, in a separate run, since tracing slows everything),
the input itself left out (it is built before measuring).

It fails (exit status 1) when, for any shape and feeding mode:

- the time per byte at the largest size is more than ``--factor`` (1.5) times the time per
  byte at the smallest size, or
- the peak memory of a run is above ``MEMORY_FACTOR`` times the larger of ``max_event_size``
  and the stream's retained usage (the final or partial usage, as compact JSON), plus
  ``MEMORY_SLACK`` (the fixed cost of an accumulator and its caches).

Every stream is valid for its shape and its expected outcome is checked before anything is
measured: the final usage, or for hostile shapes the class of the typed error it must raise.

Run ``make scaling`` (the full campaign, a few minutes) or ``python benchmarks/scaling.py
--quick`` (three small sizes and a looser factor, as the test gate does in
``tests/test_scaling_quick.py``). ``--markdown`` prints the table of ``docs/guarantees.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import usagetally
from usagetally import StreamError, UsageAccumulator

KIB = 1024
MIB = 1024 * KIB
CHUNK = 64 * KIB
FULL_SIZES = tuple(64 * KIB << k for k in range(9))  # 64 KiB .. 16 MiB
QUICK_SIZES = (32 * KIB, 128 * KIB, 512 * KIB)
FACTOR = 1.5
QUICK_FACTOR = 2.5
QUICK_ROUNDS = 2
QUICK_REPEAT_BYTES = 256 * KIB
# Peak memory bound: MEMORY_FACTOR * max(max_event_size, retained usage) + MEMORY_SLACK.
MEMORY_FACTOR = 4
MEMORY_SLACK = 1 * MIB
# The max_event_size set for the normal shapes: larger than any of their events.
EVENT_LIMIT = 1 * MIB

Json = dict[str, Any]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event(name: str | None, data: Json | str, *, eol: str = "\n") -> bytes:
    text = data if isinstance(data, str) else compact(data)
    head = f"event: {name}{eol}" if name else ""
    return f"{head}data: {text}{eol}{eol}".encode()


def start(usage: Json | None = None, *, eol: str = "\n", named: bool = True) -> bytes:
    message: Json = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "usage": usage or {"input_tokens": 120, "output_tokens": 1},
    }
    data = {"type": "message_start", "message": message}
    return event("message_start" if named else None, data, eol=eol)


def delta(usage: Json, *, eol: str = "\n", named: bool = True) -> bytes:
    data = {"type": "message_delta", "delta": {"stop_reason": None}, "usage": usage}
    return event("message_delta" if named else None, data, eol=eol)


def stop(*, eol: str = "\n", named: bool = True) -> bytes:
    return event("message_stop" if named else None, {"type": "message_stop"}, eol=eol)


def fill(size: int, head: bytes, unit: Callable[[int], bytes], tail: bytes) -> bytes:
    """``head``, then ``unit(i)`` for i = 0, 1, ... until about ``size`` bytes, then ``tail``."""
    parts = [head]
    total = len(head) + len(tail)
    i = 0
    while total < size:
        piece = unit(i)
        parts.append(piece)
        total += len(piece)
        i += 1
    parts.append(tail)
    return b"".join(parts)


def text_delta(i: int, *, eol: str = "\n", named: bool = True) -> bytes:
    words = ("the ", "usage ", "is ", "exact, ", "énorme ", "`code` ", "\\n", "— ")
    data = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": words[i % 8] + words[(i * 3) % 8]},
    }
    return event("content_block_delta" if named else None, data, eol=eol)


def final(output: int, **kwargs: Any) -> bytes:
    return delta({"output_tokens": output}, **kwargs) + stop(**kwargs)


# --- the shapes ---------------------------------------------------------------------------


def text_heavy(size: int) -> bytes:
    block = event("content_block_start", {"type": "content_block_start", "index": 0})
    return fill(size, start() + block, text_delta, final(7))


def tool_heavy(size: int) -> bytes:
    def unit(i: int) -> bytes:
        if i % 40 == 0:
            block = {"type": "tool_use", "id": f"toolu_{i}", "name": "get_weather", "input": {}}
            return event(
                "content_block_start",
                {"type": "content_block_start", "index": 1, "content_block": block},
            )
        if i % 40 == 39:
            return event("content_block_stop", {"type": "content_block_stop", "index": 1})
        part = '{"city": "Par' if i % 2 else 'is", "unit": "c"}'
        data = {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": part},
        }
        return event("content_block_delta", data)

    entry = {"type": "message", "input_tokens": 60, "output_tokens": 3}
    entry |= {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    usage = {
        "output_tokens": 6,
        "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
    }
    usage["iterations"] = [entry, entry]
    return fill(size, start(), unit, delta(usage) + stop())


def untyped(size: int) -> bytes:
    return fill(
        size, start(named=False), lambda i: text_delta(i, named=False), final(7, named=False)
    )


def untyped_crlf(size: int) -> bytes:
    kw: dict[str, Any] = {"named": False, "eol": "\r\n"}
    return fill(size, start(**kw), lambda i: text_delta(i, **kw), final(7, **kw))


def crlf(size: int) -> bytes:
    return fill(size, start(eol="\r\n"), lambda i: text_delta(i, eol="\r\n"), final(7, eol="\r\n"))


def pings_untyped(size: int) -> bytes:
    def unit(i: int) -> bytes:
        if i % 2:
            return event("ping", {"type": "ping"})
        return text_delta(i, named=False)

    return fill(size, start(), unit, final(7))


def deep_ish(size: int) -> bytes:
    # Just within the limits: an unknown usage field nested MAX_UNKNOWN_DEPTH (32) levels on
    # every delta, and untyped events nested MAX_EVENT_DEPTH (64) levels.
    inner: Any = 1
    for _ in range(32):
        inner = [inner]
    content: Any = "x"
    for _ in range(62):  # the event object, its "x" and 62 lists: 64 levels
        content = [content]

    def unit(i: int) -> bytes:
        if i % 2:
            return event(None, {"type": "content_block_delta", "index": 0, "x": content})
        return delta({"output_tokens": i, "deep": inner})

    return fill(size, start(), unit, final(10**9))


def many_unknown_fields(size: int) -> bytes:
    # Every delta carries 64 unknown fields, the most one usage keeps.
    def unit(i: int) -> bytes:
        usage: Json = {"output_tokens": i}
        usage |= {f"future_{k:02d}": i + k for k in range(64)}
        return delta(usage)

    return fill(size, start(), unit, final(10**9))


def big_unknown_field(size: int) -> bytes:
    # Every delta sends a 256 KiB unknown field again (replacing the one kept).
    blob = "y" * (256 * KIB)

    def unit(i: int) -> bytes:
        return delta({"output_tokens": i, "blob": blob})

    return fill(size, start(), unit, final(10**9))


def kept_unknown_list(size: int) -> bytes:
    # message_start keeps a list of 2,000 values; thousands of small deltas follow (each
    # re-structured the whole state and deep-copied the list before the fix).
    usage = {"input_tokens": 120, "output_tokens": 1, "ids": list(range(2000))}
    return fill(size, start(usage), lambda i: delta({"output_tokens": i}), final(10**9))


def many_names(size: int) -> bytes:
    # Passed-over events of thousands of distinct names of up to 64 bytes (cached) and of
    # 1 KiB (never cached).
    def unit(i: int) -> bytes:
        name = f"vendor_event_{i:08d}" + ("n" * 1000 if i % 2 else "")
        return event(name, {"type": name[:40]})

    return fill(size, start(), unit, final(7))


def long_names(size: int) -> bytes:
    # Hostile: passed-over events whose distinct names are 16 KiB long.
    def unit(i: int) -> bytes:
        return event(f"{i:08d}" + "n" * (16 * KIB), "{}")

    return fill(size, start(), unit, final(7))


def deep_json(size: int) -> bytes:
    # Hostile: one delta nesting arrays as deep as its size allows (refused at 64 levels).
    depth = max(size // 2 - 200, 100)
    return (
        start() + delta_text('{"output_tokens":5,"x":' + "[" * depth + "]" * depth + "}") + stop()
    )


def growing_unknown_keys(size: int) -> bytes:
    # Hostile: every delta adds a new unknown field (refused after 64).
    return fill(size, start(), lambda i: delta({"output_tokens": i, f"k{i}": [i, i]}), final(7))


def amplification(size: int) -> bytes:
    # Hostile: one delta holding [[],[],...] (about 80 bytes of Python objects per 3 bytes).
    count = max((size - 300) // 3, 10)
    body = "[" + ",".join(["[]"] * count) + "]"
    return start() + delta_text('{"output_tokens":5,"junk":' + body + "}") + stop()


def delta_text(usage_json: str) -> bytes:
    data = '{"type":"message_delta","delta":{"stop_reason":null},"usage":' + usage_json + "}"
    return event("message_delta", data)


@dataclass(frozen=True)
class Shape:
    name: str
    kind: str  # "normal" or "hostile"
    build: Callable[[int], bytes]
    what: str
    refused: type[StreamError] | None = None  # the typed error a hostile stream must raise
    limit: Callable[[int], int] = lambda size: EVENT_LIMIT  # its max_event_size


SHAPES = (
    Shape("text-heavy", "normal", text_heavy, "named text deltas"),
    Shape("tool-heavy", "normal", tool_heavy, "tool_use blocks of input_json_delta; iterations"),
    Shape("untyped", "normal", untyped, "no event: lines (gateway shape), LF"),
    Shape("untyped-crlf", "normal", untyped_crlf, "no event: lines, CRLF"),
    Shape("crlf", "normal", crlf, "named events, CRLF"),
    Shape("pings-untyped", "normal", pings_untyped, "named pings between untyped events"),
    Shape("deep-ish", "normal", deep_ish, "nesting just within the limits (32 and 64)"),
    Shape("many-unknown", "normal", many_unknown_fields, "64 unknown fields on every delta"),
    Shape("big-unknown", "normal", big_unknown_field, "a 256 KiB unknown field on every delta"),
    Shape(
        "kept-list", "normal", kept_unknown_list, "a 2,000-value unknown list kept, small deltas"
    ),
    Shape("many-names", "normal", many_names, "distinct passed-over names, 21 B and 1 KiB"),
    Shape("long-names", "hostile", long_names, "distinct passed-over names of 16 KiB"),
    Shape(
        "deep-json",
        "hostile",
        deep_json,
        "one delta nested as deep as its size allows",
        refused=usagetally.MalformedEventError,
        limit=lambda size: 2 * size,
    ),
    Shape(
        "growing-keys",
        "hostile",
        growing_unknown_keys,
        "a new unknown field on every delta",
        refused=usagetally.MalformedEventError,
    ),
    Shape(
        "amplification",
        "hostile",
        amplification,
        "one delta of [[],[],...] under a limit of twice its size",
        refused=usagetally.MalformedEventError,
        limit=lambda size: 2 * size,
    ),
)


# --- measuring ----------------------------------------------------------------------------


def chunked(data: bytes, mode: str) -> list[bytes]:
    if mode == "whole":
        return [data]
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def consume(chunks: Sequence[bytes], limit: int) -> tuple[Any, type[BaseException] | None]:
    """Feed the chunks; return (usage in wire form, None) or (partial usage, error class)."""
    acc = UsageAccumulator(policy="off", max_event_size=limit)
    try:
        for chunk in chunks:
            acc.feed(chunk)
        usage = acc.finish()
    except StreamError as exc:
        partial = exc.partial
        return (usagetally.converter.unstructure(partial) if partial else None), type(exc)
    return usagetally.converter.unstructure(usage), None


def cpu_time(chunks: Sequence[bytes], limit: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.process_time()
        consume(chunks, limit)
        best = min(best, time.process_time() - t0)
    return best


def peak_memory(chunks: Sequence[bytes], limit: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        consume(chunks, limit)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@dataclass
class Row:
    shape: Shape
    mode: str
    sizes: list[int] = field(default_factory=list)
    ns_per_byte: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    bounds: list[int] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return self.ns_per_byte[-1] / self.ns_per_byte[0]

    def failures(self, factor: float) -> list[str]:
        out = []
        if self.growth > factor:
            out.append(
                f"{self.shape.name} ({self.mode}): time per byte grew {self.growth:.2f}x "
                f"from {fmt_size(self.sizes[0])} to {fmt_size(self.sizes[-1])} (limit {factor}x)"
            )
        for size, peak, bound in zip(self.sizes, self.peaks, self.bounds, strict=True):
            if peak > bound:
                out.append(
                    f"{self.shape.name} ({self.mode}) at {fmt_size(size)}: peak memory "
                    f"{fmt_size(peak)} above its bound {fmt_size(bound)}"
                )
        return out


def fmt_size(n: float) -> str:
    for unit, scale in (("MiB", MIB), ("KiB", KIB)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def check_outcome(shape: Shape, data: bytes, limit: int) -> int:
    """Check the stream's outcome in both modes; return the size of its retained usage."""
    outcomes = [consume(chunked(data, mode), limit) for mode in ("whole", "chunks")]
    if outcomes[0] != outcomes[1]:
        raise AssertionError(f"{shape.name}: whole and chunked outcomes differ")
    usage, error = outcomes[0]
    if error is not shape.refused:
        raise AssertionError(f"{shape.name}: expected {shape.refused}, got {error}")
    if shape.refused is None and usage is None:
        raise AssertionError(f"{shape.name}: no usage")
    return len(compact(usage)) if usage is not None else 0


def run(
    sizes: Sequence[int] = FULL_SIZES,
    *,
    shapes: Iterable[Shape] = SHAPES,
    modes: Sequence[str] = ("whole", "chunks"),
    rounds: int = 3,
    repeat_bytes: int = MIB,
    quiet: bool = False,
) -> list[Row]:
    """Measure every shape at every size and feeding mode.

    Time: ``rounds`` rounds, each timing every size once (a small size several times, up to
    about ``repeat_bytes`` fed), the best value kept; a change in the machine's load then hits every
    size of a shape alike. Memory: one run per size and mode under ``tracemalloc``.
    """
    gc.collect()
    gc.freeze()
    rows: list[Row] = []
    for shape in shapes:
        streams = [shape.build(size) for size in sizes]
        limits = [shape.limit(size) for size in sizes]
        retained = [check_outcome(shape, d, lim) for d, lim in zip(streams, limits, strict=True)]
        mine = [Row(shape, mode) for mode in modes]
        rows.extend(mine)
        best = [[float("inf")] * len(sizes) for _ in modes]
        for _ in range(rounds):
            for m, mode in enumerate(modes):
                for k, (data, limit) in enumerate(zip(streams, limits, strict=True)):
                    chunks = chunked(data, mode)
                    repeats = max(1, repeat_bytes // len(data))
                    best[m][k] = min(best[m][k], cpu_time(chunks, limit, repeats))
        for m, row in enumerate(mine):
            for k, data in enumerate(streams):
                chunks = chunked(data, row.mode)
                row.sizes.append(len(data))
                row.ns_per_byte.append(best[m][k] * 1e9 / len(data))
                row.peaks.append(peak_memory(chunks, limits[k]))
                row.bounds.append(MEMORY_FACTOR * max(limits[k], retained[k]) + MEMORY_SLACK)
            if not quiet:
                print(
                    f"{shape.name:14} {row.mode:6} "
                    + " ".join(f"{v:6.1f}" for v in row.ns_per_byte)
                    + f"  ns/B  growth {row.growth:4.2f}x  peak {fmt_size(max(row.peaks))}",
                    flush=True,
                )
        del streams
    gc.unfreeze()
    return rows


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| shape | kind | fed | sizes | ns per byte, smallest → largest | growth "
        "| peak memory (largest) | bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.shape
        lines.append(
            f"| `{s.name}`: {s.what} | {s.kind}"
            + (f", refused ({s.refused.__name__})" if s.refused else "")
            + f" | {row.mode} | {fmt_size(row.sizes[0])} to {fmt_size(row.sizes[-1])}"
            + f" | {row.ns_per_byte[0]:.1f} → {row.ns_per_byte[-1]:.1f}"
            + f" | {row.growth:.2f}x | {fmt_size(max(row.peaks))} | {fmt_size(row.bounds[-1])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="three small sizes, factor 2.5")
    parser.add_argument("--factor", type=float, default=None, help="allowed growth (1.5)")
    parser.add_argument("--shape", action="append", help="only these shapes (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print the table for the docs")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    factor = args.factor or (QUICK_FACTOR if args.quick else FACTOR)
    shapes = [s for s in SHAPES if not args.shape or s.name in args.shape]
    started = time.strftime("%Y-%m-%d %H:%M")
    if args.quick:
        rows = run(sizes, shapes=shapes, rounds=QUICK_ROUNDS, repeat_bytes=QUICK_REPEAT_BYTES)
    else:
        rows = run(sizes, shapes=shapes)
    failures = [f for row in rows for f in row.failures(factor)]
    if args.markdown:
        print(f"\nusagetally {usagetally.__version__}, Python {sys.version.split()[0]}, {started}")
        print(markdown(rows))
    for failure in failures:
        print("FAIL:", failure)
    print(f"{len(rows)} rows, {len(failures)} failures (growth limit {factor}x)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
