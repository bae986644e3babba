"""An event's SSE name against its JSON ``type``: one rule on every path.

The rule (docs/semantics.md, section 4, rule 8): the JSON ``type`` decides what an event is, as
in the anthropic SDK's event loop, except that an event named ``ping`` is passed over unread
and an event named ``error`` is an error event whatever its data. Each case is fed as bytes
(whole, byte by byte, in two pieces), as decoded server-sent events, and as the SDK's event
objects (the SDK's own decoder and event loop over the same bytes): all must agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import usagetally
from usagetally import SSEDecoder, UsageAccumulator, UsageError
from usagetally import testing as t

Named = tuple[str, dict[str, Any]]
START = t.message_start(input_tokens=10)
DELTA = t.message_delta(output_tokens=50)
STOP = t.message_stop()


def body(events: list[Named], *, spaced: bool = False) -> bytes:
    separators = (", ", ": ") if spaced else (",", ":")
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data, separators=separators)}\n\n".encode()
        for name, data in events
    )


CASES: dict[str, tuple[list[Named], int | str]] = {
    # name: (events, the output_tokens every path must give, or the error class)
    "delta-named-as-content-block": (
        [
            ("message_start", START),
            ("content_block_delta", t.message_delta(output_tokens=77)),
            ("message_stop", STOP),
        ],
        77,
    ),
    "content-block-named-as-delta": (
        [
            ("message_start", START),
            ("message_delta", t.content_block_delta(t.text_delta("hi"))),
            ("message_stop", STOP),
        ],
        "IncompleteStreamError",
    ),
    "delta-named-ping": (
        [
            ("message_start", START),
            ("ping", t.message_delta(output_tokens=99)),
            ("message_delta", DELTA),
            ("message_stop", STOP),
        ],
        50,
    ),
    "delta-named-error": (
        [("message_start", START), ("error", DELTA), ("message_stop", STOP)],
        "StreamErrorEvent",
    ),
    "delta-under-an-unknown-name": (
        [("message_start", START), ("novel_event", DELTA), ("message_stop", STOP)],
        50,
    ),
    "stop-named-as-content-block": (
        [("message_start", START), ("message_delta", DELTA), ("content_block_stop", STOP)],
        50,
    ),
    "start-named-as-content-block": (
        [("content_block_start", START), ("message_delta", DELTA), ("message_stop", STOP)],
        50,
    ),
}


def outcome(run: Callable[[], usagetally.BetaUsage]) -> int | str:
    try:
        return run().output_tokens
    except UsageError as exc:
        return type(exc).__name__


def by_bytes(chunks: list[bytes]) -> Callable[[], usagetally.BetaUsage]:
    def run() -> usagetally.BetaUsage:
        acc = UsageAccumulator()
        for chunk in chunks:
            acc.feed(chunk)
        return acc.finish()

    return run


def by_sse(data: bytes) -> Callable[[], usagetally.BetaUsage]:
    def run() -> usagetally.BetaUsage:
        acc = UsageAccumulator()
        for event in SSEDecoder().feed(data):
            acc.feed_sse(event.event, event.data)
        return acc.finish()

    return run


@pytest.mark.parametrize("spaced", [False, True], ids=["api-form", "spaced-json"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_byte_and_event_path_gives_the_same_answer(name: str, spaced: bool) -> None:
    events, expected = CASES[name]
    data = body(events, spaced=spaced)
    # The padding the API adds to some events, and a passed-over region before the case.
    filler = [("content_block_delta", t.content_block_delta(t.text_delta("x" * 40)))] * 40
    padded = body([events[0], *filler, *events[1:]], spaced=spaced)
    half = len(data) // 2
    for run in (
        by_bytes([data]),
        by_bytes([data[i : i + 1] for i in range(len(data))]),
        by_bytes([data[:half], data[half:]]),
        by_bytes([padded]),
        by_sse(data),
    ):
        assert outcome(run) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_sdk_event_objects_give_the_same_answer(name: str) -> None:
    events, expected = CASES[name]
    async with t.anthropic_client(body(events)) as client:
        stream = await client.beta.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )

        async def run() -> int | str:
            try:
                return (await usagetally.accumulate(stream)).output_tokens
            except UsageError as exc:
                return type(exc).__name__

        assert await run() == expected


def test_passed_over_events_in_the_api_form_are_not_decoded() -> None:
    # The check is on the leading bytes only: a content block with broken JSON after its
    # type is passed over, as before.
    broken = b'event: content_block_delta\ndata: {"type":"content_block_delta", oops\n\n'
    data = body([("message_start", START)]) + broken + body([("message_delta", DELTA)])
    data += body([("message_stop", STOP)])
    assert outcome(by_bytes([data])) == 50
    assert outcome(by_sse(data)) == 50


def test_the_decoder_hands_over_only_events_whose_type_may_differ() -> None:
    keep = ("message_start", "message_delta", "message_stop", "error", "message")
    data = body(
        [
            ("content_block_delta", t.content_block_delta(t.text_delta("a"))),
            ("content_block_delta", DELTA),
            ("ping", DELTA),
            ("ping", t.ping()),
        ]
    )
    for check in (True, False):
        decoder = SSEDecoder(keep=keep, check_type=check, unchecked=("ping",))
        handed = [event.event for event in decoder.feed(data)]
        assert handed == (["content_block_delta"] if check else [])
        assert decoder.events_dispatched == 4
