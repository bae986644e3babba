"""Synchronous code: tap() over synchronous sources (SyncTap), accumulate_sync, and the real
synchronous ``anthropic.Anthropic`` client, against the async shell and the SDK itself.

The expected usages come from ``examples/expected/*.json`` and from the SDK's own
``get_final_message().usage``; ``reference_merge`` writes the merge rule out plainly for the
prefixes of a cut stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import anthropic
import anyio
import pytest
from support import NAMES, blocks, expected, reference_merge, transcript, wire

import usagetally
from usagetally import (
    BetaUsage,
    IncompleteStreamError,
    LocalUsageError,
    MalformedEventError,
    SourceError,
    StreamErrorEvent,
    SyncTap,
    accumulate,
    accumulate_sync,
    tap,
)
from usagetally._sdk_events import as_event_mapping
from usagetally.testing import anthropic_client, anthropic_sync_client

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "Hello"}],
}
OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


def sdk_wire(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = message.usage.to_dict(mode="json", warnings=False)
    return result


def items_of(kind: str, raw: bytes) -> list[Any]:
    parsed = blocks(raw)
    if kind == "bytes":
        return [block for _, _, block in parsed]
    if kind == "mappings":
        return [json.loads(data) for _, data, _ in parsed]
    if kind == "sse-objects":
        return [usagetally.ServerSentEvent(event=name, data=data) for name, data, _ in parsed]
    raise AssertionError(kind)


class Source:
    """A synchronous iterator that records how it was closed, and can fail."""

    def __init__(self, items: Iterable[Any], *, fail_at: int | None = None) -> None:
        self.items = list(items)
        self.i = 0
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Source:
        return self

    def __next__(self) -> Any:
        if self.i == self.fail_at:
            raise ConnectionResetError("peer went away")
        if self.i >= len(self.items):
            raise StopIteration
        self.i += 1
        return self.items[self.i - 1]

    def close(self) -> None:
        self.closed += 1


class Recorder:
    def __init__(self, source: Source | None = None) -> None:
        self.calls: list[tuple[dict[str, Any] | None, str | None, bool]] = []
        self.closed_when_called: list[int] = []
        self.source = source

    def __call__(self, usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        self.calls.append((wire(usage), model, complete))
        if self.source is not None:
            self.closed_when_called.append(self.source.closed)


# -- accumulate_sync -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["bytes", "mappings", "sse-objects"])
def test_accumulate_sync_every_kind_every_example(kind: str, name: str) -> None:
    assert wire(accumulate_sync(items_of(kind, transcript(name)))) == expected(name)


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_accumulate_sync_bytes_split_anywhere(size: int) -> None:
    raw = transcript("web-search")

    def iter_bytes() -> Iterator[bytes]:  # as httpx's iter_bytes() or requests' iter_content()
        for i in range(0, len(raw), size):
            yield raw[i : i + size]

    assert wire(accumulate_sync(iter_bytes())) == expected("web-search")


@pytest.mark.parametrize("name", NAMES)
def test_accumulate_sync_sdk_create_stream_helper_and_manager(name: str) -> None:
    with anthropic_sync_client(transcript(name)) as client:
        raw = client.beta.messages.create(**REQUEST, stream=True)
        from_create = accumulate_sync(raw)
        assert raw.response.is_closed
        with client.beta.messages.stream(**REQUEST) as stream:
            from_helper = accumulate_sync(stream)
            message = stream.get_final_message()
        from_manager = accumulate_sync(client.beta.messages.stream(**REQUEST))
    assert wire(from_create) == wire(from_helper) == wire(from_manager) == expected(name)
    assert sdk_wire(message) == expected(name)


def test_accumulate_sync_source_raising() -> None:
    source = Source(items_of("mappings", transcript("plain")), fail_at=4)
    with pytest.raises(SourceError) as info:
        accumulate_sync(source)
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert info.value.partial is not None
    assert (info.value.partial.input_tokens, info.value.partial.output_tokens) == (21, 1)
    assert info.value.event_index == 4
    assert source.closed == 1


def test_accumulate_sync_stream_error_closes_the_source() -> None:
    items = items_of("mappings", transcript("plain"))
    items[5] = {"type": "message_delta", "usage": None}
    source = Source(items)
    with pytest.raises(MalformedEventError) as info:
        accumulate_sync(source)
    assert source.closed == 1
    assert info.value.event_index == 5


def test_accumulate_sync_refuses_what_is_not_a_source() -> None:
    with pytest.raises(LocalUsageError, match="bytes is not a source of chunks"):
        accumulate_sync(transcript("plain"))
    with pytest.raises(LocalUsageError, match="str is not a source"):
        accumulate_sync("event: ping\n\n")

    async def agen() -> Any:
        yield b""

    source = agen()
    with pytest.raises(LocalUsageError, match=r"is not an iterable \(use await"):
        accumulate_sync(source)


def test_accumulate_sync_hook_once_after_closing() -> None:
    source = Source(items_of("bytes", transcript("plain")))
    hook = Recorder(source)
    usage = accumulate_sync(source, on_finish=hook)
    assert hook.calls == [(expected("plain"), "claude-sonnet-4-6", True)]
    assert hook.closed_when_called == [1]
    assert wire(usage) == expected("plain")


def test_accumulate_sync_hook_error_is_logged_and_the_usage_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        raise RuntimeError("exporter down")

    with caplog.at_level(logging.ERROR, logger="usagetally"):
        usage = accumulate_sync(items_of("bytes", transcript("plain")), on_finish=broken)
    assert wire(usage) == expected("plain")
    [record] = caplog.records
    assert record.name == "usagetally"
    assert "exporter down" in record.getMessage()
    assert record.exc_info is not None


# -- SyncTap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytes", "mappings", "sse-objects"])
def test_sync_tap_passes_items_through_unchanged(kind: str) -> None:
    items = items_of(kind, transcript("advisor"))
    counted = tap(items)
    assert isinstance(counted, SyncTap)
    out = list(counted)
    assert all(a is b for a, b in zip(out, items, strict=True))
    assert len(out) == len(items)
    assert counted.complete
    assert wire(counted.final()) == expected("advisor")
    assert counted.final() is counted.final()
    assert counted.model == "claude-sonnet-4-6"
    assert counted.error is None
    assert counted.hook_error is None
    assert "complete=True" in repr(counted)


def test_sync_tap_is_iterator_and_typed() -> None:
    counted: SyncTap[bytes] = tap([b""])
    assert iter(counted) is counted
    assert type(counted) is SyncTap


@pytest.mark.parametrize("name", NAMES)
def test_sync_program_equals_async_program_and_the_sdk(name: str) -> None:
    """The synchronous client and the async one give the same final usage, and the SDK's."""
    with anthropic_sync_client(transcript(name)) as client:
        with client.beta.messages.stream(**REQUEST) as stream:
            counted = tap(stream)
            texts = [event.type for event in counted]
            sync_message = stream.get_final_message()
        sync_usage = counted.final()

    async def async_program() -> tuple[BetaUsage, Any]:
        async with (
            anthropic_client(transcript(name)) as client,
            client.beta.messages.stream(**REQUEST) as stream,
        ):
            counted = tap(stream)
            async for _ in counted:
                pass
            message = await stream.get_final_message()
        return counted.final(), message

    async_usage, async_message = anyio.run(async_program)
    assert "text" in texts or "thinking" in texts
    assert sync_usage == async_usage
    assert wire(sync_usage) == sdk_wire(sync_message) == sdk_wire(async_message) == expected(name)
    assert usagetally.from_sdk_usage(sync_message.usage) == sync_usage


