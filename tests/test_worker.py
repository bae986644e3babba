"""UsageWorker: results, totals, threads, backpressure, shutdown, cancellation and load.

Every expected figure is computed here from the generated streams with plain arithmetic,
never with usagetally's own functions.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from support import reference_merge, wire

import usagetally
from usagetally import (
    IncompleteStreamError,
    LocalUsageError,
    MalformedEventError,
    StreamResult,
    UsageWorker,
)
from usagetally.testing import sse_bytes

pytestmark = pytest.mark.anyio

MODELS = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-7"]


# -- generated streams -------------------------------------------------------------------------


def start(i: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "model": MODELS[i % 3],
            "usage": {
                "input_tokens": i + 1,
                "output_tokens": 1,
                "cache_read_input_tokens": i % 7,
                "cache_creation_input_tokens": 0,
            },
        },
    }


def events(i: int, deltas: int = 2) -> list[dict[str, Any]]:
    """Stream ``i``: cumulative output counts 10, 20, ... on each delta; the last is final."""
    out = [start(i), {"type": "content_block_start", "index": 0, "content_block": {}}]
    out.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}})
    out.append({"type": "content_block_stop", "index": 0})
    for d in range(1, deltas + 1):
        usage = {"output_tokens": 10 * d + i % 5}
        out.append({"type": "message_delta", "delta": {}, "usage": usage})
    out.append({"type": "message_stop"})
    return out


def encode(event: dict[str, Any]) -> bytes:
    """One event as the API frames it (``usagetally.testing.sse_bytes``)."""
    return sse_bytes([event])


def as_chunks(evs: list[dict[str, Any]], rng: random.Random) -> list[bytes]:
    """The stream's bytes, cut at random places (not at event boundaries)."""
    raw = b"".join(encode(e) for e in evs)
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(len(evs), len(raw) - 1)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def merged(evs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The usage of a prefix of events, by the merge rule (``support.reference_merge``)."""
    return reference_merge((e["type"], e) for e in evs)


def complete(evs: list[dict[str, Any]]) -> bool:
    kinds = [e["type"] for e in evs]
    return "message_stop" in kinds and "message_delta" in kinds


def expected_totals(usages: Mapping[Any, tuple[str, dict[str, Any]]]) -> dict[str, list[int]]:
    """Per model: [input, output, cache read, cache creation], summed."""
    totals: dict[str, list[int]] = {}
    for model, usage in usages.values():
        row = totals.setdefault(model, [0, 0, 0, 0])
        row[0] += usage["input_tokens"]
        row[1] += usage["output_tokens"]
        row[2] += usage.get("cache_read_input_tokens", 0)
        row[3] += usage.get("cache_creation_input_tokens", 0)
    return totals


def totals_of(worker: UsageWorker) -> dict[str, list[int]]:
    out = {}
    for model, counts in worker.totals.by_model.items():
        assert model is not None
        out[model] = [
            counts.input_tokens,
            counts.output_tokens,
            counts.cache_read_input_tokens,
            counts.cache_creation_input_tokens,
        ]
    return out


# -- basics ------------------------------------------------------------------------------------


async def test_results_callback_and_totals() -> None:
    results: list[StreamResult] = []
    rng = random.Random(1)
    items = {i: as_chunks(events(i), rng) if i % 2 else events(i) for i in range(6)}
    async with UsageWorker(on_result=results.append) as worker:
        for i in range(6):
            async with worker.open(i) as sink:
                for item in items[i]:
                    await sink.send(item)
        usages = {i: await worker.result(i) for i in range(6)}
    for i, usage in usages.items():
        assert wire(usage) == merged(events(i))
    assert sorted(r.key for r in results) == list(range(6))  # type: ignore[type-var]
    assert all(r.complete and r.error is None for r in results)
    assert {r.key: r.model for r in results} == {i: MODELS[i % 3] for i in range(6)}
    want = expected_totals({i: (MODELS[i % 3], merged(events(i)) or {}) for i in range(6)})
    assert totals_of(worker) == want
    assert worker.totals.requests == 6
    assert worker.totals.incomplete == 0
    assert worker.incomplete_keys == []
    assert worker.events_processed == sum(len(v) for v in items.values())


async def test_callbacks_run_in_the_workers_task_and_streams_without_them_finish_at_close() -> None:
    # Items and, without callbacks, the stream's end are taken in the sender's task when
    # nothing of the stream waits in the buffer (the worker's fast path); callbacks always
    # run in the worker's own task, whatever the path.
    seen: list[tuple[str, object]] = []

    def where(kind: str) -> None:
        seen.append((kind, anyio.get_current_task().name))

    def on_result(result: StreamResult) -> None:
        where("on_result")

    def on_finish(usage: Any, model: Any, complete: bool) -> None:
        where("on_finish")

    async with UsageWorker(on_result=on_result, on_finish=on_finish) as worker:
        for key in range(3):
            async with worker.open(key) as sink:
                for chunk in as_chunks(events(key), random.Random(key)):
                    await sink.send(chunk)
        assert [wire(await worker.result(k)) for k in range(3)] == [
            merged(events(k)) for k in range(3)
        ]
    assert (
        sorted(seen)
        == [("on_finish", "usagetally.UsageWorker")] * 3
        + [("on_result", "usagetally.UsageWorker")] * 3
    )
    async with UsageWorker() as worker:
        async with worker.open("a") as sink:
            for chunk in as_chunks(events(1), random.Random(5)):
                await sink.send(chunk)
        # Finished by the close itself: the result is there before the worker's task ran.
        assert worker.totals.requests == 1
        assert wire(await worker.result("a")) == merged(events(1))


async def test_result_waits_for_close() -> None:
    async with UsageWorker() as worker:
        sink = worker.open("a", model="mine")
        got: list[Any] = []

        async def wait() -> None:
            got.append(await worker.result("a"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            for event in events(3):
                await sink.send(event)
            await anyio.sleep(0.01)
            assert got == []
            assert wire(worker.partial("a")) == merged(events(3))
            await sink.close()
    assert wire(got[0]) == merged(events(3))
    assert list(worker.totals.by_model) == ["mine"]  # the model given to open() wins


async def test_send_nowait_and_backpressure() -> None:
    async with UsageWorker(max_buffer=2) as worker:
        sink = worker.open(0)
        evs = events(0, deltas=8)
        sent = 0
        with pytest.raises(anyio.WouldBlock):
            for event in evs:
                sink.send_nowait(event)
                sent += 1
        assert 2 <= sent <= 3  # the buffer, and maybe one handed straight to the worker
        for event in evs[sent:]:
            await sink.send(event)  # waits for room
        await sink.close()
        assert wire(await worker.result(0)) == merged(evs)


async def test_rendezvous_buffer() -> None:
    async with UsageWorker(max_buffer=0) as worker:
        async with worker.open("k") as sink:
            for event in events(5):
                await sink.send(event)
        assert wire(await worker.result("k")) == merged(events(5))


async def test_misuse() -> None:
    worker = UsageWorker()
    with pytest.raises(LocalUsageError):
        worker.open(1)
    with pytest.raises(ValueError, match="max_buffer"):
        UsageWorker(max_buffer=-1)
    with pytest.raises(LocalUsageError):
        UsageWorker(policy="loud")  # type: ignore[arg-type]
    async with worker:
        sink = worker.open(1)
        with pytest.raises(LocalUsageError, match="already"):
            worker.open(1)
        await sink.close()
        await sink.close()  # idempotent
        assert sink.closed
        with pytest.raises(LocalUsageError, match="closed"):
            await sink.send(b"x")
        with pytest.raises(LocalUsageError, match="closed"):
            sink.send_nowait(b"x")
        with pytest.raises(KeyError):
            worker.partial(2)
        with pytest.raises(KeyError):
            await worker.result(2)
    with pytest.raises(LocalUsageError):
        async with worker:
            pass  # pragma: no cover
    with pytest.raises(LocalUsageError):
        worker.open(3)
    assert "stopped" in repr(worker)
    assert "UsageSink" in repr(sink)


async def test_stream_errors_are_results() -> None:
    bad = {"type": "message_delta", "usage": {"output_tokens": -5}}
    results: list[StreamResult] = []
    async with UsageWorker(on_result=results.append) as worker:
        async with worker.open("bad") as sink:
            for event in [start(4), bad, *events(4)[4:]]:
                await sink.send(event)
        async with worker.open("text") as sink:
            await sink.send("event: ping\n\n")
    with pytest.raises(MalformedEventError) as info:
        await worker.result("bad")
    assert wire(info.value.partial) == merged([start(4)])
    assert worker.incomplete_keys == ["bad", "text"]
    assert [r.complete for r in results] == [False, False]
    assert worker.totals.requests == 1  # "text" never had message_start: nothing to add
    assert worker.totals.incomplete == 1
    assert totals_of(worker) == expected_totals({"bad": (MODELS[1], merged([start(4)]) or {})})


async def test_callback_errors_do_not_stop_the_worker() -> None:
    seen: list[Hashable] = []

    def callback(result: StreamResult) -> None:
        seen.append(result.key)
        raise RuntimeError(f"callback {result.key}")

    with pytest.raises(RuntimeError, match="callback 0"):
        async with UsageWorker(on_result=callback) as worker:
            for i in range(3):
                async with worker.open(i) as sink:
                    for event in events(i):
                        await sink.send(event)
    assert seen == [0, 1, 2]
    assert worker.totals.requests == 3


async def test_keep_results_false() -> None:
    results: list[StreamResult] = []
    async with UsageWorker(keep_results=False, on_result=results.append) as worker:
        for _ in range(2):  # a finished key can be opened again
            async with worker.open("k") as sink:
                for event in events(1):
                    await sink.send(event)
            while len(results) < 1:
                await anyio.sleep(0)
            with pytest.raises(KeyError):
                worker.partial("k")
            results.clear()
    assert worker.totals.requests == 2


async def test_bytearray_is_copied_when_sent() -> None:
    raw = bytearray(b"".join(encode(e) for e in events(2)))
    async with UsageWorker() as worker:
        sink = worker.open(0)
        await sink.send(raw)
        raw[:] = b"x" * len(raw)  # changed before the worker reads it
        await sink.close()
    assert wire(await worker.result(0)) == merged(events(2))


# -- shutdown and cancellation -------------------------------------------------------------------


async def test_unclosed_sinks_are_finished_at_shutdown() -> None:
    async with UsageWorker() as worker:
        whole = worker.open("whole")
        for event in events(1):
            await whole.send(event)
        cut = worker.open("cut")
        for event in events(2)[:5]:
            await cut.send(event)
        worker.open("empty")
    assert wire(await worker.result("whole")) == merged(events(1))
    with pytest.raises(IncompleteStreamError) as info:
        await worker.result("cut")
    assert wire(info.value.partial) == merged(events(2)[:5])
    assert wire(worker.partial("cut")) == merged(events(2)[:5])
    assert worker.incomplete_keys == ["cut", "empty"]
    assert worker.totals.requests == 2
    assert worker.totals.incomplete == 1
    await cut.close()  # after shutdown: nothing to do
    with pytest.raises(LocalUsageError):
        await cut.send(b"")


async def test_cancellation_keeps_partial_usage() -> None:
    n = 50
    with anyio.CancelScope() as scope:
        async with UsageWorker(max_buffer=8) as worker:
            sinks = [worker.open(i) for i in range(n)]
            for step in range(5):  # message_start ... the first message_delta
                for i in range(n):
                    await sinks[i].send(events(i)[step])
            waiting = [False]

            async def waiter() -> None:
                waiting[0] = True
                await worker.result(0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                await anyio.sleep(0.01)
                scope.cancel()
                await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert waiting[0]
    assert worker.incomplete_keys == list(range(n))
    for i in range(n):
        assert wire(worker.partial(i)) == merged(events(i)[:5])
        with pytest.raises(IncompleteStreamError):
            await worker.result(i)
    want = expected_totals({i: (MODELS[i % 3], merged(events(i)[:5]) or {}) for i in range(n)})
    assert totals_of(worker) == want
    assert worker.totals.incomplete == n


@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("cut", range(len(events(0)) + 1))
async def test_cut_at_every_event_boundary(cut: int, how: str) -> None:
    evs = events(7)
    raw = [encode(e) for e in evs]
    with anyio.move_on_after(30) as scope:
        async with UsageWorker(max_buffer=2) as worker:
            as_events, as_bytes = worker.open("events"), worker.open("bytes")
            for event, chunk in zip(evs[:cut], raw[:cut], strict=True):
                await as_events.send(event)
                await as_bytes.send(chunk)
            if how == "timeout":
                scope.deadline = anyio.current_time()
            else:
                scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    for key in ("events", "bytes"):
        assert wire(worker.partial(key)) == merged(evs[:cut])
        assert (key in worker.incomplete_keys) != complete(evs[:cut])
    want = {k: (MODELS[7 % 3], merged(evs[:cut]) or {}) for k in ("events", "bytes")}
    assert totals_of(worker) == (expected_totals(want) if cut else {})


async def test_cancellation_while_producers_are_blocked() -> None:
    # Producers blocked on a full buffer when the worker's scope is cancelled: what they
    # had sent is counted, exactly.
    n = 40
    accepted = [0] * n
    with anyio.CancelScope() as scope:
        async with UsageWorker(max_buffer=1) as worker:

            async def produce(i: int) -> None:
                sink = worker.open(i)
                for k, event in enumerate(events(i, deltas=6)):
                    if k == 0:
                        # Queued (send() takes an item at once while none of its stream
                        # is queued), waiting for room: the later sends queue behind it
                        # and block on the full buffer.
                        while True:
                            try:
                                sink.send_nowait(event)
                                break
                            except anyio.WouldBlock:
                                await anyio.sleep(0)
                    else:
                        await sink.send(event)
                    accepted[i] += 1

            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(produce, i)
                while worker.events_processed < 3 * n:
                    await anyio.sleep(0)
                scope.cancel()
    assert scope.cancelled_caught
    for i in range(n):
        assert wire(worker.partial(i)) == merged(events(i, deltas=6)[: accepted[i]])
    assert worker.events_processed == sum(accepted)


@pytest.mark.parametrize("buffer", [0, 4, 1000])
async def test_shutdown_while_feeding_loses_nothing(buffer: int) -> None:
    """Producers outside the worker keep sending while it shuts down.

    Each send either returned (then the item is counted) or raised LocalUsageError (then it
    is not): every stream's usage is the merge of exactly the items accepted.
    """
    n_tasks, n_threads, per = 6, 2, 20
    n = (n_tasks + n_threads) * per
    plans = {i: events(i, deltas=5) for i in range(n)}
    accepted = dict.fromkeys(range(n), 0)
    refused: list[int] = []

    async with anyio.create_task_group() as outer:
        async with UsageWorker(max_buffer=buffer) as worker:
            sinks = [worker.open(i) for i in range(n)]

            async def task_producer(part: int) -> None:
                mine = range(part * per, (part + 1) * per)
                try:
                    for step in range(len(plans[0])):
                        for i in mine:
                            await sinks[i].send(plans[i][step])
                            accepted[i] += 1
                            await anyio.sleep(0)
                    for i in mine:
                        await sinks[i].close()
                except LocalUsageError:
                    refused.append(part)

            def thread_producer(part: int) -> None:
                mine = range(part * per, (part + 1) * per)
                try:
                    for step in range(len(plans[0])):
                        for i in mine:
                            sinks[i].send_from_thread(plans[i][step])
                            accepted[i] += 1
                except LocalUsageError:
                    refused.append(part)

            for part in range(n_tasks):
                outer.start_soon(task_producer, part)
            threads = [
                threading.Thread(target=thread_producer, args=(n_tasks + t,))
                for t in range(n_threads)
            ]
            for thread in threads:
                thread.start()
            while worker.events_processed < n * 2:
                await anyio.sleep(0.001)
        # The worker has stopped; producers find out at their next send.
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
    assert refused, "the shutdown came too late to test anything"
    for i in range(n):
        prefix = plans[i][: accepted[i]]
        assert wire(worker.partial(i)) == merged(prefix), i
        assert (i not in worker.incomplete_keys) == complete(prefix)
    assert worker.events_processed == sum(accepted.values())
    finished = {i: (MODELS[i % 3], merged(plans[i][: accepted[i]])) for i in range(n)}
    want = expected_totals({k: (m, u) for k, (m, u) in finished.items() if u is not None})
    assert totals_of(worker) == want


# -- threads and load ----------------------------------------------------------------------------


async def test_plain_threads() -> None:
    async with UsageWorker(max_buffer=1) as worker:

        def work() -> None:
            sink = worker.open_from_thread("t")
            for item in as_chunks(events(9), random.Random(9)):
                sink.send_from_thread(bytearray(item))
            sink.close_from_thread()

        thread = threading.Thread(target=work)
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        usage = await worker.result("t")
    assert wire(usage) == merged(events(9))


async def test_from_thread_methods_refuse_the_loop_thread() -> None:
    async with UsageWorker() as worker:
        sink = worker.open(1)
        with pytest.raises(LocalUsageError, match="event loop's thread"):
            sink.send_from_thread(b"")
        with pytest.raises(LocalUsageError, match="event loop's thread"):
            sink.close_from_thread()
        with pytest.raises(LocalUsageError, match="event loop's thread"):
            worker.open_from_thread(2)
    with pytest.raises(LocalUsageError, match="not started"):
        UsageWorker().open_from_thread(1)


async def test_thousand_concurrent_streams_from_tasks_and_threads() -> None:
    """1,000 streams open at once, fed interleaved from 8 tasks and 4 plain threads."""
    n = 1000
    rng = random.Random(1000)
    plans: dict[int, list[Any]] = {}
    finals: dict[Hashable, tuple[str, dict[str, Any]]] = {}
    for i in range(n):
        evs = events(i, deltas=1 + i % 3)
        final = merged(evs)
        assert final is not None
        finals[i] = (MODELS[i % 3], final)
        plans[i] = as_chunks(evs, rng) if i % 2 else evs
    owners = list(range(n))
    rng.shuffle(owners)
    parts = [owners[p::12] for p in range(12)]  # 8 task parts, then 4 thread parts
    results: list[StreamResult] = []

    async with UsageWorker(max_buffer=64, on_result=results.append) as worker:
        sinks = {i: worker.open(i) for i in range(n)}  # all 1,000 open at once

        async def task_feed(mine: list[int]) -> None:
            queues = {i: list(plans[i]) for i in mine}
            while queues:
                for i in list(queues):
                    await sinks[i].send(queues[i].pop(0))
                    if not queues[i]:
                        del queues[i]
                        await sinks[i].close()

        def thread_feed(mine: list[int]) -> None:
            queues = {i: list(plans[i]) for i in mine}
            while queues:
                for i in list(queues):
                    sinks[i].send_from_thread(queues[i].pop(0))
                    if not queues[i]:
                        del queues[i]
                        sinks[i].close_from_thread()

        threads = [threading.Thread(target=thread_feed, args=(parts[8 + t],)) for t in range(4)]
        for thread in threads:
            thread.start()
        async with anyio.create_task_group() as tg:
            for p in range(8):
                tg.start_soon(task_feed, parts[p])
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
        for i in range(n):
            assert wire(await worker.result(i)) == finals[i][1]

    assert len(results) == n
    assert len({r.key for r in results}) == n
    assert worker.events_processed == sum(len(p) for p in plans.values())
    assert totals_of(worker) == expected_totals(finals)
    assert worker.totals.requests == n
    assert worker.totals.incomplete == 0
    assert worker.incomplete_keys == []


# -- synchronous programs: the worker in a thread of its own -------------------------------------


def test_sync_program_feeds_the_worker_from_a_thread_pool() -> None:
    """No event loop in sight: ``with UsageWorker()`` and the thread-safe calls only."""
    n = 60
    rng = random.Random(60)
    plans = {i: (as_chunks(events(i), rng) if i % 2 else events(i)) for i in range(n)}
    results: list[StreamResult] = []

    def relay(i: int) -> Any:
        with worker.open_from_thread(i) as sink:  # closed when the block ends
            for item in plans[i]:
                sink.send_from_thread(item)
        return wire(worker.result_from_thread(i))

    with UsageWorker(max_buffer=8, on_result=results.append) as worker:
        with pytest.raises(LocalUsageError, match="event loop thread"):
            worker.open("not from here")
        with pytest.raises(LocalUsageError, match="event loop thread"):
            _ = worker.totals
        with ThreadPoolExecutor(max_workers=4) as pool:
            finals = list(pool.map(relay, range(n)))
        running = worker.totals_from_thread()
    assert finals == [merged(events(i)) for i in range(n)]
    assert running.requests == n
    assert worker.totals.requests == n  # readable from any thread once stopped
    assert totals_of(worker) == expected_totals(
        {i: (MODELS[i % 3], merged(events(i)) or {}) for i in range(n)}
    )
    assert len(results) == n
    assert wire(worker.result_from_thread(3)) == merged(events(3))
    with pytest.raises(LocalUsageError, match="stopped"):
        worker.open_from_thread(n)


def test_sync_worker_sink_block_records_the_exception_and_shutdown_finishes_the_rest() -> None:
    with UsageWorker() as worker:
        with pytest.raises(ConnectionResetError), worker.open_from_thread("cut") as sink:
            for event in events(1)[:3]:
                sink.send_from_thread(event)
            raise ConnectionResetError("peer went away")
        left_open = worker.open_from_thread("open")
        left_open.send_from_thread(events(2)[0])
    with pytest.raises(usagetally.SourceError) as info:
        worker.result_from_thread("cut")
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert wire(info.value.partial) == merged(events(1)[:3])
    with pytest.raises(IncompleteStreamError):
        worker.result_from_thread("open")
    assert worker.incomplete_keys == ["cut", "open"]
    left_open.close_from_thread()  # after the shutdown: nothing to do, no error


def test_sync_worker_runs_once_and_its_exit_needs_its_enter() -> None:
    worker = UsageWorker()
    with pytest.raises(LocalUsageError, match="not started with `with`"):
        worker.__exit__(None, None, None)
    with worker:
        pass
    with pytest.raises(LocalUsageError, match="runs once"), worker:
        pass  # pragma: no cover


def test_sync_worker_raises_the_first_callback_error_at_exit() -> None:
    def callback(result: StreamResult) -> None:
        raise RuntimeError(f"callback {result.key}")

    with pytest.raises(RuntimeError, match="callback a"), UsageWorker(on_result=callback) as worker:
        for key in ("a", "b"):
            with worker.open_from_thread(key) as sink:
                for event in events(0):
                    sink.send_from_thread(event)
    assert worker.totals.requests == 2


async def test_a_loop_of_sends_that_never_waits_still_ends_when_cancelled() -> None:
    # send() enters the scheduler only when it must wait, and checks cancellation on a
    # stream's first item and every 32nd: a loop of sends still ends, and what it sent is
    # counted exactly.
    plan = events(3, deltas=100)
    async with UsageWorker() as worker:
        sink = worker.open("k")
        sent = 0
        with anyio.CancelScope() as scope:
            for event in plan:
                if sent == 5:
                    scope.cancel()
                await sink.send(event)
                sent += 1
        assert scope.cancelled_caught
        assert 5 <= sent <= 5 + 32
        assert worker.events_processed == sent
        assert wire(worker.partial("k")) == merged(plan[:sent])
        with anyio.CancelScope() as scope:
            scope.cancel()
            await worker.open("first").send(plan[0])
        assert scope.cancelled_caught
        assert worker.events_processed == sent
