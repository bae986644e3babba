"""Tests of the SSE decoder: conformance vectors, then the decoder's own promises.

README of the vectors (tests/sse_vectors/*.json): one file per group, each
``{"group": str, "vectors": [...]}``. A vector has ``name``; ``rule``, the rule of the WHATWG
"Parsing / Interpreting an event stream" sections it checks; its input as ``input`` (text,
fed as its UTF-8 encoding) or ``input_latin1`` (each character U+0000..U+00FF stands for one
byte, for invalid UTF-8 and pieces of a BOM); ``events``, the expected events in order, each
with ``event``, ``data``, ``id`` and ``retry``; and ``last_event_id`` and ``retry``, the
decoder's values at the end. Each vector is replayed whole, one byte at a time, at every
two-way split and at random splits, each time with ``keep=None`` and with several keep sets.
"""

from __future__ import annotations

import ast
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import pieces

from usagetally._errors import EventTooLargeError, LocalUsageError
from usagetally._sse import ServerSentEvent, SSEDecoder

VECTOR_DIR = Path(__file__).parent / "sse_vectors"
ANTHROPIC_KEEP = frozenset({"message_start", "message_delta", "message_stop", "error", "message"})

Dispatched = list[tuple[int, int, ServerSentEvent]]


@dataclass(frozen=True)
class Vector:
    group: str
    name: str
    rule: str
    stream: bytes
    events: tuple[ServerSentEvent, ...]
    last_event_id: str
    retry: int | None


def load_vectors() -> list[Vector]:
    vectors = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for raw in doc["vectors"]:
            if "input" in raw:
                stream = raw["input"].encode("utf-8", "surrogatepass")
            else:
                stream = raw["input_latin1"].encode("latin-1")
            events = tuple(
                ServerSentEvent(event=e["event"], data=e["data"], id=e["id"], retry=e["retry"])
                for e in raw["events"]
            )
            vectors.append(
                Vector(
                    group=doc["group"],
                    name=raw["name"],
                    rule=raw["rule"],
                    stream=stream,
                    events=events,
                    last_event_id=raw["last_event_id"],
                    retry=raw["retry"],
                )
            )
    return vectors


VECTORS = load_vectors()


def is_pending(decoder: SSEDecoder) -> bool:
    return decoder.pending  # a call, so that mypy does not narrow the property between asserts


def replay(
    stream: bytes, cuts: Sequence[int], keep: frozenset[str] | None = None
) -> tuple[Dispatched, SSEDecoder]:
    decoder = SSEDecoder(keep=keep)
    got: Dispatched = []
    for chunk in pieces(stream, cuts):
        got.extend(decoder._feed(chunk))
    decoder.end()
    return got, decoder


def keep_sets(vector: Vector) -> list[frozenset[str] | None]:
    types = sorted({e.event for e in vector.events})
    return [None, frozenset(), frozenset({"message"}), ANTHROPIC_KEEP, frozenset(types[::2])]


