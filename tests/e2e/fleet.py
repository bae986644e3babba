"""The worker process of the end-to-end Prometheus test, and the streams it replays.

``build_streams(count, seed)`` makes the same streams in the test and in the worker process
(with the builders of ``usagetally.testing``): plain answers on five priced models, with
cache reads and 5-minute and 1-hour cache writes, thinking, web searches, the batch tier,
US residency and fast mode; advisor calls on another model; server-side fallbacks, declined
(free) and mid-stream (billed at the first model); compaction; a model the price table does
not have; and streams cut before their end. Each stream carries the billed tokens per model
that it was built to have, written from its own figures by the rules of docs/semantics.md
(never computed with usagetally), so the test checks the worker's results against them.

Run as a program (``python fleet.py --count N --seed S``), it is the worker: it sets up the
OpenTelemetry SDK with the Prometheus exporter (``PrometheusMetricReader`` and
``prometheus_client.start_http_server`` on 127.0.0.1, on a port the system picks), records
every stream with ``usagetally.otel.otel_hook(prices=...)`` from a ``UsageWorker`` that
lives as long as the process, and talks JSON lines:

- it prints ``{"port": P}`` once the exporter listens;
- for each line ``{"run": [a, b]}`` on its standard input it replays streams ``a`` to ``b``
  (every stream in its own task, in random chunks), and once the worker has finished all of
  them prints ``{"results": [...]}``: per stream its key, whether it is complete, its model,
  its billed tokens per model (``usagetally.totals_by_model``) and its cost per model
  (``StreamResult.cost``, exact decimal strings; null when the table could not price it);
- it exits at end of input.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a program, this file has only its own folder on sys.path: tests/ is put there as
# tests/test_real_streams_tool.py puts tools/, for the one example loader (tests/support.py).
TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support import EXAMPLES  # noqa: E402

from usagetally import testing as t  # noqa: E402

PRICES = EXAMPLES / "prices.json"

SONNET = "claude-sonnet-4-6"
SONNET_5 = "claude-sonnet-5"
HAIKU = "claude-haiku-4-5"
OPUS = "claude-opus-4-7"
OPUS_FAST = "claude-opus-4-8"
UNLISTED = "claude-e2e-unlisted"  # not in examples/prices.json: counted, never priced

# Billed tokens of one model: input (uncached only), output, cache read, cache creation.
Counts = tuple[int, int, int, int]


@dataclass(frozen=True)
class Stream:
    """One stream to replay and what it was built to bill.

    Attributes:
        key: The stream's key in the worker.
        kind: How it was built (for the report).
        data: The transcript.
        complete: Whether it ends with ``message_stop``.
        billed: Billed tokens per model, by the rules (partial usage for a cut stream).

    """

    key: str
    kind: str
    data: bytes
    complete: bool
    billed: Mapping[str, Counts]


@dataclass
class _Entry:
    inp: int
    out: int
    read: int
    five: int
    hour: int

    @property
    def counts(self) -> Counts:
        return (self.inp, self.out, self.read, self.five + self.hour)

    def fields(self) -> dict[str, Any]:
        return {
            "input_tokens": self.inp,
            "output_tokens": self.out,
            "cache_read_input_tokens": self.read,
            "cache_creation_input_tokens": self.five + self.hour,
            "cache_creation": t.cache_creation(self.five, self.hour),
        }


def _entry(rng: random.Random, *, out: int | None = None) -> _Entry:
    cached = rng.random() < 0.6
    return _Entry(
        inp=rng.randint(1, 40_000),
        out=rng.randint(1, 6_000) if out is None else out,
        read=rng.randint(0, 120_000) if cached else 0,
        five=rng.randint(0, 8_000) if cached else 0,
        hour=rng.randint(0, 4_000) if cached and rng.random() < 0.5 else 0,
    )


def _sum(entries: list[_Entry]) -> _Entry:
    return _Entry(
        inp=sum(e.inp for e in entries),
        out=sum(e.out for e in entries),
        read=sum(e.read for e in entries),
        five=sum(e.five for e in entries),
        hour=sum(e.hour for e in entries),
    )


def _add(billed: dict[str, Counts], model: str, counts: Counts) -> None:
    old = billed.get(model, (0, 0, 0, 0))
    billed[model] = (old[0] + counts[0], old[1] + counts[1], old[2] + counts[2], old[3] + counts[3])


def _text(top: _Entry, model: str, **usage_fields: Any) -> list[dict[str, Any]]:
    fields = top.fields()
    return t.text_stream(
        ["Fleet", " totals"],
        input_tokens=fields["input_tokens"],
        output_tokens=fields["output_tokens"],
        cache_read_input_tokens=fields["cache_read_input_tokens"],
        cache_creation_input_tokens=fields["cache_creation_input_tokens"],
        cache_creation=fields["cache_creation"],
        model=model,
        **usage_fields,
    )


def _plain(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    top = _entry(rng)
    model = rng.choice([SONNET, SONNET_5, HAIKU, OPUS])
    extra: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.15:
        extra["service_tier"] = "batch"
    elif roll < 0.3 and model != HAIKU:  # the table marks US residency on 4.6 and later only
        extra["inference_geo"] = "us"
    if rng.random() < 0.25:
        extra["server_tool_use"] = t.server_tool_use(web_search_requests=rng.randint(1, 5))
    if rng.random() < 0.25:
        extra["output_tokens_details"] = t.output_tokens_details(rng.randint(0, top.out))
    billed: dict[str, Counts] = {}
    _add(billed, model, top.counts)
    return "plain", _text(top, model, **extra), billed


def _fast(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    top = _entry(rng)
    return "fast", _text(top, OPUS_FAST, speed="fast"), {OPUS_FAST: top.counts}


def _advisor(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    executor = rng.choice([SONNET, SONNET_5, HAIKU])
    advisor = rng.choice([OPUS, OPUS_FAST])
    first, second = _entry(rng), _entry(rng)
    advice = _entry(rng)
    iterations = [
        t.message_iteration(**first.fields()),
        t.advisor_iteration(model=advisor, **advice.fields()),
        t.message_iteration(**second.fields()),
    ]
    top = _sum([first, second])  # the top level is the executor's entries (not the advisor's)
    billed: dict[str, Counts] = {}
    _add(billed, executor, top.counts)
    _add(billed, advisor, advice.counts)
    return "advisor", _text(top, executor, iterations=iterations), billed


def _fallback(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    mid_stream = rng.random() < 0.4
    declined = _entry(rng, out=rng.randint(1, 900) if mid_stream else 0)
    serving = _entry(rng)
    iterations = [
        t.message_iteration(model=OPUS, **declined.fields()),
        t.fallback_iteration(model=SONNET, **serving.fields()),
    ]
    billed: dict[str, Counts] = {}
    if mid_stream:  # an attempt that produced output before the fallback is billed
        _add(billed, OPUS, declined.counts)
    _add(billed, SONNET, serving.counts)
    kind = "fallback mid-stream" if mid_stream else "fallback declined"
    return kind, _text(serving, OPUS, iterations=iterations), billed


def _compaction(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    model = rng.choice([SONNET, OPUS])
    summary, answer = _entry(rng), _entry(rng)
    iterations = [
        t.compaction_iteration(**summary.fields()),
        t.message_iteration(**answer.fields()),
    ]
    billed: dict[str, Counts] = {}
    _add(billed, model, summary.counts)  # compaction is billed at the executor model
    _add(billed, model, answer.counts)
    return "compaction", _text(answer, model, iterations=iterations), billed


def _unlisted(rng: random.Random) -> tuple[str, list[dict[str, Any]], dict[str, Counts]]:
    top = _entry(rng)
    return "unlisted model", _text(top, UNLISTED), {UNLISTED: top.counts}


_KINDS = [
    (_plain, 45),
    (_fast, 5),
    (_advisor, 17),
    (_fallback, 13),
    (_compaction, 12),
    (_unlisted, 3),
]


def _cut(
    rng: random.Random, events: list[dict[str, Any]], billed: dict[str, Counts]
) -> tuple[list[dict[str, Any]], dict[str, Counts]]:
    """Cut a plain stream before its end; return the events kept and the partial billing."""
    if rng.random() < 0.5:
        return events[:-1], billed  # after the final message_delta: its figures stand
    # Before any message_delta: message_start's usage, with its placeholder output count 1.
    start = events[0]["message"]
    usage = start["usage"]
    model = start["model"]
    partial = (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["cache_read_input_tokens"],
        usage["cache_creation_input_tokens"],
    )
    return events[: rng.randint(1, 4)], {model: partial}


def build_streams(count: int, seed: int) -> list[Stream]:
    """Build the streams of the test, the same for the same arguments.

    Args:
        count: How many streams.
        seed: The seed of their figures.

    Returns:
        The streams, keyed ``s0000``, ``s0001``, ...

    """
    rng = random.Random(seed)
    makers = [maker for maker, _ in _KINDS]
    weights = [weight for _, weight in _KINDS]
    streams = []
    for index in range(count):
        maker = rng.choices(makers, weights)[0]
        kind, events, billed = maker(rng)
        complete = True
        if maker is _plain and rng.random() < 0.1:
            events, billed = _cut(rng, events, billed)
            kind, complete = "cut", False
        streams.append(
            Stream(
                key=f"s{index:04d}",
                kind=kind,
                data=t.sse_bytes(events),
                complete=complete,
                billed=billed,
            )
        )
    return streams


def _emit(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _serve(streams: list[Stream]) -> None:
    import anyio
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    import usagetally
    from usagetally.otel import otel_hook

    prices = usagetally.PriceTable.load(PRICES)
    reader = PrometheusMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "usagetally-e2e"}), metric_readers=[reader]
    )
    hook = otel_hook(
        provider.get_meter("usagetally", usagetally.__version__),
        prices=prices,
        current_span=False,
    )
    server, thread = start_http_server(0, addr="127.0.0.1")
    _emit({"port": server.server_port})

    results: list[usagetally.StreamResult] = []
    finished = anyio.Event()
    wanted = 0

    def on_result(result: usagetally.StreamResult) -> None:
        results.append(result)
        if len(results) == wanted:
            finished.set()

    async def replay(worker: usagetally.UsageWorker, stream: Stream) -> None:
        async with worker.open(stream.key) as sink:
            for chunk in t.random_chunks(stream.data, seed=stream.key, max_size=512):
                await sink.send(chunk)

    try:
        async with usagetally.UsageWorker(
            on_finish=hook, on_result=on_result, prices=prices
        ) as worker:
            while line := await anyio.to_thread.run_sync(sys.stdin.readline):
                start, stop = json.loads(line)["run"]
                results.clear()
                wanted = stop - start
                finished = anyio.Event()
                async with anyio.create_task_group() as tg:
                    for stream in streams[start:stop]:
                        tg.start_soon(replay, worker, stream)
                await finished.wait()
                _emit({"results": [_result(result) for result in results]})
    finally:
        server.shutdown()
        thread.join()
        provider.shutdown()


def _result(result: Any) -> dict[str, Any]:
    import usagetally

    assert isinstance(result, usagetally.StreamResult)
    billed = {}
    if result.usage is not None:
        for model, counts in usagetally.totals_by_model(result.usage, model=result.model).items():
            billed[model or ""] = [
                counts.input_tokens,
                counts.output_tokens,
                counts.cache_read_input_tokens,
                counts.cache_creation_input_tokens,
            ]
    cost = result.cost
    return {
        "key": result.key,
        "complete": result.complete,
        "model": result.model,
        "billed": billed,
        "cost": None if cost is None else {m: str(v) for m, v in cost.by_model.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the worker process (see the module's docstring).

    Args:
        argv: The arguments, ``--count N --seed S``.

    """
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    anyio.run(_serve, build_streams(args.count, args.seed))


if __name__ == "__main__":
    main()
