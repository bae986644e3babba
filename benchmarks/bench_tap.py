"""What tap() adds to reading the anthropic SDK's own event stream, and the worker's speed.

Run: ``.venv/bin/python benchmarks/bench_tap.py [--events N] [--rounds R] [--streams S]``

Part 1, tap overhead: a transcript (``examples/plain.sse`` with its text deltas repeated to
``--events`` content_block_delta events) is served by ``httpx2.MockTransport`` to a real
``AsyncAnthropic`` client. Each round times, interleaved so that machine noise hits all
alike, reading the stream bare (``async for event in stream``) and through ``tap(stream)``,
for ``client.beta.messages.stream()`` and for ``create(stream=True)``. The figure is the
ratio of the medians (minimums printed too), on asyncio.

With ``--instructions`` (needs valgrind; slow: minutes), part 1 is measured in instructions
instead, which the load of a shared machine does not disturb: each case runs in its own
process under callgrind, after a warm-up of both cases, twice and zero times; the difference
divided by two is the instruction count of one read of the stream.

Part 2, worker throughput: ``--streams`` streams are opened at once on one UsageWorker and
fed, interleaved, from 8 tasks, as event mappings and as bytes; events per second is the
number of items processed over the wall time from the first send to the last result.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2

from usagetally import UsageWorker, tap

ROOT = Path(__file__).resolve().parent.parent
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hello"}],
}


def transcript(events: int) -> bytes:
    blocks = (ROOT / "examples" / "plain.sse").read_bytes().split(b"\n\n")
    deltas = [b for b in blocks if b.startswith(b"event: content_block_delta")]
    first = blocks.index(deltas[0])
    last = blocks.index(deltas[-1])
    body = [deltas[i % len(deltas)] for i in range(events)]
    return b"\n\n".join(blocks[:first] + body + blocks[last + 1 :])


def client_for(body: bytes) -> anthropic.AsyncAnthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return anthropic.AsyncAnthropic(api_key="x", http_client=http, max_retries=0)


async def helper_bare(client: anthropic.AsyncAnthropic) -> int:
    n = 0
    async with client.beta.messages.stream(**REQUEST) as stream:
        async for _ in stream:
            n += 1
    return n


async def helper_tap(client: anthropic.AsyncAnthropic) -> int:
    n = 0
    async with client.beta.messages.stream(**REQUEST) as stream:
        counted = tap(stream)
        async for _ in counted:
            n += 1
    counted.final()
    return n


async def raw_bare(client: anthropic.AsyncAnthropic) -> int:
    n = 0
    stream = await client.beta.messages.create(**REQUEST, stream=True)
    async for _ in stream:
        n += 1
    return n


async def raw_tap(client: anthropic.AsyncAnthropic) -> int:
    n = 0
    stream = await client.beta.messages.create(**REQUEST, stream=True)
    counted = tap(stream)
    async for _ in counted:
        n += 1
    counted.final()
    return n


Case = Callable[[anthropic.AsyncAnthropic], Awaitable[int]]


async def bench_tap(events: int, rounds: int) -> None:
    body = transcript(events)
    pairs = FAMILIES
    times: dict[str, list[float]] = {f"{k} {w}": [] for k in pairs for w in ("bare", "tap")}
    ratios: dict[str, list[float]] = {k: [] for k in pairs}
    async with client_for(body) as client:
        for bare, tapped in pairs.values():  # warm up
            await bare(client)
            await tapped(client)
        for r in range(rounds):
            for kind, (bare, tapped) in pairs.items():
                # Each round times the pair back to back, in alternating order, in CPU time
                # of this process: the machine is shared, and wall time measures the others.
                order = [("bare", bare), ("tap", tapped)]
                if r % 2:
                    order.reverse()
                spent = {}
                for which, case in order:
                    gc.collect()
                    start = time.process_time()
                    await case(client)
                    spent[which] = time.process_time() - start
                    times[f"{kind} {which}"].append(spent[which])
                ratios[kind].append(spent["tap"] / spent["bare"])
    print(f"tap overhead: {events} content_block_delta events, {len(body)} bytes, {rounds} rounds")
    print("  (CPU time of this process; median and minimum over the rounds)")
    for name, values in times.items():
        print(
            f"  {name:28} median {statistics.median(values) * 1e3:8.2f} ms"
            f"   min {min(values) * 1e3:8.2f} ms"
        )
    for kind in pairs:
        bare_t, tap_t = times[f"{kind} bare"], times[f"{kind} tap"]
        paired = statistics.median(ratios[kind]) - 1
        medians = statistics.median(tap_t) / statistics.median(bare_t) - 1
        per_event = (statistics.median(tap_t) - statistics.median(bare_t)) / events * 1e6
        print(
            f"  {kind:28} overhead {paired * 100:+.1f}% (median of paired ratios), "
            f"{medians * 100:+.1f}% (ratio of medians), {per_event:+.2f} us/event"
        )


FAMILIES: dict[str, tuple[Case, Case]] = {
    "stream()": (helper_bare, helper_tap),
    "create(stream=True)": (raw_bare, raw_tap),
}


async def run_one(family: str, which: str, times: int, events: int) -> None:
    bare, tapped = FAMILIES[family]
    async with client_for(transcript(events)) as client:
        await bare(client)
        await tapped(client)
        for _ in range(times):
            gc.collect()
            await (bare if which == "bare" else tapped)(client)


def instructions(family: str, which: str, times: int, events: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--one",
        family,
        which,
        str(times),
        "--events",
        str(events),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    assert match, done.stderr
    return int(match.group(1))


def bench_instructions(events: int) -> None:
    print(f"tap overhead in instructions (callgrind), {events} content_block_delta events:")
    for family in FAMILIES:
        base = instructions(family, "bare", 0, events)
        bare = (instructions(family, "bare", 2, events) - base) / 2
        tapped = (instructions(family, "tap", 2, events) - base) / 2
        print(
            f"  {family:28} bare {bare / 1e6:8.1f} M   tap {tapped / 1e6:8.1f} M   "
            f"overhead {(tapped / bare - 1) * 100:+.2f}%, {(tapped - bare) / events:,.0f} "
            "instructions/event"
        )


def stream_events(i: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_start",
            "message": {
                "model": f"model-{i % 3}",
                "usage": {"input_tokens": i + 1, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}
            for _ in range(4)
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 2 * i + 3}},
        {"type": "message_stop"},
    ]


def as_bytes(events: list[dict[str, Any]]) -> list[bytes]:
    return [
        f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode()
        for e in events
    ]


async def bench_worker(streams: int, kind: str) -> None:
    items: list[list[Any]] = []
    for i in range(streams):
        events = stream_events(i)
        items.append(as_bytes(events) if kind == "bytes" else events)
    start = time.perf_counter()
    async with UsageWorker(max_buffer=1024, policy="off") as worker:
        sinks = [worker.open(i) for i in range(streams)]

        async def feed(part: int) -> None:
            mine = range(part, streams, 8)
            for step in range(len(items[0])):
                for i in mine:
                    await sinks[i].send(items[i][step])
            for i in mine:
                await sinks[i].close()

        async with anyio.create_task_group() as tg:
            for part in range(8):
                tg.start_soon(feed, part)
        for i in range(streams):
            await worker.result(i)
    elapsed = time.perf_counter() - start
    n = worker.events_processed
    print(
        f"  {kind:9} {streams} streams, {n} items in {elapsed * 1e3:7.1f} ms: "
        f"{n / elapsed:,.0f} items/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument(
        "--one", nargs=3, metavar=("FAMILY", "WHICH", "TIMES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        family, which, times = args.one
        anyio.run(run_one, family, which, int(times), args.events)
        return
    if args.instructions:
        bench_instructions(args.events)
    else:
        anyio.run(bench_tap, args.events, args.rounds)
    for backend in ("asyncio", "trio"):
        print(f"worker throughput ({backend}, 8 feeding tasks):")
        for kind in ("mappings", "bytes"):
            for _ in range(3):
                anyio.run(bench_worker, args.streams, kind, backend=backend)


if __name__ == "__main__":
    main()
