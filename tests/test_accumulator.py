"""The accumulator's merge rules, errors and diagnostics (docs/semantics.md, section 4)."""

from __future__ import annotations

import gc
import gzip
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import EXAMPLES, wire

import usagetally
from usagetally import (
    BetaUsage,
    EventOrderError,
    EventTooLargeError,
    IncompleteStreamError,
    InconsistentUsageError,
    LocalUsageError,
    MalformedEventError,
    StreamErrorEvent,
    UsageAccumulator,
)
from usagetally.testing import capture_diagnostics

Event = dict[str, Any]


def entry(kind: str, inp: int, out: Any, read: int = 0, write: int = 0, **extra: Any) -> Event:
    return {
        "type": kind,
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        **extra,
    }


def start(**usage: Any) -> Event:
    base: dict[str, Any] = {"input_tokens": 10, "output_tokens": 1}
    base.update(usage)
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "usage": base,
        },
    }


def delta(**usage: Any) -> Event:
    return {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}


STOP: Event = {"type": "message_stop"}
PING: Event = {"type": "ping"}
TEXT: Event = {
    "type": "content_block_delta",
    "index": 0,
    "delta": {"type": "text_delta", "text": "hi"},
}


def sse(events: list[Event], *, named: bool = True, eol: str = "\n") -> bytes:
    out = []
    for event in events:
        lines = [f"event: {event['type']}"] if named else []
        lines.append("data: " + json.dumps(event, separators=(",", ":")))
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode()


def run_events(events: list[Event], **kwargs: Any) -> BetaUsage:
    acc = UsageAccumulator(**kwargs)
    for event in events:
        acc.feed_event(event)
    return acc.finish()


def run_bytes(data: bytes, chunks: Iterator[bytes] | None = None, **kwargs: Any) -> BetaUsage:
    acc = UsageAccumulator(**kwargs)
    for chunk in chunks if chunks is not None else [data]:
        acc.feed(chunk)
    return acc.finish()


# -- merge rules ---------------------------------------------------------------------------


def test_delta_overwrites_and_absent_fields_keep_their_start_value() -> None:
    events = [
        start(
            input_tokens=25,
            cache_read_input_tokens=7,
            cache_creation_input_tokens=0,
            service_tier="standard",
            inference_geo="us",
        ),
        TEXT,
        delta(output_tokens=15),
        delta(output_tokens=42),
        STOP,
    ]
    assert wire(run_events(events)) == {
        "input_tokens": 25,
        "output_tokens": 42,
        "cache_read_input_tokens": 7,
        "cache_creation_input_tokens": 0,
        "service_tier": "standard",
        "inference_geo": "us",
    }


def test_counts_are_replaced_never_added() -> None:
    events = [start(), delta(output_tokens=5), delta(output_tokens=5), STOP]
    assert run_events(events).output_tokens == 5


def test_null_on_a_delta_keeps_the_value() -> None:
    events = [
        start(cache_read_input_tokens=9),
        delta(output_tokens=3, cache_read_input_tokens=None),
    ]
    assert run_events([*events, STOP]).cache_read_input_tokens == 9


def test_iterations_replace_the_list_and_server_tools_update() -> None:
    first = [entry("message", 100, 20)]
    both = [entry("message", 100, 20), entry("message", 300, 40)]
    events = [
        start(input_tokens=100),
        delta(output_tokens=20, iterations=first),
        delta(
            output_tokens=60,
            input_tokens=400,
            iterations=both,
            server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0},
        ),
        STOP,
    ]
    usage = run_events(events)
    assert wire(usage)["iterations"] == both
    assert usage.input_tokens == 400
    assert usage.server_tool_use is not None
    assert usage.server_tool_use.web_search_requests == 1


@pytest.mark.parametrize(
    ("shape", "events", "expected"),
    [
        (
            "input only on the delta",
            [start(input_tokens=0), delta(input_tokens=50, output_tokens=7), STOP],
            (50, 7),
        ),
        (
            "only output on the delta",
            [start(input_tokens=50), delta(output_tokens=7), STOP],
            (50, 7),
        ),
    ],
)
def test_gateway_shapes(shape: str, events: list[Event], expected: tuple[int, int]) -> None:
    usage = run_events(events)
    assert (usage.input_tokens, usage.output_tokens) == expected, shape


def test_unknown_usage_fields_survive_the_merge() -> None:
    events = [start(brand_new={"a": 1}), delta(output_tokens=3, other_new=[1, 2]), STOP]
    assert run_events(events).unknown_fields == {"brand_new": {"a": 1}, "other_new": [1, 2]}


