"""Properties of the SSE decoder, checked with hypothesis against a transcription of the spec.

The oracle below reads a whole stream at once, the way the WHATWG sections are written: decode
it as UTF-8 with replacement, drop one leading BOM, split it at CRLF, LF and CR, interpret each
line. The decoder must agree with it whatever the chunking, with or without ``keep`` (whose
fast path must change nothing), and deliver every event as soon as its blank line is complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import pieces

from usagetally import _sse
from usagetally._errors import EventTooLargeError
from usagetally._sse import ServerSentEvent, SSEDecoder

BOM = b"\xef\xbb\xbf"
BYTE_LINE_END = re.compile(rb"\r\n|\r|\n")
TEXT_LINE_END = re.compile(r"\r\n|\r|\n")
ANTHROPIC_KEEP = frozenset({"message_start", "message_delta", "message_stop", "error", "message"})
KEEPS: list[frozenset[str] | None] = [
    None,
    ANTHROPIC_KEEP,
    frozenset({"message"}),
    frozenset(),
    frozenset({"content_block_delta", "ping"}),
    frozenset({"caf\u00e9", "a:b", " x"}),
]

Dispatched = list[tuple[int, int, ServerSentEvent]]


@dataclass
class Outcome:
    dispatched: Dispatched
    count: int
    last_event_id: str
    retry: int | None
    error: tuple[int | None, int | None] | None  # (event_index, byte_offset) of the size error

    def same_as(self, other: Outcome) -> bool:
        if self.error is not None or other.error is not None:
            # After a size error, only what came before it is specified.
            return (self.dispatched, self.count, self.error) == (
                other.dispatched,
                other.count,
                other.error,
            )
        return self == other


def oracle(
    stream: bytes, *, keep: frozenset[str] | None = None, limit: int | None = None
) -> Outcome:
    start = len(BOM) if stream.startswith(BOM) else 0
    spans = []
    pos = start
    for match in BYTE_LINE_END.finditer(stream, start):
        spans.append((pos, match.end()))
        pos = match.end()
    lines = TEXT_LINE_END.split(stream[start:].decode("utf-8", "replace"))[:-1]
    assert len(lines) == len(spans)  # line endings are ASCII: bytes and text agree

    dispatched: Dispatched = []
    count = 0
    last_id = id_buffer = ""
    retry = block_retry = None
    data: list[str] = []
    event_type = ""
    block_start: int | None = None
    for (line_start, line_end), line in zip(spans, lines, strict=True):
        if not line:
            last_id = id_buffer
            if data:
                event = ServerSentEvent(
                    event=event_type or "message",
                    data="\n".join(data),
                    id=last_id,
                    retry=block_retry,
                )
                if keep is None or event.event in keep:
                    assert block_start is not None
                    dispatched.append((count, block_start, event))
                count += 1
            data, event_type, block_retry, block_start = [], "", None, None
            continue
        if block_start is None:
            block_start = line_start
        if line.startswith(":"):
            pass
        else:
            name, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id" and "\0" not in value:
                id_buffer = value
            elif name == "retry" and value and all(c in "0123456789" for c in value):
                retry = block_retry = int(value)
        if limit is not None and line_end - block_start > limit:
            return Outcome(dispatched, count, last_id, retry, (count, block_start))
    unfinished = block_start if block_start is not None else pos
    is_bom_prefix = stream in (BOM[:1], BOM[:2])  # not yet known to be a line
    if limit is not None and len(stream) - unfinished > limit and not is_bom_prefix:
        return Outcome(dispatched, count, last_id, retry, (count, unfinished))
    return Outcome(dispatched, count, last_id, retry, None)


def run(
    stream: bytes,
    cuts: Sequence[int],
    *,
    keep: frozenset[str] | None = None,
    limit: int | None = None,
) -> Outcome:
    decoder = SSEDecoder(keep=keep, max_event_size=limit)
    got: Dispatched = []
    error = None
    limit_seen: int | None
    try:
        for chunk in pieces(stream, cuts):
            got += decoder._feed(chunk)
        decoder.end()
    except EventTooLargeError as exc:
        error = (exc.event_index, exc.byte_offset)
        limit_seen = exc.limit
    else:
        limit_seen = None
    assert limit_seen in (None, limit)
    return Outcome(got, decoder.events_dispatched, decoder.last_event_id, decoder.retry, error)


@contextmanager
def knobs(
    min_region: int, hold_limit: int, max_names: int, max_cooldown: int = _sse._MAX_COOLDOWN
) -> Iterator[None]:
    # Small values make the fast path's regions, hand-overs, name cache and back-off work on
    # small streams; the defaults are drawn too.
    with (
        mock.patch.object(_sse, "_MIN_REGION", min_region),
        mock.patch.object(_sse, "_HOLD_LIMIT", hold_limit),
        mock.patch.object(_sse, "_MAX_NAMES", max_names),
        mock.patch.object(_sse, "_MAX_COOLDOWN", max_cooldown),
    ):
        yield


# -- streams ------------------------------------------------------------------------------------

NAMES = [
    "content_block_delta",
    "content_block_start",
    "ping",
    "message_start",
    "message_delta",
    "message_stop",
    "error",
    "message",
    "",
    "caf\u00e9",
    "a:b",
    " x",
]
ENDINGS = [b"\n", b"\r\n", b"\r"]

values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12).map(
    lambda text: text.encode()
) | st.sampled_from([b"", b" ", b"\xff", b"\xe2\x82", b"a\x00b", b"\xef\xbb\xbf", b"{}"])
names = st.sampled_from([name.encode() for name in NAMES])


@st.composite
def named_events(draw: st.DrawFn) -> bytes:
    """The fast path's shape: ``event: NAME\\ndata:...\\n\\n``."""
    space = draw(st.sampled_from([b" ", b""]))
    event = draw(st.sampled_from([b"event: ", b"event: ", b"event:"]))  # the last is a near miss
    return event + draw(names) + b"\ndata:" + space + draw(values) + b"\n\n"


