"""Faults in the async layer that tests/test_aio.py and tests/test_worker.py leave out.

- A source raising at every boundary: every event boundary of an event source, every chunk
  boundary of a byte source cut at random places (inside events too), for ``accumulate`` and
  ``tap``: a ``SourceError`` whose cause is the original and whose partial usage and event
  index are those of what was delivered.
- Cancellation at every boundary: ``tap`` over bytes cut at random places, ``accumulate``
  (cancellation goes through), and a ``UsageWorker`` cancelled with one stream cut at each
  boundary at once.
- Slow consumers and full buffers: a tap read with a timeout on every item from a source
  whose producer waits on a rendezvous buffer; a worker whose ``on_result`` is slow while
  tasks and threads push into a one-item buffer.
- Shutdown while feeding: an exception in the worker's block while tasks and threads feed,
  and a deadline expiring while threads are blocked on a full buffer.
- Thread feeders racing task feeders: streams opened, fed and closed from threads and tasks
  at once, two feeders racing to open the same key.

Expected usages come from the reference reader of tests/stream_strategies.py (the WHATWG
framing and the merge rules written out), never from usagetally. Every test runs on asyncio
and trio (the ``anyio_backend`` fixture of conftest.py).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import anyio
import pytest
from stream_strategies import parse_sse, reference_outcome, split_at
from support import NAMES, expected, transcript, wire

from usagetally import (
    IncompleteStreamError,
    LocalUsageError,
    SourceError,
    StreamResult,
    UsageError,
    UsageWorker,
    accumulate,
    tap,
)

pytestmark = pytest.mark.anyio


def pieces_of(name: str, seed: int = 0) -> list[bytes]:
    """The transcript cut at random places, inside events as well as between them."""
    data = transcript(name)
    rng = random.Random(f"{name}-{seed}")
    return split_at(data, [rng.randrange(1, len(data)) for _ in range(60)])


def events_of(name: str) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data, _ in parse_sse(transcript(name))]


def implied(delivered: bytes) -> tuple[dict[str, Any] | None, int, bool]:
    """The usage, event count and completeness implied by the bytes delivered."""
    events = parse_sse(delivered)
    outcome = reference_outcome(events)
    usage = outcome.usage if outcome.error is None else outcome.partial
    return usage, len(events), outcome.error is None


def implied_by_events(events: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    outcome = reference_outcome([("message", json.dumps(e), None) for e in events])
    return (outcome.usage if outcome.error is None else outcome.partial), outcome.error is None


class Failing:
    """An async iterator that yields ``items`` then raises ``exc`` (or stops)."""

    def __init__(self, items: Iterable[Any], exc: BaseException | None = None) -> None:
        self.items = list(items)
        self.exc = exc
        self.closed = 0

    def __aiter__(self) -> Failing:
        return self

    async def __anext__(self) -> Any:
        await anyio.lowlevel.checkpoint()
        if self.items:
            return self.items.pop(0)
        if self.exc is not None:
            raise self.exc
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed += 1


class Hanging(Failing):
    """Yields ``items``, then calls ``on_cut`` and waits forever for the next one."""

    def __init__(self, items: Iterable[Any], on_cut: Callable[[], None]) -> None:
        super().__init__(items)
        self.on_cut = on_cut

    async def __anext__(self) -> Any:
        if self.items:
            return self.items.pop(0)
        self.on_cut()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


# -- a source raising at every boundary ----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
async def test_accumulate_source_raising_at_every_chunk_boundary(name: str) -> None:
    pieces = pieces_of(name)
    for k in range(len(pieces) + 1):
        boom = ConnectionResetError(f"reset after {k} chunks")
        with pytest.raises(SourceError) as info:
            await accumulate(Failing(pieces[:k], boom), policy="strict")
        usage, count, _ = implied(b"".join(pieces[:k]))
        assert info.value.__cause__ is boom
        assert wire(info.value.partial) == usage, k
        assert info.value.event_index == count


@pytest.mark.parametrize("name", NAMES)
async def test_accumulate_source_raising_at_every_event_boundary(name: str) -> None:
    events = events_of(name)
    for k in range(len(events) + 1):
        boom = TimeoutError(f"read timed out after {k} events")
        with pytest.raises(SourceError) as info:
            await accumulate(Failing(events[:k], boom), policy="strict")
        usage, _ = implied_by_events(events[:k])
        assert info.value.__cause__ is boom
        assert wire(info.value.partial) == usage, k
        assert info.value.event_index == k


@pytest.mark.parametrize("name", NAMES)
async def test_tap_source_raising_at_every_chunk_boundary(name: str) -> None:
    pieces = pieces_of(name, seed=1)
    for k in range(len(pieces) + 1):
        boom = OSError(f"reset after {k} chunks")
        counted = tap(Failing(pieces[:k], boom), policy="strict")
        seen = []
        with pytest.raises(OSError, match="reset after") as info:
            async for item in counted:
                seen.append(item)
        assert info.value is boom  # the consumer sees the source's own exception
        assert seen == pieces[:k]
        usage, count, _ = implied(b"".join(pieces[:k]))
        assert wire(counted.usage) == usage
        with pytest.raises(SourceError) as final:
            counted.final()
        assert final.value.__cause__ is boom
        assert wire(final.value.partial) == usage
        assert final.value.event_index == count


async def test_accumulate_source_failing_to_close_after_a_stream_error_keeps_the_usage_error() -> (
    None
):
    class BadClose(Failing):
        async def aclose(self) -> None:
            raise OSError("close failed")

    start = {
        "type": "message_start",
        "message": {"usage": {"input_tokens": 10, "output_tokens": 1}},
    }
    with pytest.raises(UsageError) as info:
        await accumulate(BadClose([start, {"type": "message_delta", "usage": None}]))
    assert getattr(info.value, "partial", None) is not None


# -- cancellation at every boundary --------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
async def test_tap_cancelled_at_every_chunk_boundary_keeps_the_partial(name: str) -> None:
    pieces = pieces_of(name, seed=2)
    for k in range(len(pieces) + 1):
        with anyio.CancelScope() as scope:
            counted = tap(Hanging(pieces[:k], scope.cancel), policy="strict")
            async for _ in counted:
                pass
        assert scope.cancelled_caught
        usage, _, complete = implied(b"".join(pieces[:k]))
        assert wire(counted.usage) == usage
        assert counted.complete == complete
        assert counted.error is None
        if complete:
            assert wire(counted.final()) == expected(name)
        else:
            with pytest.raises(IncompleteStreamError) as info:
                counted.final()
            assert wire(info.value.partial) == usage


@pytest.mark.parametrize("name", ["plain", "advisor", "web-search"])
async def test_accumulate_lets_cancellation_through_at_every_boundary(name: str) -> None:
    pieces = pieces_of(name, seed=3)
    for k in range(len(pieces) + 1):
        reached = False
        with anyio.CancelScope() as scope:
            await accumulate(Hanging(pieces[:k], scope.cancel), policy="strict")
            reached = True  # pragma: no cover
        assert scope.cancelled_caught
        assert not reached


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["bytes", "events"])
async def test_worker_cancelled_with_a_stream_cut_at_every_boundary(name: str, kind: str) -> None:
    """One stream per boundary, each fed up to its cut; then the worker's scope is cancelled."""
    items: list[Any] = pieces_of(name, seed=4) if kind == "bytes" else events_of(name)
    with anyio.CancelScope() as scope:
        async with UsageWorker(max_buffer=4, policy="strict") as worker:
            for k in range(len(items) + 1):
                sink = worker.open(k)
                for item in items[:k]:
                    await sink.send(item)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    finished: dict[Hashable, dict[str, Any]] = {}
    for k in range(len(items) + 1):
        if kind == "bytes":
            usage, _, complete = implied(b"".join(items[:k]))
        else:
            usage, complete = implied_by_events(items[:k])
        assert wire(worker.partial(k)) == usage, k
        assert (k in worker.incomplete_keys) == (not complete)
        if complete:
            assert wire(await worker.result(k)) == expected(name)
        else:
            with pytest.raises(IncompleteStreamError):
                await worker.result(k)
        if usage is not None:
            finished[k] = usage
    assert worker.events_processed == sum(range(len(items) + 1))
    assert worker.totals.requests == len(finished)
    assert worker.totals.total.output_tokens == sum(billed(u)[1] for u in finished.values())