def cut_sets(vector: Vector, mode: str) -> list[list[int]]:
    n = len(vector.stream)
    if mode == "whole":
        return [[]]
    if mode == "bytewise":
        return [list(range(1, n))]
    if mode == "two-way":
        return [[i] for i in range(n + 1)]
    rng = random.Random(vector.name)
    return [sorted(rng.sample(range(n + 1), rng.randint(1, max(1, n // 3)))) for _ in range(40)]


@pytest.mark.parametrize("mode", ["whole", "bytewise", "two-way", "random"])
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_vector(vector: Vector, mode: str) -> None:
    reference, _ = replay(vector.stream, [])
    offsets = [offset for _, offset, _ in reference]
    for keep in keep_sets(vector):
        wanted = [
            (i, offsets[i], e)
            for i, e in enumerate(vector.events)
            if keep is None or e.event in keep
        ]
        for cuts in cut_sets(vector, mode):
            got, decoder = replay(vector.stream, cuts, keep)
            assert [e for _, _, e in got] == [e for _, _, e in wanted], (keep, cuts)
            assert got == wanted, (keep, cuts)
            assert decoder.events_dispatched == len(vector.events)
            assert decoder.last_event_id == vector.last_event_id
            assert decoder.retry == vector.retry
            assert decoder.bytes_fed == len(vector.stream)
            assert not is_pending(decoder)


def test_vector_inventory() -> None:
    assert len(VECTORS) >= 60
    assert len({v.name for v in VECTORS}) == len(VECTORS)
    assert all(v.rule for v in VECTORS)
    assert len({v.group for v in VECTORS}) >= 10


# -- latency: an event comes out as soon as its blank line is complete ------------------------


def test_event_is_dispatched_by_a_chunk_ending_in_cr_cr() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [ServerSentEvent(data="a")]
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF, it is no extra blank line
    assert decoder.feed(b"data: b\n\n") == [ServerSentEvent(data="b")]


def test_lf_after_a_chunk_ending_in_cr_is_not_a_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent(data="a\nb")]


def test_cr_without_lf_in_the_next_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"data: b\r\r") == [ServerSentEvent(data="a\nb")]


def test_blank_line_in_its_own_chunk() -> None:
    decoder = SSEDecoder(keep={"message"})
    assert decoder.feed(b"event: x\ndata: a\n") == []
    assert decoder.feed(b"\n") == []
    assert decoder.events_dispatched == 1
    assert decoder.feed(b"data: b\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data="b")]


def test_many_events_in_one_chunk() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(5000))
    events = SSEDecoder().feed(stream)
    assert [e.data for e in events] == [str(i) for i in range(5000)]
    assert events[-1].id == "4999"


# -- BOM --------------------------------------------------------------------------------------


def test_bom_split_across_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert is_pending(decoder)
    assert decoder.feed(b"\xbb") == []
    got = decoder._feed(b"\xbfdata: a\n\n")
    assert got == [(0, 3, ServerSentEvent(data="a"))]
    assert decoder.bytes_fed == 12


def test_second_bom_split_across_chunks_is_kept() -> None:
    decoder = SSEDecoder()
    events = []
    for chunk in [b"\xef\xbb", b"\xbf\xef", b"\xbb\xbfdata: a\n\n", b"data: b\n\n"]:
        events += decoder.feed(chunk)
    assert events == [ServerSentEvent(data="b")]
    assert decoder.events_dispatched == 1


# -- offsets and indices ----------------------------------------------------------------------

OFFSET_STREAM = (
    b"\xef\xbb\xbf: c\n\n"  # 0..7: BOM, a comment block, its blank line
    b"event: x\ndata: 1\n\n\n\n"  # 8..27: event 0 at 8, then two more blank lines
    b": note\nid: 5\ndata: 2\n\n"  # 28..49: event 1 at 28 (its comment included)
    b"event: content_block_delta\ndata: 3\n\n"  # 50..85: event 2 at 50
    b"\r\ndata: 4\r\n\r\n"  # 86..99: a CRLF blank line, event 3 at 88
)


def test_offsets_and_indices() -> None:
    got, decoder = replay(OFFSET_STREAM, [])
    assert [(i, offset, e.data) for i, offset, e in got] == [
        (0, 8, "1"),
        (1, 28, "2"),
        (2, 50, "3"),
        (3, 88, "4"),
    ]
    assert decoder.events_dispatched == 4
    assert decoder.last_event_id == "5"


@pytest.mark.parametrize("keep", [{"message"}, {"x", "content_block_delta"}, set()])
def test_offsets_and_indices_with_keep(keep: set[str]) -> None:
    everything, _ = replay(OFFSET_STREAM, [])
    wanted = [item for item in everything if item[2].event in keep]
    for size in (1, 2, 3, 7, len(OFFSET_STREAM)):
        cuts = list(range(size, len(OFFSET_STREAM), size))
        got, decoder = replay(OFFSET_STREAM, cuts, frozenset(keep))
        assert got == wanted
        assert decoder.events_dispatched == 4


# -- max_event_size ---------------------------------------------------------------------------


def test_long_line_in_small_chunks_raises_early() -> None:
    decoder = SSEDecoder(max_event_size=100)
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent(data="a")]  # event 0, 9 bytes
    decoder.feed(b"event: x\n")
    decoder.feed(b"data: ")
    block = 15
    with pytest.raises(EventTooLargeError) as info:
        for _ in range(20):
            decoder.feed(b"x" * 10)
            block += 10
    assert block == 95  # the chunk that took the unfinished line to 105 bytes raised
    error = info.value
    assert (error.limit, error.event_index, error.byte_offset) == (100, 1, 9)
    assert "event 1" in str(error)
    assert "byte 9" in str(error)


@pytest.mark.parametrize("keep", [None, frozenset({"message"}), ANTHROPIC_KEEP])
@pytest.mark.parametrize("size", [1, 3, 64, 4096])
def test_size_limit_is_the_same_for_kept_and_passed_over_events(
    keep: frozenset[str] | None, size: int
) -> None:
    small = b"event: content_block_delta\ndata: 0123456789\n\n"  # 45 bytes, 44 counted
    stream = small * 3 + b"event: content_block_delta\ndata: " + b"y" * 100 + b"\n\n"
    decoder = SSEDecoder(max_event_size=44, keep=keep)
    with pytest.raises(EventTooLargeError) as info:
        for chunk in pieces(stream, range(size, len(stream), size)):
            decoder.feed(chunk)
        decoder.end()
    assert (info.value.event_index, info.value.byte_offset) == (3, 3 * 45)
    assert decoder.events_dispatched == 3


def test_size_counts_line_endings_but_not_the_blank_line() -> None:
    assert SSEDecoder(max_event_size=10).feed(b"data: abc\n\n") == [ServerSentEvent(data="abc")]
    assert SSEDecoder(max_event_size=11).feed(b"data: abc\r\n\r\n") == [ServerSentEvent(data="abc")]
    with pytest.raises(EventTooLargeError):
        SSEDecoder(max_event_size=9).feed(b"data: abc\n\n")
    decoder = SSEDecoder(max_event_size=10)
    decoder.feed(b"data: abc\r")
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"\n\r\n")  # the LF of the CRLF belongs to the line


@pytest.mark.parametrize("cut", [11, 14, 15, 20, 23, 24])
def test_size_limit_applies_to_an_unfinished_event_at_a_chunk_end(cut: int) -> None:
    stream = b"event: abcdef\ndata: xyz\n\n"
    for keep in (None, frozenset({"message"})):
        decoder = SSEDecoder(keep=keep, max_event_size=10)
        with pytest.raises(EventTooLargeError) as info:
            decoder.feed(stream[:cut])
            decoder.end()
        assert (info.value.event_index, info.value.byte_offset) == (0, 0)


def test_size_limit_applies_to_blocks_without_data() -> None:
    decoder = SSEDecoder(max_event_size=20)
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(b": " + b"c" * 30 + b"\n\n")
    assert (info.value.event_index, info.value.byte_offset) == (0, 0)


def test_size_error_after_events_of_the_same_chunk_comes_next() -> None:
    decoder = SSEDecoder(max_event_size=20)
    chunk = b"data: a\n\ndata: b\n\n: " + b"c" * 30
    assert decoder.feed(chunk) == [ServerSentEvent(data="a"), ServerSentEvent(data="b")]
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(b"\n\n")
    assert (info.value.event_index, info.value.byte_offset) == (2, 18)
    with pytest.raises(EventTooLargeError) as again:
        decoder.end()
    assert again.value is info.value


def test_size_error_is_sticky() -> None:
    decoder = SSEDecoder(max_event_size=5)
    with pytest.raises(EventTooLargeError) as info:
        decoder.feed(b"data: abcdef")
    with pytest.raises(EventTooLargeError) as again:
        decoder.feed(b"\n\n")
    assert again.value is info.value


def test_no_limit_accepts_a_large_line() -> None:
    line = b"data: " + b"x" * (1 << 20) + b"\n\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in pieces(line, range(1024, len(line), 1024)):
        events += decoder.feed(chunk)
    assert len(events) == 1
    assert events[0].data == "x" * (1 << 20)


def test_long_data_lines_are_joined() -> None:
    stream = b"data: " + b"a" * 100_000 + b"\ndata: \xe2\x82\xac" + b"b" * 70_000 + b"\n\n"
    for size in (999, 65536, len(stream)):
        got, _ = replay(stream, range(size, len(stream), size))
        assert [e.data for _, _, e in got] == ["a" * 100_000 + "\n\u20ac" + "b" * 70_000]


def test_bad_max_event_size() -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        SSEDecoder(max_event_size=-1)


# -- end of stream ----------------------------------------------------------------------------


def test_end_drops_the_unfinished_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nid: 3\ndata: b\n") == [ServerSentEvent(data="a")]
    assert is_pending(decoder)
    decoder.end()
    assert not is_pending(decoder)
    assert decoder.last_event_id == ""
    assert decoder.events_dispatched == 1
    decoder.end()  # a second end() does nothing
    with pytest.raises(LocalUsageError, match="after end"):
        decoder.feed(b"\n")


def test_end_drops_a_block_held_by_the_fast_path() -> None:
    decoder = SSEDecoder(keep={"message"})
    assert decoder.feed(b"event: content_block_delta\ndata: x\n") == []
    assert is_pending(decoder)
    decoder.end()
    assert not is_pending(decoder)
    assert decoder.events_dispatched == 0


def test_pending() -> None:
    decoder = SSEDecoder()
    assert not is_pending(decoder)
    decoder.feed(b": comment\n")
    assert is_pending(decoder)
    decoder.feed(b"\n")
    assert not is_pending(decoder)
    decoder.feed(b"data: a\r")
    assert is_pending(decoder)
    decoder.feed(b"\r")
    assert not is_pending(decoder)


# -- unicode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001f600"])
def test_character_split_at_every_byte(char: str) -> None:
    stream = f"event: {char}\nid: {char}\ndata: {char}\n\n".encode()
    for cut in range(len(stream) + 1):
        got, _ = replay(stream, [cut])
        assert [e for _, _, e in got] == [ServerSentEvent(event=char, data=char, id=char)]


def test_invalid_utf8_split_across_chunks() -> None:
    stream = b"data: \xe2\x82\xac\xe2\x82\n\n"
    for cuts in ([], [7], [8], [9], [10], list(range(1, len(stream)))):
        got, _ = replay(stream, cuts)
        assert [e.data for _, _, e in got] == ["\u20ac\ufffd"]


# -- API details ------------------------------------------------------------------------------


def test_event_defaults_and_json() -> None:
    event = ServerSentEvent(data='{"a": [1, 2]}')
    assert (event.event, event.id, event.retry) == ("message", "", None)
    assert event.json() == {"a": [1, 2]}
    with pytest.raises(json.JSONDecodeError):
        ServerSentEvent(data="{").json()


def test_retry_takes_effect_when_read() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 30\n")
    assert decoder.retry == 30
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent(data="a", retry=30)]


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no int() digit limit")
def test_retry_too_long_for_int_is_ignored() -> None:
    digits = b"9" * (sys.get_int_max_str_digits() + 1)
    zeros = b"0" * (sys.get_int_max_str_digits() + 1)
    decoder = SSEDecoder()
    events = decoder.feed(b"retry: 5\nretry: " + digits + b"\ndata: a\n\n")
    assert events == [ServerSentEvent(data="a", retry=5)]
    assert decoder.feed(b"retry: " + zeros + b"7\ndata: b\n\n") == [
        ServerSentEvent(data="b", retry=7)
    ]