def test_ping_and_unknown_events_are_skipped_anywhere() -> None:
    events = [
        PING,
        start(),
        PING,
        {"type": "brand_new_event", "x": 1},
        TEXT,
        delta(output_tokens=4),
    ]
    assert run_events([*events, STOP, PING, PING]).output_tokens == 4


def test_model_is_read_from_message_start() -> None:
    acc = UsageAccumulator()
    acc.feed_event(start())
    assert acc.model == "claude-sonnet-4-5"


# -- bytes: dispatch, skipping, chunking ---------------------------------------------------


def stream_bytes(**kwargs: Any) -> bytes:
    events = [start(), PING, *([TEXT] * 5), delta(output_tokens=30), STOP]
    return sse(events, **kwargs)


def test_bytes_dispatch_on_event_name_and_on_json_type_without_names() -> None:
    named = run_bytes(stream_bytes())
    unnamed = run_bytes(stream_bytes(named=False))
    crlf = run_bytes(stream_bytes(eol="\r\n"))
    assert wire(named) == wire(unnamed) == wire(crlf)
    assert named.output_tokens == 30


def test_json_type_wins_over_event_name() -> None:
    # The SSE name says content_block_delta, the data says message_delta: the type decides, as
    # in the SDK's event loop (docs/semantics.md, section 4, rule 8; tests/test_event_types.py).
    lying = (
        b"event: content_block_delta\n"
        b'data: {"type":"message_delta","usage":{"output_tokens":999}}\n\n'
    )
    data = sse([start(), delta(output_tokens=3)]) + lying + sse([STOP])
    assert run_bytes(data).output_tokens == 999


def test_content_block_events_are_never_json_decoded() -> None:
    garbage = b"event: content_block_delta\ndata: {not json\n\n" * 3
    data = sse([start()]) + garbage + sse([delta(output_tokens=3), STOP])
    assert run_bytes(data).output_tokens == 3


@given(cuts=st.lists(st.integers(min_value=0), max_size=12))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_result(cuts: list[int]) -> None:
    data = stream_bytes()
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert wire(run_bytes(data, iter(pieces))) == wire(run_bytes(data))


def test_one_byte_at_a_time() -> None:
    data = stream_bytes(eol="\r")
    pieces = iter([data[i : i + 1] for i in range(len(data))])
    assert run_bytes(data, pieces).output_tokens == 30


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.sse")), ids=lambda p: p.stem)
def test_bundled_examples_match_their_expected_usage(path: Path) -> None:
    expected = json.loads((EXAMPLES / "expected" / f"{path.stem}.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        usage = run_bytes(path.read_bytes(), policy="strict")
    assert wire(usage) == expected


# -- errors carry where and what was counted -----------------------------------------------


def fail(events: list[Event] | bytes, **kwargs: Any) -> usagetally.StreamError:
    acc = UsageAccumulator(**kwargs)
    with pytest.raises(usagetally.StreamError) as info:
        if isinstance(events, bytes):
            acc.feed(events)
        else:
            for event in events:
                acc.feed_event(event)
        acc.finish()
    return info.value


def test_malformed_json_names_event_index_and_byte_offset() -> None:
    good = sse([start(), PING])
    bad = b'event: message_delta\ndata: {"type": "message_delta", "usage": \n\n'
    err = fail(good + bad)
    assert isinstance(err, MalformedEventError)
    assert isinstance(err, ValueError)
    assert (err.event_index, err.byte_offset) == (2, len(good))
    assert "event 2" in str(err)
    assert f"byte {len(good)}" in str(err)
    assert wire(err.partial) == {"input_tokens": 10, "output_tokens": 1}


def test_bad_count_names_its_json_path() -> None:
    err = fail([start(), delta(output_tokens=3, iterations=[entry("message", 1, "15")])])
    assert isinstance(err, MalformedEventError)
    assert err.path == "usage.iterations[0].output_tokens"
    assert "usage.iterations[0].output_tokens: expected a non-negative integer, got '15'" in str(
        err
    )
    assert err.event_index == 1
    assert err.partial is not None
    assert err.partial.output_tokens == 1


def test_bad_count_on_message_start() -> None:
    err = fail([start(input_tokens=-3)])
    assert isinstance(err, MalformedEventError)
    assert err.path == "message.usage.input_tokens"
    assert err.partial is None


@pytest.mark.parametrize(
    ("events", "kind", "fragment"),
    [
        ([start(), {"type": "message_delta", "usage": None}], MalformedEventError, "usage is null"),
        ([start(), {"type": "message_delta", "delta": {}}], MalformedEventError, "has no usage"),
        ([{"type": "message_start", "message": {"usage": None}}], MalformedEventError, "is null"),
        ([delta(output_tokens=3)], EventOrderError, "before message_start"),
        ([start(), start()], EventOrderError, "a second message_start"),
        ([STOP], EventOrderError, "message_stop before message_start"),
        ([start(), delta(output_tokens=2), STOP, TEXT], EventOrderError, "after message_stop"),
        ([start(), delta(output_tokens=2), STOP, STOP], EventOrderError, "after message_stop"),
    ],
)
def test_order_and_shape_errors(events: list[Event], kind: type[Exception], fragment: str) -> None:
    err = fail(events)
    assert isinstance(err, kind)
    assert fragment in str(err)
    assert err.event_index == len(events) - 1


def test_event_after_stop_in_bytes_is_seen_even_when_normally_passed_over() -> None:
    data = sse([start(), delta(output_tokens=2), STOP, PING, TEXT])
    err = fail(data)
    assert isinstance(err, EventOrderError)
    assert err.event_index == 4
    assert err.byte_offset == len(sse([start(), delta(output_tokens=2), STOP, PING]))
    assert err.partial is not None
    assert err.partial.output_tokens == 2


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 16])
def test_pings_after_stop_are_fine_in_any_chunking(size: int) -> None:
    data = sse([start(), PING, TEXT, delta(output_tokens=2), STOP, PING, PING])
    acc = UsageAccumulator()
    for i in range(0, len(data), size):
        acc.feed(data[i : i + size])
    assert acc.finish().output_tokens == 2
    assert acc.events_seen == 7


