"""The accumulator's merge rules, errors and diagnostics (docs/semantics.md, section 4)."""

from __future__ import annotations

import functools
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
from support import EXAMPLES, pieces, wire

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
from usagetally.testing import (
    Event,
    advisor_iteration,
    cache_creation,
    capture_diagnostics,
    chunks_fixed,
    compaction_iteration,
    error_event,
    fallback_iteration,
    message_delta,
    message_iteration,
    message_start,
    message_stop,
    ping,
    sse_bytes,
    text_delta,
)

# The kit's message_start with a bare usage: 10 input tokens, the placeholder output token, and
# only what a test gives besides (no cache counts, split or tier), so that the expectations below
# list every field of the final usage.
start = functools.partial(
    message_start,
    input_tokens=10,
    cache_creation_input_tokens=None,
    cache_read_input_tokens=None,
    cache_creation=None,
    service_tier=None,
)
STOP = message_stop()
PING = ping()
TEXT = text_delta("hi")


def without_names(data: bytes) -> bytes:
    """A transcript with its ``event:`` lines taken out: the kit always names events."""
    return b"".join(
        line for line in data.splitlines(keepends=True) if not line.startswith(b"event:")
    )


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
        message_delta(output_tokens=15),
        message_delta(output_tokens=42),
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
    events = [start(), message_delta(output_tokens=5), message_delta(output_tokens=5), STOP]
    assert run_events(events).output_tokens == 5


def test_null_on_a_delta_keeps_the_value() -> None:
    # An explicit null (the kit leaves a field given as None out: the dict is edited).
    null_read = message_delta(output_tokens=3)
    null_read["usage"]["cache_read_input_tokens"] = None
    events = [start(cache_read_input_tokens=9), null_read]
    assert run_events([*events, STOP]).cache_read_input_tokens == 9


def test_iterations_replace_the_list_and_server_tools_update() -> None:
    first = [message_iteration(input_tokens=100, output_tokens=20)]
    both = [
        message_iteration(input_tokens=100, output_tokens=20),
        message_iteration(input_tokens=300, output_tokens=40),
    ]
    events = [
        start(input_tokens=100),
        message_delta(output_tokens=20, iterations=first),
        message_delta(
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
            [start(input_tokens=0), message_delta(input_tokens=50, output_tokens=7), STOP],
            (50, 7),
        ),
        (
            "only output on the delta",
            [start(input_tokens=50), message_delta(output_tokens=7), STOP],
            (50, 7),
        ),
    ],
)
def test_gateway_shapes(shape: str, events: list[Event], expected: tuple[int, int]) -> None:
    usage = run_events(events)
    assert (usage.input_tokens, usage.output_tokens) == expected, shape


def test_unknown_usage_fields_survive_the_merge() -> None:
    events = [start(brand_new={"a": 1}), message_delta(output_tokens=3, other_new=[1, 2]), STOP]
    assert run_events(events).unknown_fields == {"brand_new": {"a": 1}, "other_new": [1, 2]}


def test_ping_and_unknown_events_are_skipped_anywhere() -> None:
    events = [
        PING,
        start(),
        PING,
        {"type": "brand_new_event", "x": 1},
        TEXT,
        message_delta(output_tokens=4),
    ]
    assert run_events([*events, STOP, PING, PING]).output_tokens == 4


def test_model_is_read_from_message_start() -> None:
    acc = UsageAccumulator()
    acc.feed_event(start(model="claude-opus-4-7"))
    assert acc.model == "claude-opus-4-7"


# -- bytes: dispatch, skipping, chunking ---------------------------------------------------


def stream_bytes(line_ending: str = "\n") -> bytes:
    events = [start(), PING, *([TEXT] * 5), message_delta(output_tokens=30), STOP]
    return sse_bytes(events, line_ending)


def test_bytes_dispatch_on_event_name_and_on_json_type_without_names() -> None:
    named = run_bytes(stream_bytes())
    unnamed = run_bytes(without_names(stream_bytes()))
    crlf = run_bytes(stream_bytes("\r\n"))
    assert wire(named) == wire(unnamed) == wire(crlf)
    assert named.output_tokens == 30


def test_json_type_wins_over_event_name() -> None:
    # The SSE name says content_block_delta, the data says message_delta: the type decides, as
    # in the SDK's event loop (docs/semantics.md, section 4, rule 8; tests/test_event_types.py).
    lying = (
        b"event: content_block_delta\n"
        b'data: {"type":"message_delta","usage":{"output_tokens":999}}\n\n'
    )
    data = sse_bytes([start(), message_delta(output_tokens=3)]) + lying + sse_bytes([STOP])
    assert run_bytes(data).output_tokens == 999