# -- slow consumers, full buffers --------------------------------------------------------------


async def test_tap_read_with_a_timeout_on_every_item_counts_each_once() -> None:
    """A slow producer on a rendezvous buffer; the consumer gives up waiting again and again."""
    pieces = pieces_of("advisor", seed=5)
    send, receive = anyio.create_memory_object_stream[bytes](0)
    seen: list[bytes] = []
    timeouts = 0

    async def produce() -> None:
        async with send:
            for i, piece in enumerate(pieces):
                if i % 3 == 0:
                    await anyio.sleep(0.002)
                await send.send(piece)

    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(produce)
        counted = tap(receive, policy="strict")
        while True:
            with anyio.move_on_after(0.0005) as scope:
                try:
                    item = await counted.__anext__()
                except StopAsyncIteration:
                    break
                seen.append(item)
            if scope.cancelled_caught:
                timeouts += 1
    assert timeouts > 0, "no read timed out: the test proved nothing"
    assert seen == pieces
    assert wire(counted.final()) == expected("advisor")


async def test_slow_consumer_stalls_a_fast_producer_without_losing_anything() -> None:
    pieces = pieces_of("web-search", seed=6)
    send, receive = anyio.create_memory_object_stream[bytes](1)
    blocked = 0

    async def produce() -> None:
        nonlocal blocked
        async with send:
            for piece in pieces:
                try:
                    send.send_nowait(piece)
                except anyio.WouldBlock:
                    blocked += 1
                    await send.send(piece)

    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(produce)
        counted = tap(receive, policy="strict")
        async for _ in counted:
            await anyio.sleep(0.0005)  # the consumer does slow work per item
    assert blocked > 0
    assert wire(counted.final()) == expected("web-search")