def test_error_event_keeps_type_and_message() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    err = fail(sse([start(), TEXT, error]))
    assert isinstance(err, StreamErrorEvent)
    assert (err.error_type, err.error_message) == ("overloaded_error", "Overloaded")
    assert "overloaded_error: Overloaded" in str(err)
    assert (err.event_index, err.partial is not None) == (2, True)


@pytest.mark.parametrize(
    ("events", "fragment"),
    [
        ([], "before message_start"),
        ([start(), TEXT], "before any message_delta"),
        ([start(), delta(output_tokens=9)], "before message_stop"),
        ([start(), STOP], "before any message_delta"),
    ],
)
def test_incomplete_streams_raise_on_finish_with_the_partial(
    events: list[Event], fragment: str
) -> None:
    acc = UsageAccumulator()
    for event in events:
        acc.feed_event(event)
    assert not acc.complete
    with pytest.raises(IncompleteStreamError, match=fragment) as info:
        acc.finish()
    assert wire(info.value.partial) == wire(acc.usage)


def test_errors_are_sticky_and_usage_stays_readable() -> None:
    acc = UsageAccumulator()
    acc.feed_event(start())
    with pytest.raises(EventOrderError) as first:
        acc.feed_event(start())
    with pytest.raises(EventOrderError) as again:
        acc.feed_event(delta(output_tokens=3))
    assert again.value is first.value
    assert acc.error is first.value
    assert acc.usage is not None
    with pytest.raises(EventOrderError):
        acc.finish()


def test_local_misuse() -> None:
    acc = UsageAccumulator()
    acc.feed_event(start())
    with pytest.raises(LocalUsageError, match="cannot be mixed"):
        acc.feed(b"")
    done = UsageAccumulator()
    for event in [start(), delta(output_tokens=1), STOP]:
        done.feed_event(event)
    assert done.finish() is done.finish()
    with pytest.raises(LocalUsageError, match="finished"):
        done.feed_event(PING)
    with pytest.raises(LocalUsageError, match="policy"):
        UsageAccumulator(policy="loud")  # type: ignore[arg-type]


def test_max_event_size_is_enforced_with_the_partial() -> None:
    data = sse([start()]) + b"event: content_block_delta\ndata: " + b"x" * 5000
    acc = UsageAccumulator(max_event_size=1024)
    with pytest.raises(EventTooLargeError) as info:
        for i in range(0, len(data), 100):
            acc.feed(data[i : i + 100])
    assert info.value.partial is not None
    assert info.value.event_index == 1


def test_strict_types_refuse_unknown_fields() -> None:
    err = fail([start(novel=1)], strict_types=True)
    assert isinstance(err, MalformedEventError)
    assert err.path == "message.usage.novel"


