"""Hostile streams (issue 13): typed errors only, nothing lost, memory bounded.

Each test here failed before the fix it guards (checked once against the code before it).
Time is not measured here: the linear-time promises are checked by the scaling campaign,
``benchmarks/scaling.py``, whose quick run is ``tests/test_scaling_quick.py``.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from usagetally import (
    BetaUsage,
    LocalUsageError,
    MalformedEventError,
    SSEDecoder,
    StreamError,
    UsageAccumulator,
    UsageValidationError,
    accumulate,
    converter,
    tap,
)
from usagetally._limits import (
    MAX_EVENT_DEPTH,
    MAX_EVENT_VALUES,
    MAX_UNKNOWN_DEPTH,
    MAX_UNKNOWN_FIELDS,
    MAX_UNKNOWN_SIZE,
)

START_EVENT = {
    "type": "message_start",
    "message": {"model": "m", "usage": {"input_tokens": 10, "output_tokens": 1}},
}
STOP_EVENT = {"type": "message_stop"}


def sse(name: str | None, data: str) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {data}\n\n".encode()


START = sse("message_start", json.dumps(START_EVENT))
STOP = sse("message_stop", json.dumps(STOP_EVENT))


def delta_event(usage_json: str) -> str:
    return '{"type":"message_delta","usage":' + usage_json + "}"


def delta(usage_json: str) -> bytes:
    return sse("message_delta", delta_event(usage_json))


def nested(depth: int, leaf: str = "0") -> str:
    return "[" * depth + leaf + "]" * depth


def refused(data: bytes, **kwargs: Any) -> StreamError:
    acc = UsageAccumulator(policy="off", **kwargs)
    with pytest.raises(StreamError) as info:
        acc.feed(data)
        acc.finish()
    return info.value


# --- 1. Deep JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH, 990, 100_000])
def test_deep_json_in_a_delta_is_a_typed_sticky_error_naming_where(depth: int) -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed(START)
    first = delta('{"output_tokens":5}')
    acc.feed(first)
    with pytest.raises(MalformedEventError) as info:
        acc.feed(delta('{"output_tokens":7,"x":' + nested(depth) + "}") + STOP)
    err = info.value
    assert (err.event_index, err.byte_offset) == (2, len(START) + len(first))
    assert err.path is not None
    assert err.path.startswith("usage.x[0][0]")
    assert "nests deeper than 64 levels" in str(err)
    assert err.partial is not None
    assert err.partial.output_tokens == 5
    # Sticky: nothing after it is accepted, and finish() never returns a total without it.
    with pytest.raises(MalformedEventError) as again:
        acc.finish()
    assert again.value is err
    with pytest.raises(MalformedEventError):
        acc.feed(STOP)


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deep_json_in_an_untyped_event_is_a_typed_error(depth: int) -> None:
    data = START + sse(None, '{"type":"content_block_delta","x":' + nested(depth) + "}")
    err = refused(data + delta('{"output_tokens":5}') + STOP)
    assert isinstance(err, MalformedEventError)
    assert (err.event_index, err.byte_offset) == (1, len(START))
    assert err.path is not None
    assert err.path.startswith("x[0]")


def test_json_just_within_the_depth_limit_is_read() -> None:
    # The event object is level 1: an untyped event nesting exactly 64 levels is accepted.
    content = '{"type":"content_block_delta","x":' + nested(MAX_EVENT_DEPTH - 1) + "}"
    acc = UsageAccumulator(policy="off")
    acc.feed(START + sse(None, content) + delta('{"output_tokens":5}') + STOP)
    assert acc.finish().output_tokens == 5


def test_deep_json_through_feed_sse_is_a_typed_error() -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed_sse("message_start", json.dumps(START_EVENT))
    with pytest.raises(MalformedEventError) as info:
        acc.feed_sse("message_delta", delta_event('{"output_tokens":1,"x":' + nested(10**5) + "}"))
    assert info.value.event_index == 1
    assert info.value.path is not None


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [MAX_UNKNOWN_DEPTH + 1, 500, 990, 5000])
def test_deep_unknown_field_through_feed_event_is_a_typed_error(depth: int) -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed_event(START_EVENT)
    with pytest.raises(MalformedEventError) as info:
        acc.feed_event(
            {"type": "message_delta", "usage": {"output_tokens": 3, "x": deep_list(depth)}}
        )
    err = info.value
    assert err.event_index == 1
    assert err.path == "usage.x" + "[0]" * MAX_UNKNOWN_DEPTH
    assert err.partial is not None
    assert err.partial.output_tokens == 1


@pytest.mark.parametrize("depth", [500, 990, 5000])
def test_deep_value_in_a_count_is_a_typed_error(depth: int) -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed_event(START_EVENT)
    with pytest.raises(MalformedEventError) as info:
        acc.feed_event({"type": "message_delta", "usage": {"output_tokens": deep_list(depth)}})
    assert info.value.path == "usage.output_tokens"
    assert "expected a non-negative integer, got [[[[...]]]]" in str(info.value)


def test_unknown_field_at_the_depth_limit_is_kept_and_can_be_printed_and_copied() -> None:
    value = deep_list(MAX_UNKNOWN_DEPTH)
    usage = converter.structure({"input_tokens": 1, "output_tokens": 2, "x": value}, BetaUsage)
    assert usage.unknown_fields["x"] == value
    assert copy.deepcopy(usage) == usage
    assert "[[[[" in repr(usage)
    assert converter.unstructure(usage)["x"] == value
    with pytest.raises(UsageValidationError) as info:
        converter.structure({"input_tokens": 1, "output_tokens": 2, "x": [value]}, BetaUsage)
    assert info.value.path == "x" + "[0]" * MAX_UNKNOWN_DEPTH


@pytest.mark.anyio
async def test_deep_json_through_accumulate_and_tap_is_a_typed_error() -> None:
    chunks = [START, delta('{"output_tokens":5,"x":' + nested(10**5) + "}"), STOP]

    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    with pytest.raises(MalformedEventError) as info:
        await accumulate(source())
    assert info.value.event_index == 1
    seen = [chunk async for chunk in tap(source())]
    assert seen == chunks


# --- 2. Each delta costs what it carries ------------------------------------------------------


def test_a_delta_leaves_what_it_does_not_carry_untouched() -> None:
    # What a delta does not carry is not rebuilt or copied: the same objects are kept.
    acc = UsageAccumulator(policy="off")
    acc.feed(START)
    iterations = '[{"type":"message","input_tokens":1,"output_tokens":2}]'
    acc.feed(
        delta('{"output_tokens":2,"big":"' + "x" * 100_000 + '","iterations":' + iterations + "}")
    )
    first = acc.usage
    assert first is not None
    acc.feed(delta('{"output_tokens":3}'))
    second = acc.usage
    assert second is not None
    assert second.output_tokens == 3
    assert second.unknown_fields is first.unknown_fields
    assert second.iterations is first.iterations
    acc.feed(delta('{"output_tokens":4,"other":1}'))
    third = acc.usage
    assert third is not None
    assert dict(third.unknown_fields) == {"big": "x" * 100_000, "other": 1}
    assert third.iterations is first.iterations


def test_unknown_fields_are_merged_over_deltas_in_order() -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed_event(
        {
            "type": "message_start",
            "message": {"usage": {"input_tokens": 1, "output_tokens": 1, "a": 1, "b": [1]}},
        }
    )
    acc.feed_event(
        {"type": "message_delta", "usage": {"output_tokens": 2, "b": {"n": 2}, "c": None}}
    )
    acc.feed_event(
        {"type": "message_delta", "usage": {"output_tokens": 3, "c": "x", "speed": "fast"}}
    )
    acc.feed_event(STOP_EVENT)
    usage = acc.finish()
    assert list(usage.unknown_fields.items()) == [("a", 1), ("b", {"n": 2}), ("c", "x")]
    assert usage.speed == "fast"


def test_too_many_unknown_fields_over_a_stream_are_refused_with_the_path() -> None:
    acc = UsageAccumulator(policy="off")
    acc.feed(START)
    for i in range(MAX_UNKNOWN_FIELDS):
        acc.feed(delta(f'{{"output_tokens":{i},"f{i}":{i}}}'))
    acc.feed(delta('{"output_tokens":99,"f0":"again"}'))  # replacing one is fine
    with pytest.raises(MalformedEventError) as info:
        acc.feed(delta('{"output_tokens":100,"one_more":1}'))
    assert info.value.path == "usage.one_more"
    assert info.value.event_index == MAX_UNKNOWN_FIELDS + 2
    assert info.value.partial is not None
    assert info.value.partial.output_tokens == 99


def test_unknown_fields_larger_than_the_limit_are_refused_with_the_path() -> None:
    half = '"' + "x" * (MAX_UNKNOWN_SIZE // 2) + '"'
    acc = UsageAccumulator(policy="off")
    acc.feed(START + delta('{"output_tokens":1,"a":' + half + "}"))
    with pytest.raises(MalformedEventError) as info:
        acc.feed(delta('{"output_tokens":2,"b":' + half + "}"))
    assert info.value.path == "usage.b"
    with pytest.raises(UsageValidationError) as direct:
        converter.structure(
            {"input_tokens": 1, "output_tokens": 1, "a": "x" * MAX_UNKNOWN_SIZE}, BetaUsage
        )
    assert direct.value.path == "a"


# --- 4. Amplification -----------------------------------------------------------------------


def traced_peak(run: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_delta_of_empty_lists_does_not_blow_up_memory() -> None:
    # A 2.1 MB delta holding [[],[],...] under a 4.2 MB limit grew RSS by 200 MB.
    body = "[" + ",".join(["[]"] * 700_000) + "]"
    data = START + delta('{"output_tokens":5,"junk":' + body + "}") + STOP
    limit = 2 * len(data)
    errors: list[StreamError] = []

    def run() -> None:
        acc = UsageAccumulator(policy="off", max_event_size=limit)
        try:
            acc.feed(data)
        except StreamError as exc:
            errors.append(exc)

    peak = traced_peak(run)
    assert isinstance(errors[0], MalformedEventError)
    assert f"more than {MAX_EVENT_VALUES:,} values" in str(errors[0])
    assert peak < 2 * limit  # the data itself, decoded once: no Python object per value


def test_what_a_stream_keeps_of_an_unknown_field_is_its_text() -> None:
    text = json.dumps(list(range(5000)))  # 5,000 values: about 140 kB as Python objects
    acc = UsageAccumulator(policy="off")
    data = START + delta('{"output_tokens":5,"ids":' + text + "}") + STOP

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        acc.feed(data)
        acc.finish()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert acc.finish().unknown_fields["ids"] == list(range(5000))
    assert kept < 2 * len(text) + 20_000


# --- 5. Caches do not outlive the stream -----------------------------------------------------


def test_long_event_names_are_not_kept_after_the_stream() -> None:
    def chunks() -> Iterator[bytes]:
        yield START
        for i in range(40):
            yield sse(f"{i:03d}" + "n" * 256_000, "{}")  # 40 names of 256 kB, passed over
        yield delta('{"output_tokens":5}') + STOP

    acc = UsageAccumulator(policy="off")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for chunk in chunks():
            acc.feed(chunk)
        acc.finish()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert acc.events_seen == 43
    assert kept < 100_000  # before: every name, 10 MB


def test_long_event_names_are_not_cached_while_decoding() -> None:
    decoder = SSEDecoder(keep={"kept"})
    names = [f"{i}" + "n" * 1000 for i in range(30)]
    events = b"".join(sse(name, "{}") for name in names) + sse("kept", "1")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = decoder.feed(events)
        del events
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [e.data for e in out] == ["1"]
    assert kept < 20_000  # before: 16 raw names, their patterns and 30 decoded ones


# --- 8. API edges ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [5, None, "data: x\n\n", 1.5, [b"x"]])
def test_feed_refuses_what_is_not_bytes(chunk: Any) -> None:
    acc = UsageAccumulator()
    with pytest.raises(LocalUsageError, match="takes bytes"):
        acc.feed(chunk)
    with pytest.raises(LocalUsageError, match="takes bytes"):
        SSEDecoder().feed(chunk)
    # A wrong argument is not a stream failure: the stream can go on.
    acc.feed(bytearray(START))
    acc.feed(memoryview(delta('{"output_tokens":5}') + STOP))
    assert acc.finish().output_tokens == 5


def test_feed_sse_refuses_what_is_not_a_string() -> None:
    acc = UsageAccumulator()
    with pytest.raises(LocalUsageError, match="two strings"):
        acc.feed_sse("message_start", None)  # type: ignore[arg-type]
    with pytest.raises(LocalUsageError, match="two strings"):
        acc.feed_sse(None, "{}")  # type: ignore[arg-type]
    acc.feed_sse("message_start", json.dumps(START_EVENT))
    assert acc.events_seen == 1


@pytest.mark.parametrize("size", [-1, "10", 1.5, True])
def test_bad_max_event_size_is_a_local_usage_error(size: Any) -> None:
    with pytest.raises(LocalUsageError, match="max_event_size"):
        UsageAccumulator(max_event_size=size)


def test_an_int_of_more_than_4300_digits_is_a_typed_error() -> None:
    huge = 10**5000
    acc = UsageAccumulator(policy="off")
    acc.feed_event(START_EVENT)
    with pytest.raises(MalformedEventError) as info:
        acc.feed_event({"type": "message_delta", "usage": {"output_tokens": huge}})
    assert info.value.path == "usage.output_tokens"
    assert "an integer of 16610 bits" in str(info.value)
    acc = UsageAccumulator(policy="off")
    acc.feed_event(START_EVENT)
    with pytest.raises(MalformedEventError) as info:
        acc.feed_event({"type": "message_delta", "usage": {"output_tokens": 1, "x": [huge]}})
    assert info.value.path == "usage.x"
    acc = UsageAccumulator(policy="off")
    acc.feed_event(START_EVENT)
    with pytest.raises(MalformedEventError) as info:
        acc.feed_event({"type": "message_delta", "usage": {"output_tokens": -huge}})
    assert "an integer of 16610 bits" in str(info.value)


class _Reenter(logging.Handler):
    def __init__(self, action: Any) -> None:
        super().__init__()
        self.action = action

    def emit(self, record: logging.LogRecord) -> None:
        self.action()


def test_a_reentrant_feed_is_refused_and_the_stream_stays_in_order() -> None:
    # A diagnostic (here count_decreased) reaches a hook that feeds the same accumulator.
    acc = UsageAccumulator(policy="warn")
    raised: list[BaseException] = []

    def feed_again() -> None:
        try:
            acc.feed(STOP)
        except BaseException as exc:
            raised.append(exc)

    handler = _Reenter(feed_again)
    logger = logging.getLogger("usagetally")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda *args, **kwargs: feed_again()
            acc.feed(START + delta('{"output_tokens":9}') + delta('{"output_tokens":7}'))
    finally:
        logger.removeHandler(handler)
    assert raised
    assert all(isinstance(exc, LocalUsageError) for exc in raised)
    assert "out of order" in str(raised[0])
    acc.feed(STOP)
    assert acc.finish().output_tokens == 7
    assert [d.code for d in acc.diagnostics] == ["count_decreased"]