@st.composite
def odd_blocks(draw: st.DrawFn) -> bytes:
    """Any block: fields of every kind, comments and unknown fields, any line endings."""
    line = st.one_of(
        st.builds(lambda v: b"data: " + v, values),
        st.sampled_from([b"data", b"data:", b"event", b"id", b"id:", b"retry", b":", b"Data: x"]),
        st.builds(lambda n: b"event: " + n, names),
        st.builds(lambda v: b"id: " + v, values),
        st.builds(lambda v: b"retry: " + v, st.sampled_from([b"5", b"007", b"+5", b" 5", b"x"])),
        st.builds(lambda v: b": " + v, values),
        st.builds(lambda v: b"foo: " + v, values),
    )
    lines = draw(st.lists(st.tuples(line, st.sampled_from(ENDINGS)), min_size=1, max_size=5))
    return b"".join(text + ending for text, ending in lines) + draw(st.sampled_from(ENDINGS))


tricky_blocks = st.sampled_from(
    [
        b"event: content_block_delta\ndata: x\nevent: message_delta\n\n",
        b"event: message_delta\ndata: x\nevent: content_block_delta\n\n",
        b"event: content_block_delta\ndata: x\nid: 7\n\n",
        b"event: ping\ndata: x\ndata: y\n\n",
        b"event: ping\n\n",
        b"event: ping\ndata\n\n",
        b"event: ping\ndata: x\n\r",
        b"event: ping\r\ndata: x\r\n\r\n",
        b"\n\n\n",
        b"\r\n\r\n",
        b"\r",
    ]
)
junk = st.binary(max_size=6)

# Blocks made of the fast path's own lines in the wrong order or number: regions holding them
# must not pass the fast path's counting check.
NEAR_MISS_LINES = [b"event: a", b"event: ping", b"event: message_stop", b"data: 1", b"data:"]
near_misses = st.lists(
    st.sampled_from([*NEAR_MISS_LINES, b"", b"id: 5", b": c", b"retry: 5"]),
    min_size=1,
    max_size=7,
).map(lambda lines: b"\n".join(lines) + b"\n\n")

parts = st.one_of(named_events(), named_events(), odd_blocks(), tricky_blocks, near_misses, junk)


