"""accumulate() and tap(): every source kind, the anthropic SDK, errors, timeouts, cancellation.

The expected usages are computed here independently of the core: ``reference_merge`` applies
the merge rule (message_start's usage, each message_delta's non-null fields written over it)
to the events' JSON, and ``examples/expected/*.json`` holds the final usage of each example.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx2
import pytest
from support import NAMES, blocks, expected, reference_merge, transcript, wire

import usagetally
from usagetally import (
    EventOrderError,
    IncompleteStreamError,
    LocalUsageError,
    MalformedEventError,
    SourceError,
    StreamErrorEvent,
    Tap,
    accumulate,
    tap,
)
from usagetally._anthropic import from_sdk_usage
from usagetally.testing import capture_diagnostics

pytestmark = pytest.mark.anyio

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hello"}],
}


# -- data ------------------------------------------------------------------------------------


def sdk_wire(events: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.to_dict(mode="json", warnings=False)) for e in events]


def items_of(kind: str, raw: bytes) -> list[Any]:
    """The events of a transcript as a source of ``kind`` yields them (one event per item)."""
    parsed = blocks(raw)
    if kind == "bytes":
        return [block for _, _, block in parsed]
    if kind == "bytearray":
        return [bytearray(block) for _, _, block in parsed]
    if kind == "memoryview":
        return [memoryview(block) for _, _, block in parsed]
    if kind == "mappings":
        return [json.loads(data) for _, data, _ in parsed]
    if kind == "httpx-sse":
        return [HttpxSseEvent(event=name, data=data) for name, data, _ in parsed]
    if kind == "sse-objects":
        return [usagetally.ServerSentEvent(event=name, data=data) for name, data, _ in parsed]
    raise AssertionError(kind)


def reference_of(kind: str, items: list[Any]) -> dict[str, Any] | None:
    if kind.startswith("sdk"):
        return reference_merge(sdk_wire(items))
    if kind == "mappings":
        return reference_merge((e["type"], e) for e in items)
    if kind in ("httpx-sse", "sse-objects"):
        return reference_merge((e.event, json.loads(e.data)) for e in items)
    events = blocks(b"".join(bytes(i) for i in items))
    return reference_merge((name, json.loads(data)) for name, data, _ in events)


def client_for(body: bytes) -> anthropic.AsyncAnthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return anthropic.AsyncAnthropic(api_key="x", http_client=http, max_retries=0)


@cache
def sdk_items(name: str, helper: bool, /) -> list[Any]:
    """The SDK's own event objects for an example (raw stream, or the stream() helper's)."""

    async def collect() -> list[Any]:
        async with client_for(transcript(name)) as client:
            if helper:
                async with client.beta.messages.stream(**REQUEST) as stream:
                    return [event async for event in stream]
            raw = await client.beta.messages.create(**REQUEST, stream=True)
            return [event async for event in raw]

    return asyncio.run(collect())


async def aiter_of(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class HttpxSseEvent:
    """A stand-in of httpx-sse's ``ServerSentEvent`` (same attributes and defaults).

    httpx-sse itself cannot be imported here: it declares no dependency on httpx, and only
    httpx2 is installed.
    """

    def __init__(self, event: str = "message", data: str = "", id: str = "") -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry: int | None = None


class Source:
    """An async iterator over items that records how it was closed, and can fail or cut."""

    def __init__(
        self,
        items: Iterable[Any],
        *,
        fail_at: int | None = None,
        exc: BaseException | None = None,
        on_cut: Callable[[], None] | None = None,
        cut_at: int | None = None,
    ) -> None:
        self.items = list(items)
        self.i = 0
        self.fail_at = fail_at
        self.exc = exc
        self.on_cut = on_cut
        self.cut_at = cut_at
        self.closed = 0

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> Any:
        if self.i == self.fail_at:
            assert self.exc is not None
            raise self.exc
        if self.i == self.cut_at:
            assert self.on_cut is not None
            self.on_cut()
            await anyio.sleep_forever()
        if self.i >= len(self.items):
            raise StopAsyncIteration
        self.i += 1
        return self.items[self.i - 1]

    async def aclose(self) -> None:
        self.closed += 1


class SyncCloseSource(Source):
    aclose = None  # type: ignore[assignment]

    def close(self) -> None:
        self.closed += 1


class SdkLike:
    """A stand-in of an SDK event: a ``type`` and a ``to_dict()`` that may refuse to run."""

    def __init__(self, type: str, payload: dict[str, Any] | None = None) -> None:
        self.type = type
        self.payload = payload

    def to_dict(self, *, warnings: bool = True) -> dict[str, Any]:
        if self.payload is None:
            raise AssertionError(f"a {self.type} event must not be converted")
        assert warnings is False
        return self.payload


class DumpOnly:
    """A pydantic-style object with ``model_dump()`` only, that takes no arguments."""

    def __init__(self, type: str, payload: dict[str, Any]) -> None:
        self.type = type
        self.payload = payload

    def model_dump(self) -> dict[str, Any]:
        return self.payload


START = {
    "type": "message_start",
    "message": {"model": "claude-x", "usage": {"input_tokens": 10, "output_tokens": 1}},
}
DELTA = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 42}}
STOP = {"type": "message_stop"}

KINDS = ["bytes", "bytearray", "memoryview", "mappings", "httpx-sse", "sse-objects"]


# -- accumulate: every source kind -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
async def test_accumulate_every_kind_every_example(kind: str, name: str) -> None:
    usage = await accumulate(aiter_of(items_of(kind, transcript(name))))
    assert wire(usage) == expected(name)


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
async def test_accumulate_bytes_split_anywhere(size: int) -> None:
    raw = transcript("web-search")
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    assert wire(await accumulate(aiter_of(chunks))) == expected("web-search")


@pytest.mark.parametrize("name", NAMES)
async def test_accumulate_sdk_create_stream(name: str) -> None:
    async with client_for(transcript(name)) as client:
        stream = await client.beta.messages.create(**REQUEST, stream=True)
        assert wire(await accumulate(stream)) == expected(name)


@pytest.mark.parametrize("name", NAMES)
async def test_accumulate_sdk_stream_helper(name: str) -> None:
    async with (
        client_for(transcript(name)) as client,
        client.beta.messages.stream(**REQUEST) as stream,
    ):
        usage = await accumulate(stream)
        message = await stream.get_final_message()
    assert wire(usage) == expected(name)
    assert message.usage.to_dict(mode="json", warnings=False) == expected(name)


async def test_accumulate_enters_a_stream_manager() -> None:
    async with client_for(transcript("plain")) as client:
        usage = await accumulate(client.beta.messages.stream(**REQUEST))
    assert wire(usage) == expected("plain")


def _with_unknowns() -> bytes:
    """plain.sse with an unknown event type and an unknown iteration type added."""
    raw = transcript("plain")
    future = b'event: future_event\ndata: {"type":"future_event","x":1}\n\n'
    raw = raw.replace(b"event: content_block_stop", future + b"event: content_block_stop", 1)
    step = (
        b'"iterations":[{"type":"future_step","input_tokens":21,"output_tokens":42,'
        b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"extra":5}],'
    )
    head, sep, tail = raw.partition(b'"type":"message_delta"')
    usage_at = tail.index(b'"usage":{') + len(b'"usage":{')
    return head + sep + tail[:usage_at] + step + tail[usage_at:]


@pytest.mark.parametrize("helper", [False, True])
async def test_sdk_unknown_event_and_iteration_types(helper: bool) -> None:
    # The SDK builds the unknown event as a BetaRawMessageStartEvent whose type is
    # "future_event": dispatching on the class would see a second message_start.
    raw = _with_unknowns()
    want = reference_merge((n, json.loads(d)) for n, d, _ in blocks(raw))
    async with client_for(raw) as client:
        if helper:
            async with client.beta.messages.stream(**REQUEST) as stream:
                counted = tap(stream)
                seen = [event async for event in counted]
        else:
            counted = tap(await client.beta.messages.create(**REQUEST, stream=True))
            seen = [event async for event in counted]
    assert "future_event" in [str(e.type) for e in seen]
    assert wire(counted.final()) == want
    final = counted.final()
    assert final.iterations is not None
    assert final.iterations[0].type == "future_step"


async def test_sdk_like_objects_convert_only_usage_events() -> None:
    # Every object but message_start, message_delta and error refuses to be converted.
    source = [
        SdkLike("message_start", START),
        SdkLike("content_block_start"),
        SdkLike("content_block_delta"),
        *(SdkLike(t) for t in ("text", "thinking", "input_json", "citation", "signature")),
        SdkLike("compaction"),
        SdkLike("ping"),
        SdkLike("content_block_stop"),
        SdkLike("message_delta", DELTA),
        SdkLike("message_stop"),  # the helper's, carrying the whole message
    ]
    usage = await accumulate(aiter_of(source))
    assert (usage.input_tokens, usage.output_tokens) == (10, 42)


async def test_model_dump_objects() -> None:
    source = [DumpOnly("message_start", START), DumpOnly("message_delta", DELTA)]
    source.append(DumpOnly("message_stop", STOP))
    assert (await accumulate(aiter_of(source))).output_tokens == 42


async def test_sdk_objects_keep_event_indices() -> None:
    # Helper events are not on the wire and do not count; content-block events do.
    bad = {"type": "message_delta", "usage": {"output_tokens": -1}}
    source = [
        SdkLike("message_start", START),
        SdkLike("content_block_start"),
        SdkLike("content_block_delta"),
        SdkLike("text"),
        SdkLike("content_block_delta"),
        SdkLike("text"),
        SdkLike("content_block_stop"),
        SdkLike("message_delta", bad),
    ]
    with pytest.raises(MalformedEventError) as info:
        await accumulate(aiter_of(source))
    assert info.value.event_index == 5
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 10


async def test_sdk_objects_event_after_message_stop() -> None:
    source = [SdkLike("message_start", START), SdkLike("message_delta", DELTA)]
    source += [SdkLike("message_stop"), SdkLike("ping"), SdkLike("content_block_delta")]
    with pytest.raises(EventOrderError) as info:
        await accumulate(aiter_of(source))
    assert info.value.event_index == 4


async def test_sdk_error_object() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    source = [SdkLike("message_start", START), SdkLike("error", error)]
    with pytest.raises(StreamErrorEvent) as info:
        await accumulate(aiter_of(source))
    assert info.value.error_type == "overloaded_error"
    assert info.value.partial is not None
    assert info.value.partial.output_tokens == 1


# -- accumulate: errors --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "mappings"])
async def test_source_raising_mid_stream(kind: str) -> None:
    items = items_of(kind, transcript("plain"))
    boom = OSError("connection reset")
    with pytest.raises(SourceError) as info:
        await accumulate(Source(items, fail_at=4, exc=boom))
    assert info.value.__cause__ is boom
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 21
    assert info.value.partial.output_tokens == 1  # the placeholder: incomplete
    assert info.value.event_index == 4


async def test_source_raising_before_anything() -> None:
    with pytest.raises(SourceError) as info:
        await accumulate(Source([], fail_at=0, exc=ValueError("no")))
    assert info.value.partial is None
    assert isinstance(info.value.__cause__, ValueError)


# anthropic 2.12.0 raises APIStatusError on an error event without closing the async
# generators it reads the response with; on trio their collection warns. Collected here.
@pytest.mark.filterwarnings("ignore:Async generator 'anthropic._streaming:ResourceWarning")
@pytest.mark.filterwarnings("ignore:Async generator 'httpx2._models:ResourceWarning")
async def test_sdk_error_event_is_a_stream_error_event_with_partial() -> None:
    # The SDK raises APIStatusError on an error event; its body is the event, read as such.
    raw = b"".join(block for name, _, block in blocks(transcript("plain"))[:5])
    raw += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    raw += b'"message":"Overloaded"}}\n\n'
    with pytest.raises(StreamErrorEvent) as from_bytes:
        await accumulate(aiter_of([raw]))
    async with client_for(raw) as client:
        stream = await client.beta.messages.create(**REQUEST, stream=True)
        with pytest.raises(StreamErrorEvent) as info:
            await accumulate(stream)
    error, cause, partial = info.value, info.value.__cause__, info.value.partial
    assert isinstance(cause, anthropic.APIStatusError)
    assert (error.error_type, error.error_message) == ("overloaded_error", "Overloaded")
    assert str(error).startswith(from_bytes.value.reason)
    assert partial is not None
    assert partial == from_bytes.value.partial
    assert partial.input_tokens == 21
    del info, stream, cause, error  # the tracebacks hold the SDK's generators
    gc.collect()


async def test_usage_error_from_source_passes_through() -> None:
    error = IncompleteStreamError("cut")
    with pytest.raises(IncompleteStreamError) as info:
        await accumulate(Source([], fail_at=0, exc=error))
    assert info.value is error


@pytest.mark.parametrize("closer", [Source, SyncCloseSource])
async def test_stream_error_closes_the_source(closer: type[Source]) -> None:
    bad = {"type": "message_delta", "usage": None}
    source = closer([START, bad, STOP])
    with pytest.raises(MalformedEventError) as info:
        await accumulate(source)
    assert source.closed == 1
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 10


async def test_stream_error_wins_over_a_failing_close() -> None:
    class BadClose(Source):
        async def aclose(self) -> None:
            raise OSError("close failed")

    with pytest.raises(MalformedEventError) as info:
        await accumulate(BadClose([START, {"type": "message_delta", "usage": None}]))
    assert info.value.partial is not None


async def test_incomplete_stream() -> None:
    with pytest.raises(IncompleteStreamError) as info:
        await accumulate(aiter_of([START, DELTA]))
    assert info.value.partial is not None
    assert info.value.partial.output_tokens == 42


async def test_wrong_first_item() -> None:
    with pytest.raises(MalformedEventError, match="cannot read usage from a str"):
        await accumulate(aiter_of(["event: ping\n\n"]))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (START, b"data: {}\n\n"),
        (SdkLike("message_start", START), START),
        (HttpxSseEvent(event="message_start", data=json.dumps(START)), 42),
    ],
)
async def test_mixed_kinds(first: Any, second: Any) -> None:
    with pytest.raises(MalformedEventError) as info:
        await accumulate(aiter_of([first, second]))
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 10


async def test_bytes_then_text() -> None:
    with pytest.raises(MalformedEventError, match="yielded a str after bytes"):
        await accumulate(aiter_of([b"event: ping\n", "data: {}\n\n"]))


async def test_not_an_async_iterable() -> None:
    with pytest.raises(LocalUsageError, match=r"list is not an async iterable \(for a sync"):
        await accumulate([START])  # type: ignore[arg-type]
    pending = Source([START]).__anext__()
    with pytest.raises(LocalUsageError, match="await it first"):
        await accumulate(pending)  # type: ignore[arg-type]
    await pending


async def test_accumulate_lets_cancellation_through() -> None:
    items = items_of("mappings", transcript("plain"))
    with anyio.CancelScope() as scope:
        source = Source(items, cut_at=3, on_cut=scope.cancel)
        await accumulate(source)
        pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught


async def test_accumulate_timeout() -> None:
    items = items_of("bytes", transcript("plain"))
    with anyio.move_on_after(30) as scope:

        def expire() -> None:
            scope.deadline = anyio.current_time()

        await accumulate(Source(items, cut_at=3, on_cut=expire))
    assert scope.cancelled_caught


# -- tap -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_tap_passes_items_through_unchanged(kind: str) -> None:
    items = items_of(kind, transcript("advisor"))
    counted = tap(aiter_of(items))
    out = [item async for item in counted]
    assert len(out) == len(items)
    assert all(a is b for a, b in zip(out, items, strict=True))
    assert counted.complete
    assert wire(counted.usage) == expected("advisor")
    assert wire(counted.final()) == expected("advisor")
    assert counted.final() is counted.final()
    assert counted.error is None
    assert counted.model == "claude-sonnet-4-6"
    assert counted.diagnostics == []


@pytest.mark.parametrize("name", NAMES)
async def test_tap_sdk_stream_helper_then_get_final_message(name: str) -> None:
    async with (
        client_for(transcript(name)) as client,
        client.beta.messages.stream(**REQUEST) as stream,
    ):
        counted = tap(stream)
        kinds = [event.type async for event in counted]
        message = await stream.get_final_message()
    assert "text" in kinds or "thinking" in kinds
    assert counted.complete
    ours = wire(counted.final())
    assert ours == expected(name)
    assert message.usage.to_dict(mode="json", warnings=False) == ours


async def test_tap_sdk_agrees_with_sdk_on_plain() -> None:
    async with (
        client_for(transcript("plain")) as client,
        client.beta.messages.stream(**REQUEST) as stream,
    ):
        counted = tap(stream)
        async for _ in counted:
            pass
        message = await stream.get_final_message()
    theirs = from_sdk_usage(message.usage)
    assert counted.final() == theirs


@pytest.mark.parametrize("name", NAMES)
async def test_tap_sdk_create_stream(name: str) -> None:
    async with client_for(transcript(name)) as client:
        stream = await client.beta.messages.create(**REQUEST, stream=True)
        async with tap(stream) as counted:
            async for _ in counted:
                pass
    assert wire(counted.final()) == expected(name)


async def test_tap_enters_a_stream_manager() -> None:
    async with client_for(transcript("thinking")) as client:
        async with tap(client.beta.messages.stream(**REQUEST)) as counted:
            async for _ in counted:
                pass
            message = await counted.stream.get_final_message()
        assert counted.complete
        assert message.usage.to_dict(mode="json", warnings=False) == expected("thinking")
        assert counted.stream.response.is_closed


async def test_tap_over_manager_must_be_entered() -> None:
    async with client_for(transcript("plain")) as client:
        manager = client.beta.messages.stream(**REQUEST)
        counted = tap(manager)
        with pytest.raises(LocalUsageError, match="entered first"):
            await counted.__anext__()
        assert counted.error is None
        async with counted:  # so that the request coroutine is awaited
            pass
        assert counted.usage is None


CUT_KINDS = ["bytes", "mappings", "httpx-sse", "sdk", "sdk-helper"]


@pytest.fixture
def cut_items(request: pytest.FixtureRequest) -> list[Any]:
    kind, name = request.param
    if kind == "sdk":
        return sdk_items(name, False)
    if kind == "sdk-helper":
        return sdk_items(name, True)
    return items_of(kind, transcript(name))


def _cut_params() -> list[Any]:
    """Every boundary of plain.sse in every kind, both ways; advisor.sse in two kinds."""
    params = []
    for name, kinds in (("plain", CUT_KINDS), ("advisor", ["bytes", "sdk-helper"])):
        for kind in kinds:
            if kind.startswith("sdk"):
                n = len(sdk_items(name, kind == "sdk-helper"))
            else:
                n = len(blocks(transcript(name)))
            for cut in range(n + 1):
                for how in ("timeout", "cancel"):
                    if name == "advisor" and (cut % 2) != (how == "cancel"):
                        continue
                    param_id = f"{name}-{kind}-{cut}-{how}"
                    params.append(pytest.param((kind, name), cut, how, id=param_id))
    return params


@pytest.mark.parametrize(("cut_items", "cut", "how"), _cut_params(), indirect=["cut_items"])
async def test_tap_keeps_partial_usage_at_every_boundary(
    cut_items: list[Any], cut: int, how: str, request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.params["cut_items"][0]
    seen: list[Any] = []
    with anyio.move_on_after(30) as scope:

        def trigger() -> None:
            if how == "timeout":
                scope.deadline = anyio.current_time()
            else:
                scope.cancel()

        counted = tap(Source(cut_items, cut_at=cut, on_cut=trigger))
        async for item in counted:
            seen.append(item)
    assert scope.cancelled_caught
    assert seen == cut_items[:cut]
    want = reference_of(kind, cut_items[:cut])
    assert wire(counted.usage) == want
    assert counted.error is None
    if counted.complete:
        assert wire(counted.final()) == want
    else:
        with pytest.raises(IncompleteStreamError) as info:
            counted.final()
        assert wire(info.value.partial) == want
        assert counted.error is info.value


@pytest.fixture
def plain_helper_events() -> list[Any]:
    return sdk_items("plain", True)  # outside the event loop: it runs one of its own


@pytest.mark.parametrize("cut", range(0, 22, 3))
async def test_tap_real_sdk_stream_cancelled_in_the_loop(
    cut: int, plain_helper_events: list[Any]
) -> None:
    events = plain_helper_events
    async with client_for(transcript("plain")) as client:
        with anyio.CancelScope() as scope:
            async with client.beta.messages.stream(**REQUEST) as stream:
                counted = tap(stream)
                n = 0
                async for _ in counted:
                    n += 1
                    if n == cut:
                        scope.cancel()
                        await anyio.sleep(0)
    assert scope.cancelled_caught == (0 < cut <= len(events))
    read = events[: cut if scope.cancelled_caught else len(events)]
    assert wire(counted.usage) == reference_merge(sdk_wire(read))


async def test_tap_source_raising_propagates_unchanged() -> None:
    items = items_of("mappings", transcript("plain"))
    boom = OSError("reset")
    counted = tap(Source(items, fail_at=6, exc=boom))
    seen = []
    with pytest.raises(OSError, match="reset") as info:
        async for item in counted:
            seen.append(item)
    assert info.value is boom
    assert len(seen) == 6
    assert isinstance(counted.error, SourceError)
    assert counted.error.__cause__ is boom
    with pytest.raises(SourceError) as final:
        counted.final()
    assert final.value.partial is not None
    assert final.value.partial.input_tokens == 21


async def test_tap_stream_error_keeps_passing_items() -> None:
    bad = {"type": "message_delta", "usage": {"output_tokens": "many"}}
    items = [START, bad, DELTA, STOP]
    counted = tap(aiter_of(items))
    assert [item async for item in counted] == items
    assert isinstance(counted.error, MalformedEventError)
    assert not counted.complete
    with pytest.raises(MalformedEventError) as info:
        counted.final()
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 10


async def test_tap_wrong_kind_is_kept_not_raised() -> None:
    counted = tap(aiter_of([START, b"oops"]))
    assert len([item async for item in counted]) == 2
    assert isinstance(counted.error, MalformedEventError)


async def test_tap_diagnostics_under_warn() -> None:
    second = {"type": "message_delta", "usage": {"output_tokens": 7}}
    counted = tap(aiter_of([START, DELTA, second, STOP]))
    with capture_diagnostics() as logged:
        async for _ in counted:
            pass
    assert [d.code for d in logged] == ["count_decreased"]
    assert [d.code for d in counted.diagnostics] == ["count_decreased"]
    assert counted.final().output_tokens == 7


async def test_tap_strict_policy() -> None:
    second = {"type": "message_delta", "usage": {"output_tokens": 7}}
    counted = tap(aiter_of([START, DELTA, second, STOP]), policy="strict")
    async for _ in counted:
        pass
    with pytest.raises(usagetally.InconsistentUsageError):
        counted.final()


@pytest.mark.parametrize("closer", [Source, SyncCloseSource])
async def test_tap_aclose_closes_the_source(closer: type[Source]) -> None:
    source = closer([START, DELTA, STOP])
    async with tap(source) as counted:
        assert await counted.__anext__() is START
    assert source.closed == 1
    await counted.aclose()
    assert source.closed == 1
    with pytest.raises(StopAsyncIteration):
        await counted.__anext__()
    assert counted.usage is not None


async def test_tap_closes_an_async_generator() -> None:
    closed = []

    async def gen() -> AsyncIterator[Any]:
        try:
            yield START
            yield DELTA
        finally:
            closed.append(True)

    counted = tap(gen())
    assert await counted.__anext__() is START
    await counted.aclose()
    assert closed == [True]


async def test_tap_cannot_be_read_after_final() -> None:
    source = Source([START, DELTA, STOP])
    counted = tap(source)
    await counted.__anext__()
    with pytest.raises(IncompleteStreamError):
        counted.final()
    with pytest.raises(LocalUsageError):
        await counted.__anext__()
    assert source.i == 1  # nothing was taken from the source


async def test_tap_is_a_class_with_typed_items() -> None:
    counted: Tap[dict[str, Any]] = tap(aiter_of([START]))
    assert isinstance(counted, Tap)
    assert counted.__aiter__() is counted
    assert "complete=False" in repr(counted)


# -- the core stays pure ---------------------------------------------------------------------


def test_core_and_aio_import_without_anyio() -> None:
    package = Path(usagetally.__file__).resolve().parent
    code = f"""
import sys, types
sys.modules["anyio"] = None  # importing anyio now fails
sys.modules["trio"] = None
package = types.ModuleType("usagetally")
package.__path__ = [{str(package)!r}]  # the modules, without __init__ (which has the worker)
sys.modules["usagetally"] = package
import usagetally._sse, usagetally._accumulator, usagetally._aio
"""
    subprocess.run([sys.executable, "-c", code], check=True)