async def test_worker_with_a_slow_callback_and_full_buffer() -> None:
    """on_result takes time while tasks and threads push into a one-item buffer."""
    results: list[StreamResult] = []

    def slow(result: StreamResult) -> None:
        time.sleep(0.001)
        results.append(result)

    plans = {i: pieces_of(NAMES[i % len(NAMES)], seed=i) for i in range(24)}
    async with UsageWorker(max_buffer=1, on_result=slow, policy="strict") as worker:
        sinks = {i: worker.open(i) for i in plans}

        async def task_feed(i: int) -> None:
            for piece in plans[i]:
                await sinks[i].send(piece)
            await sinks[i].close()

        def thread_feed(i: int) -> None:
            for piece in plans[i]:
                sinks[i].send_from_thread(piece)
            sinks[i].close_from_thread()

        threads = [threading.Thread(target=thread_feed, args=(i,)) for i in plans if i % 2]
        for thread in threads:
            thread.start()
        async with anyio.create_task_group() as tg:
            for i in plans:
                if not i % 2:
                    tg.start_soon(task_feed, i)
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
    assert sorted(str(r.key) for r in results) == sorted(map(str, plans))  # each once
    for i in plans:
        assert wire(await worker.result(i)) == expected(NAMES[i % len(NAMES)])
    assert worker.events_processed == sum(len(p) for p in plans.values())
    assert_totals(worker, [expected(NAMES[i % len(NAMES)]) for i in plans])


# -- shutdown while feeding --------------------------------------------------------------------


async def test_exception_in_the_worker_block_while_tasks_and_threads_feed() -> None:
    n = 16
    plans = {i: pieces_of(NAMES[i % len(NAMES)], seed=100 + i) for i in range(n)}
    accepted = dict.fromkeys(plans, 0)
    refused: list[int] = []

    async def task_feed(sink: Any, i: int) -> None:
        try:
            for piece in plans[i]:
                await sink.send(piece)
                accepted[i] += 1
                await anyio.sleep(0)
        except LocalUsageError:
            refused.append(i)

    def thread_feed(sink: Any, i: int) -> None:
        try:
            for piece in plans[i]:
                sink.send_from_thread(piece)
                accepted[i] += 1
        except LocalUsageError:
            refused.append(i)

    threads: list[threading.Thread] = []
    caught: BaseException | None = None
    try:
        async with (
            anyio.create_task_group() as outer,
            UsageWorker(max_buffer=2, policy="strict") as worker,
        ):
            for i in plans:
                sink = worker.open(i)
                if i % 2:
                    threads.append(threading.Thread(target=thread_feed, args=(sink, i)))
                    threads[-1].start()
                else:
                    outer.start_soon(task_feed, sink, i)
            while worker.events_processed < n * 5:
                await anyio.sleep(0.001)
            raise RuntimeError("the request handler failed")
    except BaseException as exc:  # the task group may wrap it in an exception group
        caught = exc
    assert "the request handler failed" in [str(e) for e in leaves(caught)]
    await anyio.to_thread.run_sync(join_all, threads)
    assert refused, "the shutdown came too late to test anything"
    check_accepted(worker, plans, accepted)


async def test_deadline_while_threads_are_blocked_on_a_full_buffer() -> None:
    n = 6
    plans = {i: pieces_of(NAMES[i % len(NAMES)], seed=200 + i) for i in range(n)}
    accepted = dict.fromkeys(plans, 0)
    refused: list[int] = []
    go = threading.Event()

    def thread_feed(sink: Any, i: int) -> None:
        go.wait()
        try:
            for piece in plans[i]:
                sink.send_from_thread(piece)
                accepted[i] += 1
        except LocalUsageError:
            refused.append(i)

    threads: list[threading.Thread] = []
    with anyio.move_on_after(30) as scope:
        async with UsageWorker(max_buffer=0, policy="strict") as worker:
            for i in plans:
                threads.append(threading.Thread(target=thread_feed, args=(worker.open(i), i)))
                threads[-1].start()
            go.set()
            while worker.events_processed < n * 3:
                await anyio.sleep(0.0005)
            scope.deadline = anyio.current_time()  # the deadline expires now
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    await anyio.to_thread.run_sync(join_all, threads)
    assert refused, "the deadline came too late to test anything"
    check_accepted(worker, plans, accepted)