@st.composite
def streams(draw: st.DrawFn, max_parts: int = 25) -> bytes:
    head = draw(st.sampled_from([b"", b"", BOM, BOM + BOM, BOM[:2]]))
    body = b"".join(draw(st.lists(parts, max_size=max_parts)))
    tail = draw(st.sampled_from([b"", b""]) | named_events() | parts)
    stream = head + body + tail[: draw(st.integers(0, len(tail)))]  # often an unfinished end
    cut = draw(st.integers(0, min(len(stream), 8)))
    return stream[: len(stream) - cut]


@st.composite
def chunkings(draw: st.DrawFn, stream: bytes) -> list[int]:
    return draw(st.lists(st.integers(0, len(stream)), max_size=24))


@st.composite
def anthropic_streams(draw: st.DrawFn) -> bytes:
    """Long streams of named events with a few odd blocks, like a real response."""
    delta = draw(named_events())
    common = st.sampled_from([delta, b"event: a\ndata: 1\n\n", b"event: ping\ndata: {}\n\n"])
    return b"".join(draw(st.lists(st.one_of(common, common, parts), min_size=20, max_size=200)))


ADVERSARIAL = [
    # Each is a region that the counts of a weaker check would take for two or three events.
    b"event: a\ndata: 1\nid: 5\nevent: a\ndata: 2\n\n",
    b"event: a\ndata: 1\nid: 5\n\nevent: a\ndata: 2\n\n",
    b"event: a\n\nevent: a\ndata: 1\ndata: 2\n\n",
    b"event: a\ndata: 1\nevent: a\ndata: 2\n\n\n\n",
    b"event: a\ndata: 1\n\n\nevent: a\ndata: 2\n\n",
    b"event: a\ndata: 1\n\n\n\n\nevent: a\ndata: 2\n\n",
    b"event: a\ndata: 1\n: c\nevent: a\ndata: 2\n\n",
    b"event: a\ndata: 1\nevent: message_stop\ndata: 2\n\nevent: a\n\n",
    b"event: a\ndata: 1\n\nevent: message_stop\ndata: 2\n\n",
    b"event: a\ndata: 1\n\nevent: a\ndata: 2\nevent: message_stop\n\n",
    b"event: a\ndata: 1\n\nevent: \ndata: 2\n\n",
    b"event: a\ndata: 1\n\nevent: caf\xc3\xa9\ndata: 2\n\n",
    b"event: a\ndata: 1\n\nevent: a\rdata: 2\n\n",
    b"event: a\ndata: 1\n\nevent:a\ndata: 2\n\n",
    b"event: a\ndata: 1\n\nevent: a\ndata 2\n\n",
    b"event: a\ndata: 1\n\nevent: a\nid: 1\ndata: 2\n\n",
    b"event: a\ndata: 1\n\nevent: a\ndata: 2\n\nevent: b\ndata: 3\n",
    b"event:message_stop\ndata: 2\n\nevent: a\ndata: 1\n\n",
    b"event:a\ndata: 1\n\nevent: a\ndata: 2\n\n",
    b"event: message_stop\ndata: 2\n\nevent: a\ndata: 1\n\n",
]


# -- properties -------------------------------------------------------------------------------

knob_values = st.tuples(
    st.sampled_from([_sse._MIN_REGION, 0, 1, 40]),
    st.sampled_from([_sse._HOLD_LIMIT, _sse._HOLD_LIMIT, 0, 10]),
    st.sampled_from([_sse._MAX_NAMES, 0, 1]),
    st.sampled_from([_sse._MAX_COOLDOWN, 0, 2]),
)
limits = st.none() | st.integers(0, 48) | st.integers(0, 160)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), keep=st.sampled_from(KEEPS), limit=limits, tuning=knob_values)
def test_decoder_agrees_with_the_spec(
    data: st.DataObject,
    keep: frozenset[str] | None,
    limit: int | None,
    tuning: tuple[int, int, int, int],
) -> None:
    stream = data.draw(streams())
    cuts = data.draw(chunkings(stream))
    with knobs(*tuning):
        got = run(stream, cuts, keep=keep, limit=limit)
    expected = oracle(stream, keep=keep, limit=limit)
    assert got.same_as(expected), (got, expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), keep=st.sampled_from(KEEPS[1:]), limit=limits, tuning=knob_values)