# -- diagnostics -----------------------------------------------------------------------------


def diagnose(events: list[Event]) -> tuple[BetaUsage, list[str]]:
    acc = UsageAccumulator(policy="warn")
    with capture_diagnostics() as logged:
        for event in events:
            acc.feed_event(event)
        usage = acc.finish()
    codes = [d.code for d in acc.diagnostics]
    assert logged == acc.diagnostics
    assert codes
    return usage, codes


def test_iteration_changed_and_removed() -> None:
    one = [entry("message", 10, 5)]
    events = [
        start(),
        delta(output_tokens=5, iterations=one),
        delta(output_tokens=5, iterations=[entry("message", 10, 6)]),
        delta(output_tokens=5, iterations=[]),
        STOP,
    ]
    _, codes = diagnose(events)
    assert codes[:2] == ["iteration_changed", "iteration_removed"]


def test_count_going_down_between_deltas_but_not_from_start() -> None:
    events = [
        start(input_tokens=500),
        delta(output_tokens=9, input_tokens=20),
        delta(output_tokens=4),
    ]
    _, codes = diagnose([*events, STOP])
    assert codes == ["count_decreased"]


def test_top_level_checked_against_iterations_on_the_final_usage_only() -> None:
    # A mid-stream delta carries iterations before the top level catches up: no diagnostic.
    events = [
        start(input_tokens=100),
        delta(output_tokens=5, iterations=[entry("message", 100, 5)]),
        delta(
            output_tokens=9,
            input_tokens=250,
            iterations=[entry("message", 100, 5), entry("message", 150, 4)],
        ),
        STOP,
    ]
    acc = UsageAccumulator(policy="strict")
    for event in events:
        acc.feed_event(event)
    assert acc.finish().input_tokens == 250

    wrong = [*events[:3], delta(output_tokens=10), STOP]
    _, codes = diagnose(wrong)
    assert codes == ["top_level_mismatch"]


@pytest.mark.parametrize(
    ("top", "iterations"),
    [
        ((23000, 1000, 0), [entry("compaction", 180000, 3500), entry("message", 23000, 1000)]),
        ((0, 0, 0), [entry("compaction", 180000, 3500)]),
        (
            (1760, 531, 412),
            [
                entry("message", 412, 89),
                entry("advisor_message", 823, 1612, model="claude-opus-4-7"),
                entry("message", 1348, 442, read=412),
            ],
        ),
        (
            (412, 531, 0),
            [
                entry("message", 412, 89),
                entry("advisor_message", 823, 1612, model="claude-opus-4-7"),
                entry("message", 1348, 442, read=412),
            ],
        ),
        (
            (412, 264, 0),
            [
                entry("message", 535, 0, model="model-a"),
                entry("fallback_message", 412, 264, model="model-b"),
            ],
        ),
    ],
    ids=["compaction", "pause-after-compaction", "advisor-newer", "advisor-older", "fallback"],
)
def test_documented_rules_pass_strict(top: tuple[int, int, int], iterations: list[Event]) -> None:
    inp, out, read = top
    events = [
        start(input_tokens=inp, cache_read_input_tokens=read),
        delta(output_tokens=out, input_tokens=inp, iterations=iterations),
        STOP,
    ]
    usage = run_events(events, policy="strict")
    assert wire(usage)["iterations"] == iterations


def test_strict_policy_raises_with_the_partial() -> None:
    events = [
        start(),
        delta(output_tokens=9, input_tokens=20),
        delta(output_tokens=4),
    ]
    err = fail(events, policy="strict")
    assert isinstance(err, InconsistentUsageError)
    assert err.diagnostic.code == "count_decreased"
    assert err.event_index == 2
    assert err.partial is not None
    assert err.partial.output_tokens == 9