# -- thread feeders racing task feeders ----------------------------------------------------------


async def test_threads_and_tasks_open_feed_and_close_streams_at_once() -> None:
    n = 60
    plans: dict[Hashable, list[Any]] = {}
    finals: dict[Hashable, dict[str, Any]] = {}
    for i in range(n):
        name = NAMES[i % len(NAMES)]
        plans[i] = pieces_of(name, seed=300 + i) if i % 3 else events_of(name)
        finals[i] = expected(name)
    results: list[StreamResult] = []
    duplicates: list[str] = []

    async with UsageWorker(max_buffer=3, on_result=results.append, policy="strict") as worker:

        async def task_feed(keys: list[int]) -> None:
            for key in keys:
                async with worker.open(key) as sink:
                    for item in plans[key]:
                        await sink.send(item)
                        await anyio.sleep(0)

        def thread_feed(keys: list[int]) -> None:
            for key in keys:
                sink = worker.open_from_thread(key)
                for item in plans[key]:
                    sink.send_from_thread(item)
                sink.close_from_thread()

        def racer(owner: str) -> None:
            # Both a thread and a task try to open "race": exactly one may.
            try:
                sink = worker.open_from_thread("race")
            except LocalUsageError:
                duplicates.append(owner)
                return
            for item in plans[0]:
                sink.send_from_thread(item)
            sink.close_from_thread()

        async def task_racer() -> None:
            try:
                sink = worker.open("race")
            except LocalUsageError:
                duplicates.append("task")
                return
            async with sink:
                for item in plans[0]:
                    await sink.send(item)

        keys = list(range(n))
        threads = [threading.Thread(target=thread_feed, args=(keys[t::6],)) for t in range(3)]
        threads.append(threading.Thread(target=racer, args=("thread",)))
        for thread in threads:
            thread.start()
        async with anyio.create_task_group() as tg:
            for t in range(3, 6):
                tg.start_soon(task_feed, keys[t::6])
            tg.start_soon(task_racer)
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)

    assert len(duplicates) == 1
    finals["race"] = finals[0]
    assert sorted(map(str, (r.key for r in results))) == sorted(map(str, finals))
    assert all(r.complete for r in results)
    for key, final in finals.items():
        assert wire(await worker.result(key)) == final
    assert worker.events_processed == sum(len(p) for p in plans.values()) + len(plans[0])
    assert_totals(worker, list(finals.values()))


# -- helpers -----------------------------------------------------------------------------------


def join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def leaves(exc: BaseException | None) -> list[BaseException]:
    if exc is None:
        return []
    inner = getattr(exc, "exceptions", None)
    if inner is None:
        return [exc]
    return [leaf for child in inner for leaf in leaves(child)]


def billed(usage: dict[str, Any]) -> tuple[int, int]:
    """Billed input and output of a final usage, by docs/semantics.md, section 3 written out:
    the sum over every entry, except declined attempts before a fallback that produced no
    output; the top level when there are no iterations."""
    entries = usage.get("iterations") or []
    if not entries:
        return usage["input_tokens"], usage["output_tokens"]
    fallbacks = [i for i, e in enumerate(entries) if e["type"] == "fallback_message"]
    serving = fallbacks[-1] if fallbacks else None  # the serving attempt: the last fallback
    kept = [
        e
        for i, e in enumerate(entries)
        if serving is None
        or not (i < serving and e["type"] == "message" and not e["output_tokens"])
    ]
    return sum(e["input_tokens"] for e in kept), sum(e["output_tokens"] for e in kept)


def assert_totals(worker: UsageWorker, usages: list[dict[str, Any]]) -> None:
    total = worker.totals.total
    assert (total.input_tokens, total.output_tokens) == (
        sum(billed(u)[0] for u in usages),
        sum(billed(u)[1] for u in usages),
    )
    assert worker.totals.requests == len(usages)


def check_accepted(
    worker: UsageWorker, plans: dict[int, list[bytes]], accepted: dict[int, int]
) -> None:
    """Each stream's usage is exactly that of the items whose send returned."""
    counted = []
    for i, pieces in plans.items():
        usage, _, complete = implied(b"".join(pieces[: accepted[i]]))
        assert wire(worker.partial(i)) == usage, i
        assert (i not in worker.incomplete_keys) == complete
        if usage is not None:
            counted.append(usage)
    assert worker.events_processed == sum(accepted.values())
    assert worker.totals.requests == len(counted)
    assert worker.totals.total.output_tokens == sum(billed(u)[1] for u in counted)