@pytest.mark.parametrize("name", NAMES)
def test_sync_tap_create_stream(name: str) -> None:
    with anthropic_sync_client(transcript(name)) as client:
        raw = client.beta.messages.create(**REQUEST, stream=True)
        with tap(raw) as counted:
            for _ in counted:
                pass
        assert raw.response.is_closed
    assert wire(counted.final()) == expected(name)


def test_sync_tap_enters_a_stream_manager() -> None:
    with anthropic_sync_client(transcript("thinking")) as client:
        with tap(client.beta.messages.stream(**REQUEST)) as counted:
            for _ in counted:
                pass
            message = counted.stream.get_final_message()
        assert counted.stream.response.is_closed
    assert sdk_wire(message) == wire(counted.final()) == expected("thinking")


def test_sync_tap_over_manager_must_be_entered() -> None:
    with anthropic_sync_client(transcript("plain")) as client:
        counted = tap(client.beta.messages.stream(**REQUEST))
        with pytest.raises(LocalUsageError, match="entered first"):
            next(counted)
        assert counted.error is None


def test_sync_tap_hook_runs_once_when_read_to_the_end() -> None:
    source = Source(items_of("bytes", transcript("plain")))
    hook = Recorder(source)
    counted = tap(source, on_finish=hook)
    for _ in counted:
        assert hook.calls == []  # not before the end
    assert hook.calls == [(expected("plain"), "claude-sonnet-4-6", True)]
    assert hook.closed_when_called == [1]  # the source was closed first
    assert list(counted) == []  # ended: nothing more, and no second call
    assert wire(counted.final()) == expected("plain")
    counted.close()
    assert len(hook.calls) == 1
    assert source.closed == 1