def test_off_policy_checks_nothing() -> None:
    events = [start(), delta(output_tokens=9), delta(output_tokens=4), STOP]
    acc = UsageAccumulator(policy="off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for event in events:
            acc.feed_event(event)
        assert acc.finish().output_tokens == 4
    assert acc.diagnostics == []


def split(five: int, hour: int) -> dict[str, int]:
    return {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": hour}


def test_stale_cache_split_is_kept_as_sent_and_noted_even_under_strict() -> None:
    events = [
        start(cache_creation_input_tokens=100, cache_creation=split(100, 0)),
        delta(
            output_tokens=9,
            cache_creation_input_tokens=300,
            iterations=[
                entry("message", 10, 4, write=100, cache_creation=split(100, 0)),
                entry("message", 0, 5, write=200, cache_creation=split(50, 150)),
            ],
            input_tokens=10,
        ),
        STOP,
    ]
    acc = UsageAccumulator(policy="strict")
    with capture_diagnostics() as logged:
        for event in events:
            acc.feed_event(event)
        usage = acc.finish()
    # The wire's split is kept (as the SDK keeps it); the iterations' own splits price it.
    assert wire(usage)["cache_creation"] == split(100, 0)
    assert [d.code for d in acc.diagnostics] == ["cache_split_stale"]
    assert logged == acc.diagnostics
    assert "200 tokens are not in the split" in acc.diagnostics[0].message
    assert acc.diagnostics[0].event_index == 2
    assert usagetally.cache_writes(usage) == usagetally.CacheWrites(
        ephemeral_5m_input_tokens=150, ephemeral_1h_input_tokens=150
    )


def test_stale_cache_split_without_iterations_leaves_the_rest_unsplit() -> None:
    events = [
        start(cache_creation_input_tokens=100, cache_creation=split(100, 0)),
        delta(output_tokens=9, cache_creation_input_tokens=300),
        STOP,
    ]
    usage, codes = diagnose(events)
    assert codes == ["cache_split_stale"]
    assert wire(usage)["cache_creation"] == split(100, 0)
    assert usagetally.cache_writes(usage) == usagetally.CacheWrites(
        ephemeral_5m_input_tokens=100, unsplit_input_tokens=200
    )
    assert run_events(events, policy="strict") == usage


@pytest.mark.parametrize(
    ("start_total", "start_split", "final_total"),
    [
        (100, split(60, 0), None),  # never added up, on message_start already
        (100, split(60, 0), 300),  # did not add up at the start, and the total grew
        (100, split(160, 0), 300),  # claimed more than the start's total
    ],
    ids=["start", "start-then-grew", "over"],
)
def test_a_split_that_never_added_up_is_an_inconsistency(
    start_total: int, start_split: dict[str, int], final_total: int | None
) -> None:
    carried = {} if final_total is None else {"cache_creation_input_tokens": final_total}
    events = [
        start(cache_creation_input_tokens=start_total, cache_creation=start_split),
        delta(output_tokens=9, **carried),
        STOP,
    ]
    _, codes = diagnose(events)
    assert codes[-1] == "cache_split_mismatch"
    err = fail(events, policy="strict")
    assert isinstance(err, InconsistentUsageError)
    assert err.diagnostic.code == "cache_split_mismatch"


def test_a_stale_split_above_a_lowered_total_is_not_used() -> None:
    events = [
        start(cache_creation_input_tokens=300, cache_creation=split(300, 0)),
        delta(output_tokens=9, cache_creation_input_tokens=100),
        STOP,
    ]
    usage, codes = diagnose(events)
    assert codes == ["cache_split_stale"]
    assert wire(usage)["cache_creation"] == split(300, 0)
    assert usagetally.cache_writes(usage) == usagetally.CacheWrites(unsplit_input_tokens=100)


def finished_start(stop_reason: Any = "tool_use") -> Event:
    event = start(server_tool_use={"web_search_requests": 0}, output_tokens=0)
    event["message"]["stop_reason"] = stop_reason
    return event


@pytest.mark.parametrize("feeder", ["events", "bytes"])
def test_a_message_finished_in_message_start_is_complete(feeder: str) -> None:
    events = [finished_start(), PING, STOP]
    acc = UsageAccumulator(policy="strict")
    if feeder == "bytes":
        acc.feed(sse(events))
    else:
        for event in events:
            acc.feed_event(event)
    assert acc.complete
    assert wire(acc.finish()) == {
        "input_tokens": 10,
        "output_tokens": 0,
        "server_tool_use": {"web_search_requests": 0},
    }


def test_a_finished_message_start_may_still_be_followed_by_a_delta() -> None:
    usage = run_events([finished_start(), delta(output_tokens=12), STOP], policy="strict")
    assert usage.output_tokens == 12


def test_an_unfinished_message_start_without_delta_is_still_incomplete() -> None:
    for reason in (None, 7):
        err = fail([finished_start(reason), STOP])
        assert isinstance(err, IncompleteStreamError)
        assert "before any message_delta" in str(err)
    err = fail([finished_start()])
    assert isinstance(err, IncompleteStreamError)
    assert "before message_stop" in str(err)


# -- the merge is the same whichever way events come in ------------------------------------


def feeders() -> list[Callable[[UsageAccumulator, list[Event]], None]]:
    def by_event(acc: UsageAccumulator, events: list[Event]) -> None:
        for event in events:
            acc.feed_event(event)

    def by_sse(acc: UsageAccumulator, events: list[Event]) -> None:
        for event in events:
            acc.feed_sse(event["type"], json.dumps(event))

    def by_bytes(acc: UsageAccumulator, events: list[Event]) -> None:
        acc.feed(sse(events))

    return [by_event, by_sse, by_bytes]


@pytest.mark.parametrize("feeder", feeders(), ids=["events", "sse", "bytes"])
def test_every_feeding_mode_agrees(feeder: Callable[[UsageAccumulator, list[Event]], None]) -> None:
    events = [
        start(input_tokens=100, cache_read_input_tokens=3),
        PING,
        TEXT,
        delta(output_tokens=20, iterations=[entry("message", 100, 20, read=3)]),
        STOP,
    ]
    acc = UsageAccumulator(policy="strict")
    feeder(acc, events)
    assert acc.complete
    usage = acc.finish()
    assert wire(usage) == {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 3,
        "iterations": [entry("message", 100, 20, read=3)],
    }
    assert acc.events_seen == 5


def test_diagnostics_keep_no_memory_across_streams() -> None:
    # Each stream logs a diagnostic with its own text; nothing may pile up per stream (the
    # warnings registry used to keep one entry per distinct text, forever).
    def one(i: int) -> None:
        acc = UsageAccumulator()
        for event in (start(), delta(output_tokens=i + 9), delta(output_tokens=i), STOP):
            acc.feed_event(event)
        acc.finish()
        assert len(acc.diagnostics) == 1

    with capture_diagnostics() as logged:
        for i in range(2_000):
            one(i)
    assert len(logged) == 2_000
    assert len({d.message for d in logged}) == 2_000  # every stream's diagnostic is visible
    # pytest's own log capture keeps every record it sees: measure the library alone.
    logger = logging.getLogger("usagetally")
    logger.propagate = False
    try:
        gc.collect()
        before = sys.getallocatedblocks()
        for i in range(2_000, 22_000):
            one(i)
        gc.collect()
        assert sys.getallocatedblocks() - before < 500
    finally:
        logger.propagate = True


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "the body is empty"),
        (b'{"a": 1}\n{"b": 2}\n', "JSON lines"),
        (b'{"type": "message", "usage": {}}', "one JSON object"),
        (b"[1, 2]", "the body is JSON, not an event stream"),
        (gzip.compress(b"event: ping\ndata: {}\n\n"), "gzip-compressed"),
        (bytes(range(256)), "binary data"),
        ("data: hi\n\n".encode("utf-16"), "binary data"),
        (b"<html>502 Bad Gateway</html>\n", "no event or data lines"),
    ],
    ids=["empty", "json-lines", "json", "json-array", "gzip", "binary", "utf-16", "html"],
)
def test_a_body_that_is_no_event_stream_says_what_it_is(body: bytes, says: str) -> None:
    for chunks in ([body], [body[i : i + 3] for i in range(0, len(body), 3)], []):
        if not chunks and body:
            continue
        acc = UsageAccumulator()
        with pytest.raises(IncompleteStreamError) as info:
            for chunk in chunks:
                acc.feed(chunk)
            acc.finish()
        assert str(info.value).startswith("the stream ended before message_start: the body ")
        assert says in str(info.value)
        assert info.value.partial is None


def test_a_json_error_body_is_an_error_event_naming_its_type() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    acc = UsageAccumulator()
    acc.feed(body[:20])
    acc.feed(body[20:])
    with pytest.raises(StreamErrorEvent) as info:
        acc.finish()
    assert info.value.error_type == "overloaded_error"
    assert info.value.error_message == "Overloaded"
    assert info.value.byte_offset == 0
    assert acc.error is info.value
    # The same error as the API's error event gives, by class and attributes.
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    other = fail([event])
    assert isinstance(other, StreamErrorEvent)
    assert (other.error_type, other.error_message) == ("overloaded_error", "Overloaded")


def test_a_long_body_is_described_from_its_head_only() -> None:
    acc = UsageAccumulator()
    line = b'{"type": "x", "pad": "' + b"a" * 1000 + b'"}\n'
    for _ in range(200):  # 200 KB: more than is kept
        acc.feed(line)
    with pytest.raises(IncompleteStreamError, match="JSON lines"):
        acc.finish()