def test_content_block_events_are_never_json_decoded() -> None:
    garbage = b"event: content_block_delta\ndata: {not json\n\n" * 3
    data = sse_bytes([start()]) + garbage + sse_bytes([message_delta(output_tokens=3), STOP])
    assert run_bytes(data).output_tokens == 3


@given(cuts=st.lists(st.integers(min_value=0), max_size=12))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_result(cuts: list[int]) -> None:
    data = stream_bytes()
    points = sorted({c % (len(data) + 1) for c in cuts})
    assert wire(run_bytes(data, pieces(data, points))) == wire(run_bytes(data))


def test_one_byte_at_a_time() -> None:
    data = stream_bytes("\r")
    assert run_bytes(data, iter(chunks_fixed(data, 1))).output_tokens == 30


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
    good = sse_bytes([start(), PING])
    bad = b'event: message_delta\ndata: {"type": "message_delta", "usage": \n\n'
    err = fail(good + bad)
    assert isinstance(err, MalformedEventError)
    assert isinstance(err, ValueError)
    assert (err.event_index, err.byte_offset) == (2, len(good))
    assert "event 2" in str(err)
    assert f"byte {len(good)}" in str(err)
    assert wire(err.partial) == {"input_tokens": 10, "output_tokens": 1}


def test_bad_count_names_its_json_path() -> None:
    err = fail(
        [
            start(),
            message_delta(
                output_tokens=3,
                iterations=[{**message_iteration(input_tokens=1), "output_tokens": "15"}],
            ),
        ]
    )
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
        ([message_delta(output_tokens=3)], EventOrderError, "before message_start"),
        ([start(), start()], EventOrderError, "a second message_start"),
        ([STOP], EventOrderError, "message_stop before message_start"),
        (
            [start(), message_delta(output_tokens=2), STOP, TEXT],
            EventOrderError,
            "after message_stop",
        ),
        (
            [start(), message_delta(output_tokens=2), STOP, STOP],
            EventOrderError,
            "after message_stop",
        ),
    ],
)
def test_order_and_shape_errors(events: list[Event], kind: type[Exception], fragment: str) -> None:
    err = fail(events)
    assert isinstance(err, kind)
    assert fragment in str(err)
    assert err.event_index == len(events) - 1


def test_event_after_stop_in_bytes_is_seen_even_when_normally_passed_over() -> None:
    data = sse_bytes([start(), message_delta(output_tokens=2), STOP, PING, TEXT])
    err = fail(data)
    assert isinstance(err, EventOrderError)
    assert err.event_index == 4
    assert err.byte_offset == len(sse_bytes([start(), message_delta(output_tokens=2), STOP, PING]))
    assert err.partial is not None
    assert err.partial.output_tokens == 2


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 16])
def test_pings_after_stop_are_fine_in_any_chunking(size: int) -> None:
    data = sse_bytes([start(), PING, TEXT, message_delta(output_tokens=2), STOP, PING, PING])
    acc = UsageAccumulator()
    for chunk in chunks_fixed(data, size):
        acc.feed(chunk)
    assert acc.finish().output_tokens == 2
    assert acc.events_seen == 7


def test_error_event_keeps_type_and_message() -> None:
    err = fail(sse_bytes([start(), TEXT, error_event("overloaded_error", "Overloaded")]))
    assert isinstance(err, StreamErrorEvent)
    assert (err.error_type, err.error_message) == ("overloaded_error", "Overloaded")
    assert "overloaded_error: Overloaded" in str(err)
    assert (err.event_index, err.partial is not None) == (2, True)


