"""The catalogue of bad inputs (tests/bad_inputs/), and every cut of the bundled examples.

``tests/bad_inputs/manifest.json`` lists each case: its payload file (``.sse`` when it is
text, ``.bin`` for raw bytes), the options of the accumulator, and the expected outcome written
from the rules: the error class, a fragment of its message, the index of the failing event,
the byte offset of its block (when the error names one), the partial usage in wire form; or,
for inputs that must succeed (gateway shapes, invalid UTF-8 where it does not matter), the
final usage. Each case is replayed whole, one byte at a time and at random chunkings; only
``UsageError`` subclasses may escape, and the outcome must be the same every time.

The cuts of ``examples/*.sse`` are generated here: the stream is cut at every event boundary,
inside every blank line and in the middle of every event, and the expected outcome is derived
from the events before the cut alone.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from stream_strategies import Outcome, outcome_of, split_at
from support import EXAMPLES

import usagetally
from usagetally import BetaUsage, EventOrderError, MalformedEventError, UsageAccumulator

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE / "bad_inputs"
MANIFEST: dict[str, Any] = json.loads((CATALOGUE / "manifest.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]
BY_NAME = {case["name"]: case for case in CASES}
DOCUMENTED_ERROR_TYPES = (
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
)


def payload(case: dict[str, Any]) -> bytes:
    return (CATALOGUE / str(case["file"])).read_bytes()


def replay(case: dict[str, Any], pieces: list[bytes]) -> Outcome:
    options: dict[str, Any] = {"policy": "strict", **case.get("options", {})}
    acc = UsageAccumulator(**options)

    def run() -> BetaUsage:
        try:
            for piece in pieces:
                acc.feed(piece)
        except usagetally.StreamError as exc:
            # Sticky: finishing after a failure raises the very same error.
            with pytest.raises(usagetally.StreamError) as again:
                acc.finish()
            assert again.value is exc  # noqa: PT017  (sticky: the same object again)
            raise
        return acc.finish()

    return outcome_of(run)


def check(case: dict[str, Any], outcome: Outcome) -> None:
    if case["error"] is None:
        assert outcome == Outcome(usage=case["usage"]), outcome.message
        return
    assert outcome.error == case["error"], outcome.message
    assert outcome.error is not None
    assert issubclass(getattr(usagetally, outcome.error), usagetally.StreamError)
    assert outcome.message is not None
    assert case["fragment"] in outcome.message
    assert outcome.event_index == case["event_index"]
    if "byte_offset" in case:
        assert outcome.byte_offset == case["byte_offset"]
    assert outcome.partial == case["partial"]
    if "error_type" in case:
        assert outcome.error_type == case["error_type"]


def test_the_catalogue_covers_what_it_promises() -> None:
    assert len(CASES) >= 40
    assert len(BY_NAME) == len(CASES), "case names are unique"
    files = {case["file"] for case in CASES}
    assert files | {"manifest.json"} == {p.name for p in CATALOGUE.iterdir()}
    for case in CASES:
        assert case["file"] == case["name"] + (".bin" if case["file"].endswith(".bin") else ".sse")
        if case["file"].endswith(".sse"):
            payload(case).decode("utf-8")
        if case["error"] is not None:
            assert issubclass(getattr(usagetally, case["error"]), usagetally.StreamError)
            assert {"fragment", "event_index", "partial"} <= case.keys()
    error_types = {c.get("error_type") for c in CASES if c["error"] == "StreamErrorEvent"}
    assert set(DOCUMENTED_ERROR_TYPES) <= error_types
    kinds = {case["error"] for case in CASES}
    assert {
        None,
        "MalformedEventError",
        "EventOrderError",
        "StreamErrorEvent",
        "IncompleteStreamError",
        "EventTooLargeError",
        "InconsistentUsageError",
    } <= kinds
    gateway = [c for c in CASES if c["name"].startswith("gateway_")]
    assert gateway
    assert all(c["error"] is None for c in gateway)


def params() -> list[Any]:
    """Every case; those that show a known bug are strict xfails naming it."""
    out = []
    for name in sorted(BY_NAME):
        reason = BY_NAME[name].get("xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(name, marks=marks))
    return out


@pytest.mark.parametrize("name", params())
def test_case_replayed_whole(name: str) -> None:
    case = BY_NAME[name]
    check(case, replay(case, [payload(case)]))


@pytest.mark.parametrize("name", params())
def test_case_replayed_at_any_chunking(name: str) -> None:
    case = BY_NAME[name]
    data = payload(case)
    whole = replay(case, [data])
    rng = random.Random(name)
    chunkings = [[data[i : i + 1] for i in range(len(data))]] if len(data) <= 20_000 else []
    for _ in range(12):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.choice([1, 3, 10, 40]))]
        chunkings.append(split_at(data, cuts))
    for pieces in chunkings:
        outcome = replay(case, pieces)
        check(case, outcome)
        assert outcome == whole
        assert outcome.message == whole.message


@pytest.mark.parametrize("name", ["content_block_after_stop", "unknown_event_after_stop"])
def test_passed_over_event_after_stop_names_its_byte_offset(name: str) -> None:
    case = BY_NAME[name]
    outcome = replay(case, [payload(case)])
    assert outcome.error == "EventOrderError"
    assert outcome.byte_offset == case["byte_offset"]


def test_event_too_large_in_the_same_chunk_keeps_the_partial() -> None:
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":'
        b'{"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
    )
    acc = UsageAccumulator(max_event_size=200)
    acc.feed(start + b"data: " + b"x" * 300)  # the start is accepted, the error deferred
    assert acc.usage is not None
    with pytest.raises(usagetally.EventTooLargeError) as caught:
        acc.finish()
    assert caught.value.partial == acc.usage
    assert acc.error is caught.value


def test_a_delta_without_usage_raises_the_class_its_docs_name() -> None:
    outcome = replay(BY_NAME["delta_usage_missing"], [payload(BY_NAME["delta_usage_missing"])])
    documented = "message_delta`` without usage" in (EventOrderError.__doc__ or "")
    raised = EventOrderError if outcome.error == "EventOrderError" else MalformedEventError
    assert documented == (raised is EventOrderError)


# --- Every cut of the bundled examples ---------------------------------------------------------


def example_events(name: str) -> tuple[bytes, list[int], list[tuple[str, dict[str, Any]]]]:
    """The stream, the end offset of each event, and each event's name and JSON.

    The examples are framed exactly like the API (``test_examples_sdk`` checks it): each
    event is ``event: NAME\\ndata: JSON\\n\\n``.
    """
    data = (EXAMPLES / f"{name}.sse").read_bytes()
    ends, events, pos = [], [], 0
    while pos < len(data):
        end = data.index(b"\n\n", pos) + 2
        head, body = data[pos:end].decode("utf-8").rstrip("\n").split("\n")
        assert head.startswith("event: ")
        assert body.startswith("data: ")
        events.append((head[len("event: ") :], json.loads(body[len("data: ") :])))
        ends.append(end)
        pos = end
    return data, ends, events


def expected_after(events: list[tuple[str, dict[str, Any]]], final: dict[str, Any]) -> Outcome:
    """What a stream holding only ``events`` (whole ones) must give, by the rules alone."""
    usage: dict[str, Any] | None = None
    deltas = 0
    stopped = False
    for kind, event in events:
        if kind == "message_start":
            usage = dict(event["message"]["usage"])
        elif kind == "message_delta":
            assert usage is not None
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
            deltas += 1
        elif kind == "message_stop":
            stopped = True
    if usage is not None and deltas and stopped:
        return Outcome(usage=final)
    if usage is None:
        reason = "the stream ended before message_start"
    elif not deltas:
        reason = "the stream ended before any message_delta"
    else:
        reason = "the stream ended before message_stop"
    return Outcome(
        error="IncompleteStreamError", event_index=len(events), partial=usage, message=reason
    )


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.sse")))
def test_example_cut_anywhere_gives_the_partial_of_the_events_before(name: str) -> None:
    data, ends, events = example_events(name)
    final = json.loads((EXAMPLES / "expected" / f"{name}.json").read_text("utf-8"))
    starts = [0, *ends[:-1]]
    cuts = {0, len(data)}
    for start, end in zip(starts, ends, strict=True):
        cuts |= {start, (start + end) // 2, end - 1, end}
    rng = random.Random(name)
    tried = 0
    for cut in sorted(cuts):
        whole_events = sum(1 for end in ends if end <= cut)
        expected = expected_after(events[:whole_events], final)
        prefix = data[:cut]
        for pieces in ([prefix], split_at(prefix, [rng.randrange(cut + 1) for _ in range(3)])):
            outcome = replay({}, pieces)
            assert outcome == expected, (cut, outcome.message)
            if expected.error is not None:
                assert expected.message is not None
                assert outcome.message is not None
                assert outcome.message.startswith(expected.message)
            tried += 1
    assert tried >= 4 * len(events)