def test_sync_tap_hook_runs_once_on_close_after_a_break() -> None:
    source = Source(items_of("bytes", transcript("plain")))
    hook = Recorder(source)
    with tap(source, on_finish=hook) as counted:
        for _ in counted:
            break
    assert hook.closed_when_called == [1]
    [(usage, _, complete)] = hook.calls
    assert complete is False
    assert usage is not None
    with pytest.raises(IncompleteStreamError):
        counted.final()
    assert len(hook.calls) == 1


def test_sync_tap_source_raising_propagates_and_is_kept() -> None:
    source = Source(items_of("mappings", transcript("plain")), fail_at=6)
    hook = Recorder(source)
    counted = tap(source, on_finish=hook)
    seen = []
    with pytest.raises(ConnectionResetError):
        for item in counted:
            seen.append(item)
    assert len(seen) == 6
    assert hook.closed_when_called == [1]
    assert hook.calls[0][2] is False
    with pytest.raises(SourceError) as info:
        counted.final()
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert info.value.partial is not None
    assert info.value.partial.input_tokens == 21


def test_sync_tap_hook_error_never_loses_the_result(caplog: pytest.LogCaptureFixture) -> None:
    with anthropic_sync_client(transcript("plain")) as client:
        raw = client.beta.messages.create(**REQUEST, stream=True)
        closed_first = []

        def broken(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
            closed_first.append(raw.response.is_closed)
            raise RuntimeError("exporter down")

        counted = tap(raw, on_finish=broken)
        with caplog.at_level(logging.ERROR, logger="usagetally"):
            n = sum(1 for _ in counted)  # the loop ends normally
    assert n > 0
    assert closed_first == [True]
    assert isinstance(counted.hook_error, RuntimeError)
    assert wire(counted.final()) == expected("plain")
    assert [r.name for r in caplog.records] == ["usagetally"]


def test_sync_tap_malformed_event_keeps_passing_items() -> None:
    items = items_of("mappings", transcript("plain"))
    items[5] = {"type": "message_delta", "usage": {"output_tokens": "many"}}
    counted = tap(items)
    assert list(counted) == items
    assert isinstance(counted.error, MalformedEventError)
    with pytest.raises(MalformedEventError):
        counted.final()


def test_sync_tap_cannot_be_read_after_final() -> None:
    source = Source(items_of("mappings", transcript("plain")))
    counted = tap(source)
    next(counted)
    with pytest.raises(IncompleteStreamError):
        counted.final()
    with pytest.raises(LocalUsageError):
        next(counted)
    assert source.i == 1


@pytest.mark.parametrize("cut", range(len(blocks(transcript("plain"))) + 1))
def test_sync_tap_keeps_partial_usage_at_every_boundary(cut: int) -> None:
    parsed = blocks(transcript("plain"))
    counted = tap(block for _, _, block in parsed[:cut])
    assert len(list(counted)) == cut
    want = reference_merge((name, json.loads(data)) for name, data, _ in parsed[:cut])
    assert wire(counted.usage) == want
    if cut == len(parsed):
        assert wire(counted.final()) == want
    else:
        with pytest.raises(IncompleteStreamError) as info:
            counted.final()
        assert wire(info.value.partial) == want


# -- the SDK's error event: one error model on every path ------------------------------------


def _overloaded_after(n: int) -> bytes:
    return b"".join(block for _, _, block in blocks(transcript("plain"))[:n]) + OVERLOADED


@pytest.mark.parametrize("n", [0, 1, 5])
def test_error_event_is_the_same_stream_error_event_on_every_path(n: int) -> None:
    raw = _overloaded_after(n)
    errors: dict[str, StreamErrorEvent] = {}

    def caught(path: str, call: Any) -> None:
        with pytest.raises(StreamErrorEvent) as info:
            call()
        errors[path] = info.value

    caught("bytes", lambda: accumulate_sync([raw]))
    with anthropic_sync_client(raw) as client:
        caught(
            "sync create",
            lambda: accumulate_sync(client.beta.messages.create(**REQUEST, stream=True)),
        )
        caught("sync manager", lambda: accumulate_sync(client.beta.messages.stream(**REQUEST)))
        stream = client.beta.messages.create(**REQUEST, stream=True)
        counted = tap(stream)
        with pytest.raises(anthropic.APIStatusError):  # the caller's loop sees the SDK's own
            for _ in counted:
                pass
        assert stream.response.is_closed
        caught("sync tap", counted.final)

    async def async_paths() -> None:
        async with anthropic_client(raw) as client:
            stream = await client.beta.messages.create(**REQUEST, stream=True)
            try:
                await accumulate(stream)
            except StreamErrorEvent as exc:
                errors["async create"] = exc
            async with tap(client.beta.messages.stream(**REQUEST)) as counted:
                with pytest.raises(anthropic.APIStatusError):
                    async for _ in counted:
                        pass
            caught("async tap", counted.final)

    anyio.run(async_paths)
    assert len(errors) == 6
    for path, error in errors.items():
        assert (error.error_type, error.error_message) == ("overloaded_error", "Overloaded"), path
        assert error.partial == errors["bytes"].partial, path
        assert error.reason == errors["bytes"].reason, path
        if path != "bytes":
            assert isinstance(error.__cause__, anthropic.APIStatusError), path


def test_http_error_body_through_the_sdk_is_a_stream_error_event() -> None:
    # An HTTP 529 whose body is the API's JSON error: the SDK raises at the request.
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    headers = {"content-type": "application/json"}
    with anthropic_sync_client(body, status_code=529, headers=headers) as client:
        with pytest.raises(StreamErrorEvent) as info:
            accumulate_sync(client.beta.messages.stream(**REQUEST))
        hook = Recorder()
        counted = tap(client.beta.messages.stream(**REQUEST), on_finish=hook)
        with pytest.raises(anthropic.APIStatusError), counted:
            pass  # pragma: no cover - entering fails
    assert info.value.error_type == "overloaded_error"
    assert info.value.partial is None
    assert isinstance(info.value.__cause__, anthropic.APIStatusError)
    assert hook.calls == [(None, None, False)]
    with pytest.raises(StreamErrorEvent):
        counted.final()


# -- SDK event objects as the mappings feed_event reads ----------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("helper", [False, True])
def test_feed_event_takes_the_sdk_event_objects(name: str, helper: bool) -> None:
    # What UsageAccumulator.feed_event does with an SDK object (see _sdk_events.py).
    acc = usagetally.UsageAccumulator()
    direct = usagetally.UsageAccumulator()
    converted = []
    with anthropic_sync_client(transcript(name)) as client:
        if helper:
            with client.beta.messages.stream(**REQUEST) as stream:
                sdk_events = list(stream)
        else:
            sdk_events = list(client.beta.messages.create(**REQUEST, stream=True))
    for event in sdk_events:
        mapping = as_event_mapping(event)
        assert mapping is not None
        converted.append(mapping)
        acc.feed_event(mapping)
        direct.feed_event(event)
    assert wire(acc.finish()) == expected(name)
    assert wire(direct.finish()) == expected(name)
    for event, mapping in zip(sdk_events, converted, strict=True):
        if event.type in ("message_start", "message_delta"):
            assert mapping == event.to_dict(warnings=False)
        else:
            assert mapping == {"type": event.type}  # read no further: it carries no usage
    assert as_event_mapping(converted[0]) is converted[0]
    assert as_event_mapping(b"bytes") is None