@pytest.mark.parametrize(
    ("events", "fragment"),
    [
        ([], "before message_start"),
        ([start(), TEXT], "before any message_delta"),
        ([start(), message_delta(output_tokens=9)], "before message_stop"),
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
        acc.feed_event(message_delta(output_tokens=3))
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
    for event in [start(), message_delta(output_tokens=1), STOP]:
        done.feed_event(event)
    assert done.finish() is done.finish()
    with pytest.raises(LocalUsageError, match="finished"):
        done.feed_event(PING)
    with pytest.raises(LocalUsageError, match="policy"):
        UsageAccumulator(policy="loud")  # type: ignore[arg-type]


def test_max_event_size_is_enforced_with_the_partial() -> None:
    data = sse_bytes([start()]) + b"event: content_block_delta\ndata: " + b"x" * 5000
    acc = UsageAccumulator(max_event_size=1024)
    with pytest.raises(EventTooLargeError) as info:
        for chunk in chunks_fixed(data, 100):
            acc.feed(chunk)
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
    one = [message_iteration(input_tokens=10, output_tokens=5)]
    events = [
        start(),
        message_delta(output_tokens=5, iterations=one),
        message_delta(
            output_tokens=5, iterations=[message_iteration(input_tokens=10, output_tokens=6)]
        ),
        message_delta(output_tokens=5, iterations=[]),
        STOP,
    ]
    _, codes = diagnose(events)
    assert codes[:2] == ["iteration_changed", "iteration_removed"]


def test_count_going_down_between_deltas_but_not_from_start() -> None:
    events = [
        start(input_tokens=500),
        message_delta(output_tokens=9, input_tokens=20),
        message_delta(output_tokens=4),
    ]
    _, codes = diagnose([*events, STOP])
    assert codes == ["count_decreased"]


def test_top_level_checked_against_iterations_on_the_final_usage_only() -> None:
    # A mid-stream delta carries iterations before the top level catches up: no diagnostic.
    events = [
        start(input_tokens=100),
        message_delta(
            output_tokens=5, iterations=[message_iteration(input_tokens=100, output_tokens=5)]
        ),
        message_delta(
            output_tokens=9,
            input_tokens=250,
            iterations=[
                message_iteration(input_tokens=100, output_tokens=5),
                message_iteration(input_tokens=150, output_tokens=4),
            ],
        ),
        STOP,
    ]
    acc = UsageAccumulator(policy="strict")
    for event in events:
        acc.feed_event(event)
    assert acc.finish().input_tokens == 250

    wrong = [*events[:3], message_delta(output_tokens=10), STOP]
    _, codes = diagnose(wrong)
    assert codes == ["top_level_mismatch"]


@pytest.mark.parametrize(
    ("top", "iterations"),
    [
        (
            (23000, 1000, 0),
            [
                compaction_iteration(input_tokens=180000, output_tokens=3500),
                message_iteration(input_tokens=23000, output_tokens=1000),
            ],
        ),
        ((0, 0, 0), [compaction_iteration(input_tokens=180000, output_tokens=3500)]),
        (
            (1760, 531, 412),
            [
                message_iteration(input_tokens=412, output_tokens=89),
                advisor_iteration(input_tokens=823, output_tokens=1612, model="claude-opus-4-7"),
                message_iteration(
                    input_tokens=1348, output_tokens=442, cache_read_input_tokens=412
                ),
            ],
        ),
        (
            (412, 531, 0),
            [
                message_iteration(input_tokens=412, output_tokens=89),
                advisor_iteration(input_tokens=823, output_tokens=1612, model="claude-opus-4-7"),
                message_iteration(
                    input_tokens=1348, output_tokens=442, cache_read_input_tokens=412
                ),
            ],
        ),
        (
            (412, 264, 0),
            [
                message_iteration(input_tokens=535, output_tokens=0, model="model-a"),
                fallback_iteration(input_tokens=412, output_tokens=264, model="model-b"),
            ],
        ),
    ],
    ids=["compaction", "pause-after-compaction", "advisor-newer", "advisor-older", "fallback"],
)
def test_documented_rules_pass_strict(top: tuple[int, int, int], iterations: list[Event]) -> None:
    inp, out, read = top
    events = [
        start(input_tokens=inp, cache_read_input_tokens=read),
        message_delta(output_tokens=out, input_tokens=inp, iterations=iterations),
        STOP,
    ]
    usage = run_events(events, policy="strict")
    assert wire(usage)["iterations"] == iterations


def test_strict_policy_raises_with_the_partial() -> None:
    events = [
        start(),
        message_delta(output_tokens=9, input_tokens=20),
        message_delta(output_tokens=4),
    ]
    err = fail(events, policy="strict")
    assert isinstance(err, InconsistentUsageError)
    assert err.diagnostic.code == "count_decreased"
    assert err.event_index == 2
    assert err.partial is not None
    assert err.partial.output_tokens == 9


def test_off_policy_checks_nothing() -> None:
    events = [start(), message_delta(output_tokens=9), message_delta(output_tokens=4), STOP]
    acc = UsageAccumulator(policy="off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for event in events:
            acc.feed_event(event)
        assert acc.finish().output_tokens == 4
    assert acc.diagnostics == []


def test_stale_cache_split_is_kept_as_sent_and_noted_even_under_strict() -> None:
    events = [
        start(cache_creation_input_tokens=100, cache_creation=cache_creation(100, 0)),
        message_delta(
            output_tokens=9,
            cache_creation_input_tokens=300,
            iterations=[
                message_iteration(
                    input_tokens=10,
                    output_tokens=4,
                    cache_creation_input_tokens=100,
                    cache_creation=cache_creation(100, 0),
                ),
                message_iteration(
                    input_tokens=0,
                    output_tokens=5,
                    cache_creation_input_tokens=200,
                    cache_creation=cache_creation(50, 150),
                ),
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
    assert wire(usage)["cache_creation"] == cache_creation(100, 0)
    assert [d.code for d in acc.diagnostics] == ["cache_split_stale"]
    assert logged == acc.diagnostics
    assert "200 tokens are not in the split" in acc.diagnostics[0].message
    assert acc.diagnostics[0].event_index == 2
    assert usagetally.cache_writes(usage) == usagetally.CacheWrites(
        ephemeral_5m_input_tokens=150, ephemeral_1h_input_tokens=150
    )


def test_stale_cache_split_without_iterations_leaves_the_rest_unsplit() -> None:
    events = [
        start(cache_creation_input_tokens=100, cache_creation=cache_creation(100, 0)),
        message_delta(output_tokens=9, cache_creation_input_tokens=300),
        STOP,
    ]
    usage, codes = diagnose(events)
    assert codes == ["cache_split_stale"]
    assert wire(usage)["cache_creation"] == cache_creation(100, 0)
    assert usagetally.cache_writes(usage) == usagetally.CacheWrites(
        ephemeral_5m_input_tokens=100, unsplit_input_tokens=200
    )
    assert run_events(events, policy="strict") == usage


@pytest.mark.parametrize(
    ("start_total", "start_split", "final_total"),
    [
        (100, cache_creation(60, 0), None),  # never added up, on message_start already
        (100, cache_creation(60, 0), 300),  # did not add up at the start, and the total grew
        (100, cache_creation(160, 0), 300),  # claimed more than the start's total
    ],
    ids=["start", "start-then-grew", "over"],
)
def test_a_split_that_never_added_up_is_an_inconsistency(
    start_total: int, start_split: dict[str, int], final_total: int | None
) -> None:
    carried: dict[str, Any] = (
        {} if final_total is None else {"cache_creation_input_tokens": final_total}
    )
    events = [
        start(cache_creation_input_tokens=start_total, cache_creation=start_split),
        message_delta(output_tokens=9, **carried),
        STOP,
    ]
    _, codes = diagnose(events)
    assert codes[-1] == "cache_split_mismatch"
    err = fail(events, policy="strict")
    assert isinstance(err, InconsistentUsageError)
    assert err.diagnostic.code == "cache_split_mismatch"


def test_a_stale_split_above_a_lowered_total_is_not_used() -> None:
    events = [
        start(cache_creation_input_tokens=300, cache_creation=cache_creation(300, 0)),
        message_delta(output_tokens=9, cache_creation_input_tokens=100),
        STOP,
    ]
    usage, codes = diagnose(events)
    assert codes == ["cache_split_stale"]
    assert wire(usage)["cache_creation"] == cache_creation(300, 0)
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
        acc.feed(sse_bytes(events))
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
    usage = run_events([finished_start(), message_delta(output_tokens=12), STOP], policy="strict")
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
        acc.feed(sse_bytes(events))

    return [by_event, by_sse, by_bytes]


@pytest.mark.parametrize("feeder", feeders(), ids=["events", "sse", "bytes"])
def test_every_feeding_mode_agrees(feeder: Callable[[UsageAccumulator, list[Event]], None]) -> None:
    events = [
        start(input_tokens=100, cache_read_input_tokens=3),
        PING,
        TEXT,
        message_delta(
            output_tokens=20,
            iterations=[
                message_iteration(input_tokens=100, output_tokens=20, cache_read_input_tokens=3)
            ],
        ),
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
        "iterations": [
            message_iteration(input_tokens=100, output_tokens=20, cache_read_input_tokens=3)
        ],
    }
    assert acc.events_seen == 5


def test_diagnostics_keep_no_memory_across_streams() -> None:
    # Each stream logs a diagnostic with its own text; nothing may pile up per stream (the
    # warnings registry used to keep one entry per distinct text, forever).
    def one(i: int) -> None:
        acc = UsageAccumulator()
        for event in (
            start(),
            message_delta(output_tokens=i + 9),
            message_delta(output_tokens=i),
            STOP,
        ):
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
    for chunks in ([body], chunks_fixed(body, 3), []):
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
    other = fail([error_event("overloaded_error", "Overloaded")])
    assert isinstance(other, StreamErrorEvent)
    assert (other.error_type, other.error_message) == ("overloaded_error", "Overloaded")


def test_a_long_body_is_described_from_its_head_only() -> None:
    acc = UsageAccumulator()
    line = b'{"type": "x", "pad": "' + b"a" * 1000 + b'"}\n'
    for _ in range(200):  # 200 KB: more than is kept
        acc.feed(line)
    with pytest.raises(IncompleteStreamError, match="JSON lines"):
        acc.finish()
