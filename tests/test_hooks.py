"""The ``on_finish`` hook of accumulate, tap and UsageWorker: called once per stream, always."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from usagetally import (
    BetaUsage,
    IncompleteStreamError,
    SourceError,
    UsageWorker,
    accumulate,
    converter,
    tap,
)
from usagetally.otel import otel_hook

EXAMPLES = Path(__file__).parent.parent / "examples"
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
