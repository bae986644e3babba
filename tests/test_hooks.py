"""The ``on_finish`` hook of accumulate, tap and UsageWorker: called once per stream, always."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from support import EXAMPLES

from usagetally import (
    BetaUsage,
    IncompleteStreamError,
    SourceError,
    StreamErrorEvent,
    StreamResult,
    UsageWorker,
    accumulate,
    converter,
    tap,
    testing,
)
from usagetally.otel import otel_hook

PLAIN = (EXAMPLES / "plain.sse").read_bytes()
EXPECTED = json.loads((EXAMPLES / "expected" / "plain.json").read_text())
CUT = PLAIN[: PLAIN.index(b"event: message_delta")]

Call = tuple[Any, str | None, bool]

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        wire = None if usage is None else converter.unstructure(usage)
        self.calls.append((wire, model, complete))


async def body(data: bytes, *, fail: bool = False, size: int = 97) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
    if fail:
        raise ConnectionResetError("peer went away")


async def test_accumulate_reports_success_once() -> None:
    hook = Recorder()
    usage = await accumulate(body(PLAIN), on_finish=hook)
    assert hook.calls == [(EXPECTED, "claude-sonnet-4-6", True)]
    assert converter.unstructure(usage) == EXPECTED


async def test_accumulate_reports_the_partial_of_a_cut_stream() -> None:
    hook = Recorder()
    with pytest.raises(IncompleteStreamError) as info:
        await accumulate(body(CUT), on_finish=hook)
    assert hook.calls == [(converter.unstructure(info.value.partial), "claude-sonnet-4-6", False)]


async def test_accumulate_reports_a_source_error_and_keeps_it() -> None:
    def broken(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        raise RuntimeError("the hook failed too")

    with pytest.raises(SourceError) as info:
        await accumulate(body(CUT, fail=True), on_finish=broken)
    assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_accumulate_reports_cancellation() -> None:
    hook = Recorder()

    async def slow() -> AsyncIterator[bytes]:
        yield CUT
        await anyio.sleep(10)
        yield b""

    with anyio.move_on_after(0.05):
        await accumulate(slow(), on_finish=hook)
    assert len(hook.calls) == 1
    wire, _, complete = hook.calls[0]
    assert complete is False
    assert wire is not None
    assert wire["output_tokens"] == 1


async def test_tap_reports_once_at_final() -> None:
    hook = Recorder()
    async with tap(body(PLAIN), on_finish=hook) as counted:
        async for _ in counted:
            pass
        counted.final()
        counted.final()
    assert hook.calls == [(EXPECTED, "claude-sonnet-4-6", True)]


async def test_tap_closed_without_final_still_reports() -> None:
    hook = Recorder()
    async with tap(body(PLAIN, size=40), on_finish=hook) as counted:
        async for _ in counted:
            break
    assert len(hook.calls) == 1
    assert hook.calls[0][2] is False


async def test_worker_reports_each_stream() -> None:
    hook = Recorder()
    async with UsageWorker(on_finish=hook) as worker:
        for key, data in (("a", PLAIN), ("b", CUT)):
            sink = worker.open(key)
            await sink.send(data)
            await sink.close()
    assert sorted(call[2] for call in hook.calls) == [False, True]
    assert (EXPECTED, "claude-sonnet-4-6", True) in hook.calls


async def test_otel_hook_wires_in_one_argument() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        await accumulate(body(PLAIN), on_finish=otel_hook(provider.get_meter("test")))
        data = reader.get_metrics_data()
        assert data is not None
        names = {
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        assert "gen_ai.client.token.usage" in names
        assert "usagetally.billed.output_tokens" in names
    finally:
        provider.shutdown()


# -- the hook runs once when a stream is read to its end; its errors lose nothing -------------


async def test_tap_read_to_the_end_reports_without_final_or_aclose() -> None:
    closed_when_called: list[bool] = []
    hook = Recorder()
    async with testing.anthropic_client(PLAIN) as client:
        stream = await client.beta.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[], stream=True
        )

        def watching(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
            closed_when_called.append(stream.response.is_closed)
            hook(usage, model, complete)

        counted = tap(stream, on_finish=watching)
        async for _ in counted:
            assert hook.calls == []
        # Neither final() nor aclose(): the metrics are out all the same, once.
        assert hook.calls == [(EXPECTED, "claude-sonnet-4-6", True)]
        assert closed_when_called == [True]
        async for _ in counted:
            raise AssertionError("the tap has ended")  # pragma: no cover
        await counted.aclose()
        counted.final()
    assert len(hook.calls) == 1


async def test_tap_source_error_reports_at_once() -> None:
    hook = Recorder()
    counted = tap(body(CUT, fail=True), on_finish=hook)
    with pytest.raises(ConnectionResetError):
        async for _ in counted:
            pass
    assert len(hook.calls) == 1
    assert hook.calls[0][2] is False
    with pytest.raises(SourceError):
        counted.final()
    assert len(hook.calls) == 1


async def test_a_failing_hook_is_logged_and_the_result_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        raise RuntimeError("exporter down")

    with caplog.at_level(logging.ERROR, logger="usagetally"):
        usage = await accumulate(body(PLAIN), on_finish=broken)
        counted = tap(body(PLAIN), on_finish=broken)
        async for _ in counted:
            pass
    assert converter.unstructure(usage) == EXPECTED
    assert converter.unstructure(counted.final()) == EXPECTED
    assert isinstance(counted.hook_error, RuntimeError)
    assert len(caplog.records) == 2
    assert all("exporter down" in r.getMessage() for r in caplog.records)


async def test_worker_hook_error_is_on_that_streams_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    results: list[StreamResult] = []

    def hook(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        if not complete:
            raise RuntimeError("cannot export a partial")

    with (
        caplog.at_level(logging.ERROR, logger="usagetally"),
        pytest.raises(RuntimeError, match="cannot export"),
    ):
        async with UsageWorker(on_finish=hook, on_result=results.append) as worker:
            for key, data in (("cut", CUT), ("plain", PLAIN)):
                async with worker.open(key) as sink:
                    await sink.send(data)
    by_key = {r.key: r for r in results}
    assert isinstance(by_key["cut"].hook_error, RuntimeError)
    assert by_key["cut"].usage is not None  # the result is all there
    assert by_key["plain"].hook_error is None
    assert converter.unstructure(by_key["plain"].usage) == EXPECTED
    assert worker.totals.requests == 2
    assert len(caplog.records) == 1


async def test_worker_result_carries_the_streams_diagnostics() -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}
    deltas = [{"type": "message_delta", "usage": {"output_tokens": n}} for n in (42, 7)]
    down = [start, *deltas, {"type": "message_stop"}]
    results: list[StreamResult] = []
    async with UsageWorker(on_result=results.append) as worker:
        async with worker.open("down") as sink:
            for event in down:
                await sink.send(event)
        async with worker.open("plain") as sink:
            await sink.send(PLAIN)
    by_key = {r.key: r for r in results}
    [diagnostic] = by_key["down"].diagnostics
    assert (diagnostic.code, diagnostic.event_index) == ("count_decreased", 2)
    assert by_key["plain"].diagnostics == ()


async def test_worker_sink_records_what_ended_its_source() -> None:
    overloaded = CUT + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )
    async with (
        testing.anthropic_client(overloaded) as client,
        UsageWorker() as worker,
    ):
        stream = await client.beta.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[], stream=True
        )
        with pytest.raises(anthropic.APIStatusError):
            async with worker.open("sdk") as sink:
                async for event in stream:
                    await sink.send(event)
        with pytest.raises(ConnectionResetError):
            async with worker.open("bytes") as sink:
                async for chunk in body(CUT, fail=True):
                    await sink.send(chunk)
        with pytest.raises(StreamErrorEvent) as event_error:
            await worker.result("sdk")
        with pytest.raises(SourceError) as source_error:
            await worker.result("bytes")
    assert event_error.value.error_type == "overloaded_error"
    assert isinstance(event_error.value.__cause__, anthropic.APIStatusError)
    assert event_error.value.partial is not None
    assert isinstance(source_error.value.__cause__, ConnectionResetError)
    assert source_error.value.partial is not None
    assert worker.incomplete_keys == ["sdk", "bytes"]
