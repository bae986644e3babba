"""Every framing gives the events of its content: the pass-over paths against the line parser.

The decoder passes over whole events without reading them line by line in more than one
framing (``_sse.py``: ``skip`` for ``event: NAME\\ndata:...\\n\\n`` and ``skip_framed`` for
CRLF and CR line endings and for blocks with ``id`` and comment lines). Here each framing of
the same stream, at many chunkings, is read by a decoder driven as the accumulator drives it
and compared with a decoder that keeps everything (the line parser alone, which the WHATWG
conformance tests hold to the spec), filtered by the keep rule: the same events with the
same indices, offsets, data and ids, the same count and the same last event ID.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NAMES, expected, split_at, transcript

from usagetally import EventTooLargeError, SSEDecoder, UsageAccumulator, converter
from usagetally.testing import all_two_way_splits, chunks_fixed

KEPT = frozenset({"message_start", "message_delta", "message_stop", "error", "message"})
PASSED = ("content_block_delta", "ping", "content_block_start", "content_block_stop")
Event = tuple[int, int, str, str, str]


def blocks(seed: int = 0, deltas: int = 120) -> list[tuple[str | None, str]]:
    """(name, data) of a stream: kept events among many passed-over ones of several names."""
    rng = random.Random(seed)
    out: list[tuple[str | None, str]] = [("message_start", '{"type":"message_start"}')]
    for i in range(deltas):
        name = rng.choice(["content_block_delta"] * 6 + ["ping", "content_block_start"])
        data = {"type": name, "i": i, "text": "x" * rng.randrange(0, 300)}
        if name == "ping":
            data = {"type": "ping"}
        text = json.dumps(data, separators=(",", ":") if name != "ping" else (", ", ": "))
        out.append((name, text))
        if i == deltas // 2:
            # A retyped event (its data says another type) and a kept one mid-stream.
            out.append(("content_block_delta", '{"type":"message_delta","x":1}'))
            out.append(("message_delta", '{"type":"message_delta","mid":true}'))
    out.append(("message_delta", '{"type":"message_delta"}'))
    out.append(("message_stop", '{"type":"message_stop"}'))
    out.append(("ping", '{"type": "ping"}'))
    return out


def frame(
    events: list[tuple[str | None, str]],
    eol: str = "\n",
    extra: Callable[[int], list[str]] = lambda i: [],
    after: Callable[[int], list[str]] = lambda i: [],
) -> bytes:
    """The events as SSE bytes: line ending ``eol``, lines ``extra(i)`` before each block's
    event line and ``after(i)`` after its data line."""
    out = []
    for i, (name, data) in enumerate(events):
        lines = [*extra(i)]
        if name is not None:
            lines.append(f"event: {name}")
        lines.append(f"data: {data}")
        lines += after(i)
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode()


FRAMINGS: dict[str, Callable[[list[tuple[str | None, str]]], bytes]] = {
    "lf": lambda e: frame(e),
    "crlf": lambda e: frame(e, "\r\n"),
    "cr": lambda e: frame(e, "\r"),
    "id": lambda e: frame(e, extra=lambda i: [f"id: {i}"]),
    "id without space": lambda e: frame(e, extra=lambda i: [f"id:{i}"]),
    "comment": lambda e: frame(e, extra=lambda i: [": keep-alive"]),
    "comment after data": lambda e: frame(e, after=lambda i: [":"]),
    "id and comment, crlf": lambda e: frame(
        e, "\r\n", extra=lambda i: [f": {i}", f"id: {i * 7}"], after=lambda i: ["id: last"]
    ),
    "id and comment, cr": lambda e: frame(e, "\r", extra=lambda i: [f"id: {i}", ":"]),
    "some ids": lambda e: frame(e, extra=lambda i: [f"id: {i}"] if i % 5 == 0 else []),
    "an id with NUL": lambda e: frame(e, extra=lambda i: ["id: a\0b"] if i == 9 else [f"id:{i}"]),
    "retry lines": lambda e: frame(e, extra=lambda i: ["retry: 10"] if i % 3 == 0 else []),
    "a crlf stream with one lf": lambda e: frame(e, "\r\n").replace(b"\r\n\r\n", b"\n\n", 1),
    # A kept event framed with LF inside a CRLF stream: counting CRLFs alone would miss it.
    "a crlf stream hiding an lf event": lambda e: frame(e, "\r\n").replace(
        b'\r\n\r\nevent: message_delta\r\ndata: {"type":"message_delta","mid":true}\r\n',
        b'\n\nevent: message_delta\ndata: {"type":"message_delta","mid":true}\r\n',
    ),
    "a cr stream with one crlf": lambda e: frame(e, "\r").replace(b"\r\r", b"\r\n\r", 3),
}


def reference(chunks: list[bytes], **options: Any) -> tuple[list[Event], int, str]:
    # Everything, through the line parser, filtered as the keep rules say (check_type: an
    # event of another type is kept when its data does not begin with its own type; every
    # event after message_stop, as the driver widens keep there).
    decoder = SSEDecoder(**options)
    out: list[Event] = []
    stopped = False
    for chunk in chunks:
        for i, o, e in decoder.feed_located(chunk):
            typed = e.data.startswith('{"type":"' + e.event + '"') or e.event == "ping"
            if stopped or e.event in KEPT or not typed:
                out.append((i, o, e.event, e.data, e.id))
            stopped = stopped or e.event == "message_stop"
    return out, decoder.events_dispatched, decoder.last_event_id


def driven(chunks: list[bytes], **options: Any) -> tuple[list[Event], int, str]:
    # As the accumulator drives it: read, widen keep after message_stop, resume while paused.
    decoder = SSEDecoder(
        keep=KEPT,
        check_type=True,
        unchecked=("ping",),
        pass_over=PASSED,
        pause_after=("message_stop",),
        **options,
    )
    out: list[Event] = []
    for chunk in chunks:
        got = decoder.feed_located(chunk)
        while True:
            for i, o, e in got:
                out.append((i, o, e.event, e.data, e.id))
                if e.event == "message_stop":
                    decoder.keep = None
            if not decoder.paused:
                break
            got = decoder.resume()
    return out, decoder.events_dispatched, decoder.last_event_id


def chunkings(data: bytes, seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    out = [[data], chunks_fixed(data, 7), chunks_fixed(data, 64), chunks_fixed(data, 4096)]
    for _ in range(4):
        cuts = [rng.randrange(len(data)) for _ in range(rng.choice([1, 5, 40]))]
        out.append(split_at(data, cuts))
    return out


@pytest.mark.parametrize("how", list(FRAMINGS))
def test_every_framing_gives_the_events_the_line_parser_gives(how: str) -> None:
    data = FRAMINGS[how](blocks())
    assert data != FRAMINGS["lf"](blocks()) or how == "lf"
    expected = reference([data])
    assert len(expected[0]) >= 5  # the kept events, the retyped one and the tail
    for chunks in chunkings(data, seed=len(how)):
        assert driven(chunks) == expected, how
    assert reference(chunks_fixed(data, 1)) == expected  # the reference itself is stable


def test_the_last_event_id_is_that_of_the_last_passed_over_id_line() -> None:
    events = [*blocks(deltas=50)[:-3]]  # up to the content, without the kept tail
    data = frame(events, "\r\n", extra=lambda i: [f"id: n{i}"])
    decoder = SSEDecoder(keep=KEPT, check_type=True, pass_over=PASSED)
    decoder.feed(data)
    assert decoder.last_event_id == f"n{len(events) - 1}"
    tail = decoder.feed(b"event: message_stop\r\ndata: {}\r\n\r\n")
    assert [e.id for e in tail] == [f"n{len(events) - 1}"]


@pytest.mark.parametrize("how", ["lf", "crlf", "cr", "id", "comment after data"])
def test_every_two_way_split_gives_the_parsers_events(how: str) -> None:
    # A read that stops anywhere (inside a line, between a block's lines, on a CRLF) leaves
    # the decoder's state for the next; each path must leave it as the parser would.
    data = FRAMINGS[how](blocks(deltas=4))
    expected = reference([data])
    for first, second in all_two_way_splits(data):
        assert driven([first, second]) == expected, (how, len(first))


@pytest.mark.parametrize(
    ("eol", "hidden"),
    [("\r\n", "\n"), ("\r\n", "\r"), ("\r", "\n"), ("\r", "\r\n"), ("\n", "\r\n"), ("\n", "\r")],
)
def test_a_kept_event_framed_otherwise_among_passed_over_ones_is_found(
    eol: str, hidden: str
) -> None:
    # Counting one kind of line ending alone would take the odd block for part of a
    # passed-over one: every other line ending in the region must stop the count.
    deltas = [
        ("content_block_delta", f'{{"type":"content_block_delta","i":{i}}}') for i in range(30)
    ]
    head = frame([("message_start", '{"type":"message_start"}'), *deltas], eol)
    odd = frame([("message_delta", '{"type":"message_delta","mid":true}')], hidden)
    tail = frame([*deltas, ("message_delta", '{"type":"message_delta"}')], eol)
    data = head + odd + tail
    expected = reference([data])
    assert '{"type":"message_delta","mid":true}' in [e[3] for e in expected[0]]
    for chunks in chunkings(data, seed=7):
        assert driven(chunks) == expected


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_stray_cr_inside_a_line_is_a_line_end_on_every_path(eol: str) -> None:
    # A lone CR ends a line: here it turns one would-be content block into a message_delta
    # (its event line hidden after the CR), which must be handed over, as the parser does.
    tricky = (
        "event: content_block_delta" + eol
        + 'data: {"type":"content_block_delta"}\revent: message_delta\r'
        + 'data: {"type":"message_delta"}\r\r' + eol + eol
    )  # fmt: skip
    deltas = [
        ("content_block_delta", f'{{"type":"content_block_delta","i":{i}}}') for i in range(9)
    ]
    for extra in ([], ["id: 7"], [": c"]):

        def lines(i: int, extra: list[str] = extra) -> list[str]:
            return extra

        head = frame([("message_start", '{"type":"message_start"}'), *deltas], eol, lines)
        tail = frame([*deltas, ("message_stop", '{"type":"message_stop"}')], eol, lines)
        data = head + "".join(x + eol for x in extra).encode() + tricky.encode() + tail
        expected = reference([data])
        assert "message_delta" in [e[2] for e in expected[0]]
        for chunks in chunkings(data, seed=11):
            assert driven(chunks) == expected, (eol, extra)


@pytest.mark.parametrize("retyped", ["content_block_start", "content_block_stop"])
def test_a_retyped_event_among_a_few_of_other_names_is_found(retyped: str) -> None:
    # The scanner counts the frequent names one by one and, in a region of more than 64 KiB,
    # finds the few others by their common prefix (content_block_st...): a block there of
    # another form must stop it.
    events: list[tuple[str | None, str]] = [("message_start", '{"type":"message_start"}')]
    text = "t" * 400
    for i in range(300):
        events.append(
            ("content_block_delta", f'{{"type":"content_block_delta","i":{i},"t":"{text}"}}')
        )
        if i % 4 == 0:
            events.append(("ping", '{"type": "ping"}'))
        if i % 50 == 0:
            events.append(("content_block_start", '{"type":"content_block_start"}'))
            events.append(("content_block_stop", '{"type":"content_block_stop"}'))
        if i == 150:
            events.append((retyped, '{"type":"message_delta","hidden":true}'))
    events.append(("message_stop", '{"type":"message_stop"}'))
    data = frame(events)
    assert len(data) > 2 * 64 * 1024
    expected = reference([data])
    assert '{"type":"message_delta","hidden":true}' in [e[3] for e in expected[0]]
    for chunks in [*chunkings(data, seed=5), chunks_fixed(data, 2048)]:
        assert driven(chunks) == expected


@pytest.mark.parametrize("how", ["crlf", "cr", "id", "comment"])
def test_max_event_size_applies_to_blocks_passed_over_in_every_framing(how: str) -> None:
    events = blocks(deltas=60)
    big = ("content_block_delta", json.dumps({"type": "content_block_delta", "t": "y" * 5000}))
    events.insert(40, big)
    events = [(n, d.replace(" ", "")) for n, d in events]  # no pings with spaces: same data
    data = FRAMINGS[how](events)
    limit = 4000
    ref = SSEDecoder(max_event_size=limit)
    with pytest.raises(EventTooLargeError) as expected:
        ref.feed(data)
        ref.end()  # events completed before it come first; the error with the next call
    for chunks in chunkings(data, seed=3):
        decoder = SSEDecoder(keep=KEPT, check_type=True, pass_over=PASSED, max_event_size=limit)
        with pytest.raises(EventTooLargeError) as got:
            for chunk in chunks:
                decoder.feed(chunk)
            decoder.end()
        assert (got.value.event_index, got.value.byte_offset) == (
            expected.value.event_index,
            expected.value.byte_offset,
        ), how


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=4),
    st.lists(st.sampled_from(["", "id: 1", "id:", ": c", ":", "retry: 5", "idx: 2"]), max_size=3),
    st.integers(0, 2**16),
)
def test_mixed_line_endings_and_extra_lines_give_the_parsers_events(
    eols: list[str], extras: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    out = []
    for name, data in blocks(seed, deltas=30):
        eol = rng.choice(eols)
        lines = [x for x in extras if x and rng.random() < 0.5]
        lines += [f"event: {name}", f"data: {data}"]
        out.append(eol.join(lines) + eol + rng.choice(eols))
    stream = "".join(out).encode()
    expected = reference([stream])
    for chunks in chunkings(stream, seed)[:5]:
        assert driven(chunks) == expected


@pytest.mark.parametrize("name", NAMES)
def test_every_framing_of_an_example_gives_its_usage(name: str) -> None:
    # The accumulator over each framing of an example, reframed the way a proxy would.
    text = transcript(name).decode()
    framed = {
        "crlf": text.replace("\n", "\r\n"),
        "cr": text.replace("\n", "\r"),
        "id": "".join(f"id: {i}\n{b}\n\n" for i, b in enumerate(text.split("\n\n")) if b),
        "comment": "".join(f": {i}\r\n{b}\r\n\r\n" for i, b in enumerate(text.split("\n\n")) if b),
    }
    for how, body in framed.items():
        raw = (
            body.encode()
            if how != "comment"
            else body.replace("\n", "\r\n").replace("\r\r\n", "\r\n").encode()
        )
        for size in (1, 13, 4096, len(raw)):
            acc = UsageAccumulator()
            for chunk in chunks_fixed(raw, size):
                acc.feed(chunk)
            assert converter.unstructure(acc.finish()) == expected(name), (how, size)