def test_keep_is_the_same_as_filtering_afterwards(
    data: st.DataObject,
    keep: frozenset[str],
    limit: int | None,
    tuning: tuple[int, int, int, int],
) -> None:
    stream = data.draw(st.one_of(streams(), anthropic_streams()))
    cuts = data.draw(chunkings(stream))
    other_cuts = data.draw(chunkings(stream))
    everything = run(stream, other_cuts, limit=limit)
    with knobs(*tuning):
        filtered = run(stream, cuts, keep=keep, limit=limit)
    everything.dispatched = [item for item in everything.dispatched if item[2].event in keep]
    assert filtered.same_as(everything), (filtered, everything)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=anthropic_streams(),
    keep=st.sampled_from(KEEPS),
    size=st.sampled_from([1, 7, 64, 500, 4096, 65536]),
)
def test_long_streams_in_fixed_chunks(
    stream: bytes, keep: frozenset[str] | None, size: int
) -> None:
    got = run(stream, range(size, len(stream), size), keep=keep)
    assert got.same_as(oracle(stream, keep=keep))


@settings(max_examples=150, deadline=None)
@given(stream=streams(max_parts=8), keep=st.sampled_from(KEEPS))
def test_events_come_out_as_soon_as_their_blank_line_is_complete(
    stream: bytes, keep: frozenset[str] | None
) -> None:
    decoder = SSEDecoder(keep=keep)
    got: Dispatched = []
    for end in range(1, len(stream) + 1):
        got += decoder._feed(stream[end - 1 : end])
        assert got == oracle(stream[:end], keep=keep).dispatched


@pytest.mark.parametrize("block", ADVERSARIAL)
@pytest.mark.parametrize("min_region", [_sse._MIN_REGION, 0, 40])
@pytest.mark.parametrize("keep", [ANTHROPIC_KEEP, frozenset({"message"})])
def test_fast_path_regions_reject_near_misses(
    block: bytes, min_region: int, keep: frozenset[str]
) -> None:
    filler = b"event: a\ndata: 1\n\n"
    for before, after in [(0, 0), (1, 0), (0, 1), (3, 3), (40, 40)]:
        stream = filler * before + block + filler * after
        expected = oracle(stream, keep=keep)
        for size in (1, 5, 64, len(stream)):
            cuts = range(size, len(stream), size)
            with knobs(min_region, _sse._HOLD_LIMIT, _sse._MAX_NAMES):
                got = run(stream, cuts, keep=keep)
            assert got == expected, (before, after, size)
            for limit in (20, 30):
                with knobs(min_region, _sse._HOLD_LIMIT, _sse._MAX_NAMES):
                    got = run(stream, cuts, keep=keep, limit=limit)
                assert got.same_as(oracle(stream, keep=keep, limit=limit))


# -- the vectors, read by the oracle --------------------------------------------------------------


def vector_cases() -> list[tuple[str, bytes, list[ServerSentEvent], str, int | None]]:
    cases = []
    for path in sorted((Path(__file__).parent / "sse_vectors").glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            if "input" in raw:
                stream = raw["input"].encode("utf-8", "surrogatepass")
            else:
                stream = raw["input_latin1"].encode("latin-1")
            events = [ServerSentEvent(**event) for event in raw["events"]]
            cases.append((raw["name"], stream, events, raw["last_event_id"], raw["retry"]))
    return cases


VECTOR_CASES = vector_cases()


@pytest.mark.parametrize(
    ("stream", "events", "last_event_id", "retry"),
    [case[1:] for case in VECTOR_CASES],
    ids=[case[0] for case in VECTOR_CASES],
)
def test_vectors_agree_with_the_oracle(
    stream: bytes, events: list[ServerSentEvent], last_event_id: str, retry: int | None
) -> None:
    # Two independent statements of the spec: the hand-written vectors and the oracle. The
    # decoder's offsets in the vector replays are checked against the oracle's here.
    expected = oracle(stream)
    assert [event for _, _, event in expected.dispatched] == events
    assert (expected.last_event_id, expected.retry) == (last_event_id, retry)
    assert run(stream, []) == expected
    for keep in KEEPS:
        decoder = SSEDecoder(keep=keep)
        dispatched: Dispatched = []
        for end in range(1, len(stream) + 1):  # byte by byte: each event as soon as complete
            dispatched += decoder._feed(stream[end - 1 : end])
            assert dispatched == oracle(stream[:end], keep=keep).dispatched