def test_keep_must_not_be_a_string() -> None:
    with pytest.raises(TypeError, match="string"):
        SSEDecoder(keep="message")


def test_bytes_like_chunks() -> None:
    decoder = SSEDecoder(keep={"message"})
    events = decoder.feed(bytearray(b"event: a\ndata: 1\n\n"))  # type: ignore[arg-type]
    events += decoder.feed(memoryview(b"data: 2\n\n"))  # type: ignore[arg-type]
    assert events == [ServerSentEvent(data="2")]
    assert decoder.events_dispatched == 2


def test_empty_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    decoder.feed(b"data: a\r")
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\r") == [ServerSentEvent(data="a")]


@pytest.mark.parametrize(
    ("first", "rest", "wanted"),
    [
        (
            b"event: content_block_delta\ndata: 1\n\nevent: message_stop\ndata: 2\n\n",
            b"event: content_block_delta\ndata: 3\n\n",
            [1, 2],
        ),
        (
            b"event: content_block_delta\ndata: 1\n\nevent: message_stop\ndata: 2\n\nevent: c",
            b"ontent_block_delta\ndata: 3\n\n",
            [1, 2],
        ),
        (
            b"event: message_stop\ndata: 2\n\nevent: content_block_delta\ndata: 3",
            b"\n\n",
            [0, 1],
        ),
    ],
)
def test_keep_can_be_dropped_between_chunks(first: bytes, rest: bytes, wanted: list[int]) -> None:
    # The accumulator sets _keep to None after message_stop, to see every later event; an
    # event is filtered by the keep in force when its blank line arrives.
    everything, _ = replay(first + rest, [])
    decoder = SSEDecoder(keep=ANTHROPIC_KEEP)
    got = decoder._feed(first)
    decoder._keep = None
    got += decoder._feed(rest)
    assert got == [everything[i] for i in wanted]


def test_keep_can_be_changed_between_chunks() -> None:
    decoder = SSEDecoder(keep={"message"})
    assert decoder.feed(b"event: ping\ndata: 1\n\n" * 40) == []
    decoder._keep = {"ping"}
    assert (
        decoder.feed(b"event: ping\ndata: 2\n\n" * 40)
        == [ServerSentEvent(event="ping", data="2")] * 40
    )
    assert decoder.events_dispatched == 80


def test_module_imports_nothing_but_stdlib_attrs_and_errors() -> None:
    source = Path(__file__).parent.parent / "src" / "usagetally" / "_sse.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    allowed = {"__future__", "json", "re", "collections.abc", "typing", "attrs", "._errors"}
    assert imported <= allowed
