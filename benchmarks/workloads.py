"""Deterministic Anthropic SSE streams for the benchmarks.

Every workload is valid ``text/event-stream`` as the Messages API sends it (``event: NAME``,
``data: <compact JSON>``, a blank line; UTF-8, non-ASCII text not escaped) and is the same
bytes on every run: text comes from a fixed vocabulary drawn with ``random.Random`` seeded
by a constant. Each workload also knows its final usage in wire form, which the smoke test
compares with what every contender computes.

The 200 MB stream is never held in memory: :func:`big_stream_chunks` builds it chunk by
chunk from a pool of pre-encoded delta events of about 1 MB, reused block after block.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BIG_STREAM_BYTES",
    "LONG_LINE_CHUNK",
    "STREAM_CHUNK",
    "Workload",
    "big_stream_chunks",
    "big_stream_size",
    "big_stream_usage",
    "chunked",
    "compaction",
    "encode",
    "long_line",
    "server_tool_loop",
    "standard_workloads",
    "text_answer",
]

STREAM_CHUNK = 64 * 1024
LONG_LINE_CHUNK = 1024
BIG_STREAM_BYTES = 200 * 1000 * 1000
MODEL = "claude-sonnet-4-6"
SEED = 20260501

Event = dict[str, Any]


@dataclass(frozen=True)
class Workload:
    """One stream, its chunking and its final usage."""

    name: str
    description: str
    data: bytes
    chunk_size: int
    usage: dict[str, Any]
    events: int
    chunks: list[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunks", list(chunked(self.data, self.chunk_size)))


# -- encoding ------------------------------------------------------------------------------


def encode(event: Event) -> bytes:
    """Encode one event as the API does: compact JSON, UTF-8, named by its type."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """Split ``data`` into chunks of ``size`` bytes (the last one shorter)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _rechunk(parts: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-split a sequence of byte strings into chunks of exactly ``size`` (the last shorter).

    Holds at most one part and one chunk at a time.
    """
    pending = b""
    for part in parts:
        start = 0
        if pending:
            need = size - len(pending)
            if len(part) < need:
                pending += part
                continue
            yield pending + part[:need]
            start = need
        end = len(part)
        while start + size <= end:
            yield part[start : start + size]
            start += size
        pending = part[start:]
    if pending:
        yield pending


# -- realistic text ------------------------------------------------------------------------

_VOCABULARY = (
    "the a of to and in is that for it with as on be this are by or from an can which "
    "function value request response stream token usage cache input output model message "
    "server client error retry timeout buffer event field parse return state update count "
    "total iteration compaction summary context window billing invoice migration database "
    "query index schema table column row transaction commit rollback deploy release test "
    "should would could will may might must need use using used make makes made first then "
    "next because however therefore instead also only each every both either whether when "
    "while after before until since once here there where why how what who we you they "
    "Python async await import class def self None True False list dict tuple string bytes"
)
_WORDS = _VOCABULARY.split()
_PUNCT = (".", ",", ":", ";", "?", "!")
_EXTRAS = (
    "\n\n",
    "\n- ",
    "\n```python\n",
    "\n```\n",
    ' "quoted"',
    " `code()`",
    " (see below)",
    " — ",
    " café",
    " naïve",
    " 10\u202f%",
    " ✓",
    " C:\\temp\\out.txt",
    ' {"key": 1}',
)


def _text_pieces(rng: random.Random, count: int) -> list[str]:
    """``count`` text deltas like the API's: one to a few tokens each, a leading space."""
    pieces = []
    words = _WORDS
    for _ in range(count):
        roll = rng.random()
        if roll < 0.06:
            piece = rng.choice(_EXTRAS)
        else:
            piece = "".join(" " + rng.choice(words) for _ in range(rng.randint(1, 4)))
            if roll > 0.9:
                piece += rng.choice(_PUNCT)
        pieces.append(piece)
    return pieces


def _prose(rng: random.Random, size: int) -> str:
    """ASCII prose of exactly ``size`` characters."""
    out: list[str] = []
    length = 0
    while length < size:
        word = " " + rng.choice(_WORDS)
        out.append(word)
        length += len(word)
    return "".join(out)[:size]


# -- event builders ------------------------------------------------------------------------


def _split(total: int) -> dict[str, int]:
    return {"ephemeral_5m_input_tokens": total, "ephemeral_1h_input_tokens": 0}


def _message_start(usage: dict[str, Any], message_id: str) -> Event:
    return {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }


def _start_usage(input_tokens: int, cache_creation: int, cache_read: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": _split(cache_creation),
        "output_tokens": 1,
        "service_tier": "standard",
    }


def _block_start(index: int, block: dict[str, Any]) -> Event:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _text_delta(index: int, text: str) -> Event:
    return _delta(index, {"type": "text_delta", "text": text})


def _block_stop(index: int) -> Event:
    return {"type": "content_block_stop", "index": index}


def _message_delta(usage: dict[str, Any], stop_reason: str = "end_turn") -> Event:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


_PING: Event = {"type": "ping"}
_STOP: Event = {"type": "message_stop"}


def _final_usage(start: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """The documented merge: every field a delta carries overwrites, absent ones stay."""
    usage = dict(start)
    usage.update((k, v) for k, v in delta.items() if v is not None)
    return usage


def _iteration(
    kind: str, input_tokens: int, output_tokens: int, cache_creation: int, cache_read: int
) -> dict[str, Any]:
    return {
        "type": kind,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
    }


def _workload(
    name: str, description: str, events: list[Event], chunk_size: int, usage: dict[str, Any]
) -> Workload:
    return Workload(
        name=name,
        description=description,
        data=b"".join(encode(e) for e in events),
        chunk_size=chunk_size,
        usage=usage,
        events=len(events),
    )


# -- the workloads ---------------------------------------------------------------------------


def text_answer(deltas: int = 20_000, *, seed: int = SEED) -> Workload:
    """A plain text answer of ``deltas`` text deltas, 64 KiB chunks."""
    rng = random.Random(seed)
    start = _start_usage(2841, 1024, 12_000)
    delta_usage = {"output_tokens": deltas + 7}
    events = [_message_start(start, "msg_bench_text"), _PING, _block_start(0, _text_block())]
    events += [_text_delta(0, piece) for piece in _text_pieces(rng, deltas)]
    events += [_block_stop(0), _message_delta(delta_usage), _STOP]
    return _workload(
        f"text-{deltas}",
        f"a text answer of {deltas:,} text deltas",
        events,
        STREAM_CHUNK,
        _final_usage(start, delta_usage),
    )


def tool_heavy(blocks: int = 4, *, chars: int = 120_000, seed: int = SEED) -> Workload:
    """Tool calls: ``blocks`` tool_use blocks whose input streams as 40-character deltas."""
    rng = random.Random(seed + 7)
    start = _start_usage(5_210, 0, 24_000)
    events = [_message_start(start, "msg_bench_tools"), _PING]
    for index in range(blocks):
        tool = {"type": "tool_use", "id": f"toolu_{index:08d}", "name": "write", "input": {}}
        source = json.dumps({"path": f"src/m{index}.py", "content": _prose(rng, chars)})
        events.append(_block_start(index, tool))
        events += [
            _delta(index, {"type": "input_json_delta", "partial_json": source[i : i + 40]})
            for i in range(0, len(source), 40)
        ]
        events.append(_block_stop(index))
    delta_usage = {"output_tokens": len(events) * 3}
    events += [_message_delta(delta_usage, "tool_use"), _STOP]
    return _workload(
        f"tools-{blocks}",
        f"{blocks} tool calls whose input streams as input_json_delta",
        events,
        STREAM_CHUNK,
        _final_usage(start, delta_usage),
    )


def _text_block() -> dict[str, Any]:
    return {"type": "text", "text": ""}


def _search_results(rng: random.Random, turn: int) -> list[dict[str, Any]]:
    results = []
    for k in range(5):
        blob = rng.randbytes(900).hex()  # encrypted content: opaque base64-like text
        results.append(
            {
                "type": "web_search_result",
                "title": f"Result {k} for query {turn}:" + _prose(rng, 40),
                "url": f"https://example.org/{turn}/{k}/{rng.randrange(10**9)}",
                "encrypted_content": blob,
                "page_age": None if k % 2 else f"{k + 1} days ago",
            }
        )
    return results


def server_tool_loop(
    turns: int = 8,
    *,
    text_per_turn: int = 60,
    pings_per_turn: int = 250,
    answer_deltas: int = 2_000,
    pings: bool = True,
    seed: int = SEED,
) -> Workload:
    """A web-search loop: ``turns`` sampling iterations, each a search, and many pings.

    With ``pings=False`` the same stream without any ``ping`` (to see what they cost).

    Each turn writes some text, calls ``web_search`` (its input streamed as
    ``input_json_delta``), waits for the tool with pings, and gets a result block with five
    results; then the answer is written with a citation now and then. The final
    ``message_delta`` carries ``server_tool_use`` and one ``message`` iteration per turn
    plus one for the answer, whose sum is the top level.
    """
    rng = random.Random(seed + 1)
    iterations = []
    base_input = 3_150
    for turn in range(turns + 1):
        cache_creation = 2_048 if turn == 0 else 0
        cache_read = 0 if turn == 0 else 2_048
        output = text_per_turn + 12 if turn < turns else answer_deltas + 5
        iterations.append(
            _iteration("message", base_input + 1_700 * turn, output, cache_creation, cache_read)
        )
    totals = {
        key: sum(it[key] for it in iterations)
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        )
    }
    start = _start_usage(base_input, 2_048, 0)
    delta_usage = {
        **totals,
        "server_tool_use": {"web_search_requests": turns, "web_fetch_requests": 0},
        "iterations": iterations,
    }
    events: list[Event] = [_message_start(start, "msg_bench_tools"), _PING]
    index = 0
    for turn in range(turns):
        events.append(_block_start(index, _text_block()))
        events += [_text_delta(index, p) for p in _text_pieces(rng, text_per_turn)]
        events.append(_block_stop(index))
        index += 1
        tool_id = f"srvtoolu_{turn:02d}{rng.randrange(16**20):020x}"
        events.append(
            _block_start(
                index, {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {}}
            )
        )
        query = json.dumps({"query": _prose(rng, 36).strip()})
        for part in ("", query[:9], query[9:20], query[20:]):
            events.append(_delta(index, {"type": "input_json_delta", "partial_json": part}))
        events.append(_block_stop(index))
        index += 1
        events += [_PING] * pings_per_turn
        events.append(
            _block_start(
                index,
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": tool_id,
                    "content": _search_results(rng, turn),
                },
            )
        )
        events.append(_block_stop(index))
        index += 1
    events.append(_block_start(index, {"type": "text", "text": "", "citations": []}))
    for k, piece in enumerate(_text_pieces(rng, answer_deltas)):
        if k % 200 == 199:
            citation = {
                "type": "web_search_result_location",
                "cited_text": _prose(rng, 120).strip(),
                "url": f"https://example.org/{k}",
                "title": "Cited page",
                "encrypted_index": rng.randbytes(48).hex(),
            }
            events.append(_delta(index, {"type": "citations_delta", "citation": citation}))
        events.append(_text_delta(index, piece))
        if k % 100 == 99:
            events.append(_PING)
    events += [_block_stop(index), _message_delta(delta_usage), _STOP]
    if not pings:
        events = [e for e in events if e is not _PING]
    count = sum(e is _PING for e in events)
    return _workload(
        "server-tools" if pings else "server-tools-no-pings",
        f"a web-search loop: {turns} searches, {turns + 1} iterations, {count:,} pings",
        events,
        STREAM_CHUNK,
        _final_usage(start, delta_usage),
    )


def compaction(answer_deltas: int = 5_000, *, summary_chars: int = 12_000) -> Workload:
    """A compaction stream: a compaction block (one long summary delta), then the answer.

    The final ``message_delta`` carries a ``compaction`` and a ``message`` iteration; the
    top level is the ``message`` entry.
    """
    rng = random.Random(SEED + 2)
    start = _start_usage(178_934, 0, 0)
    message = _iteration("message", 23_000, answer_deltas + 3, 0, 0)
    delta_usage = {
        "input_tokens": 23_000,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": answer_deltas + 3,
        "iterations": [_iteration("compaction", 180_000, 3_500, 0, 0), message],
    }
    summary = "Summary of the session so far:" + _prose(rng, summary_chars)
    events: list[Event] = [
        _message_start(start, "msg_bench_compaction"),
        _PING,
        _block_start(0, {"type": "compaction", "content": None}),
        _delta(
            0,
            {
                "type": "compaction_delta",
                "content": summary,
                "encrypted_content": rng.randbytes(256).hex(),
            },
        ),
        _block_stop(0),
        _block_start(1, _text_block()),
    ]
    events += [_text_delta(1, p) for p in _text_pieces(rng, answer_deltas)]
    events += [_block_stop(1), _message_delta(delta_usage), _STOP]
    return _workload(
        "compaction",
        f"a compaction block ({len(summary) // 1000} kB summary) then {answer_deltas:,} deltas",
        events,
        STREAM_CHUNK,
        _final_usage(start, delta_usage),
    )


def long_line(line_bytes: int = 4 * 1024 * 1024) -> Workload:
    """One ``content_block_delta`` whose ``data:`` line is exactly ``line_bytes`` long.

    Fed in 1 KiB chunks, so a decoder that rescans or re-joins what it holds is quadratic.
    """
    rng = random.Random(SEED + 3)
    start = _start_usage(1_200, 0, 0)
    delta_usage = {"output_tokens": line_bytes // 4}
    empty = _text_delta(0, "")
    overhead = len(b"data: ") + len(json.dumps(empty, separators=(",", ":")))
    big = _text_delta(0, _prose(rng, line_bytes - overhead))
    events = [
        _message_start(start, "msg_bench_long_line"),
        _block_start(0, _text_block()),
        big,
        _block_stop(0),
        _message_delta(delta_usage),
        _STOP,
    ]
    size = _size_name(line_bytes)
    workload = _workload(
        f"line-{size.replace(' ', '')}",
        f"one event with a {size} data line, 1 KiB chunks",
        events,
        LONG_LINE_CHUNK,
        _final_usage(start, delta_usage),
    )
    line = next(x for x in workload.data.split(b"\n") if len(x) > line_bytes // 2)
    assert len(line) == line_bytes, len(line)
    return workload


def _size_name(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size // 1024} KiB"


def standard_workloads(scale: float = 1.0) -> list[Workload]:
    """The timed workloads; ``scale`` shrinks them for the smoke test (1.0: full size)."""

    def n(value: int) -> int:
        return max(1, int(value * scale))

    return [
        text_answer(n(20_000)),
        server_tool_loop(
            turns=max(2, n(8)),
            text_per_turn=n(60),
            pings_per_turn=n(250),
            answer_deltas=n(2_000),
        ),
        compaction(n(5_000), summary_chars=n(12_000)),
        long_line(max(16 * 1024, n(1024 * 1024))),
        long_line(4 * max(16 * 1024, n(1024 * 1024))),
    ]


# -- the 200 MB stream, built lazily ---------------------------------------------------------

_BIG_POOL_DELTAS = 8_000  # about 1 MB of encoded text deltas, reused for every block
_BIG_TOOL_EVERY = 10  # one tool_use block (input_json_delta) every this many text blocks


@functools.cache
def _big_pool() -> tuple[bytes, int, bytes, int]:
    """The pre-encoded bodies of a text block and of a tool-use block (index 0 as written).

    Returns ``(text_body, text_deltas, tool_body, tool_deltas)``. The bodies are the deltas
    of a block; pings are mixed in every 500 deltas.
    """
    rng = random.Random(SEED + 4)
    parts = []
    for k, piece in enumerate(_text_pieces(rng, _BIG_POOL_DELTAS)):
        parts.append(encode(_text_delta(0, piece)))
        if k % 500 == 499:
            parts.append(encode(_PING))
    source = json.dumps({"path": "src/app.py", "content": _prose(rng, 40_000)})
    tool = [
        encode(_delta(0, {"type": "input_json_delta", "partial_json": source[i : i + 40]}))
        for i in range(0, len(source), 40)
    ]
    return b"".join(parts), _BIG_POOL_DELTAS, b"".join(tool), len(tool)


def _reindex(body: bytes, index: int) -> bytes:
    return body if index == 0 else body.replace(b'"index":0,', b'"index":%d,' % index)


def _big_stream_plan(total_bytes: int) -> tuple[int, int]:
    """How many text blocks and tool blocks make at least ``total_bytes`` (one at least).

    Block ``i`` is a tool-use block when ``i % 11 == 10``, a text block otherwise.
    """
    text_body, _, tool_body, _ = _big_pool()
    text, tool = len(text_body), len(tool_body)
    groups, rest = divmod(max(1, total_bytes), _BIG_TOOL_EVERY * text + tool)
    text_blocks = groups * _BIG_TOOL_EVERY + min(_BIG_TOOL_EVERY, -(-rest // text))
    tool_blocks = groups + (rest > _BIG_TOOL_EVERY * text)
    return text_blocks, tool_blocks


def big_stream_usage(total_bytes: int = BIG_STREAM_BYTES) -> dict[str, Any]:
    """The final usage of :func:`big_stream_chunks` for the same ``total_bytes``."""
    text_blocks, tool_blocks = _big_stream_plan(total_bytes)
    start = _start_usage(4_096, 0, 30_000)
    return _final_usage(start, _big_delta_usage(text_blocks, tool_blocks))


def _big_delta_usage(text_blocks: int, tool_blocks: int) -> dict[str, Any]:
    return {"output_tokens": text_blocks * _BIG_POOL_DELTAS + tool_blocks * 1_000}


def big_stream_chunks(
    total_bytes: int = BIG_STREAM_BYTES, chunk_size: int = STREAM_CHUNK
) -> Iterator[bytes]:
    """Yield a valid stream of at least ``total_bytes`` in ``chunk_size`` chunks, lazily.

    Text blocks of 8,000 deltas (pings among them) alternate with tool-use blocks whose
    input arrives as ``input_json_delta``. Only the pool (about 1.4 MB), one block and one
    chunk are held at a time; ``content_block_*`` indices are rewritten per block.
    """
    return _rechunk(_big_parts(total_bytes), chunk_size)


def big_stream_size(total_bytes: int = BIG_STREAM_BYTES) -> int:
    """The exact length of :func:`big_stream_chunks` for the same ``total_bytes``."""
    return sum(len(part) for part in _big_parts(total_bytes, reindex=False))


def _big_parts(total_bytes: int, *, reindex: bool = True) -> Iterator[bytes]:
    text_body, _, tool_body, _ = _big_pool()
    text_blocks, tool_blocks = _big_stream_plan(total_bytes)
    start = _start_usage(4_096, 0, 30_000)
    marker = b'"index":0,'
    text_marks, tool_marks = text_body.count(marker), tool_body.count(marker)

    def body(pooled: bytes, marks: int, index: int) -> bytes:
        if reindex:
            return _reindex(pooled, index)
        return b"-" * (len(pooled) + marks * (len(str(index)) - 1))  # only its length counts

    yield encode(_message_start(start, "msg_bench_big")) + encode(_PING)
    for index in range(text_blocks + tool_blocks):
        if index % (_BIG_TOOL_EVERY + 1) == _BIG_TOOL_EVERY:
            tool_id = f"toolu_{index:08d}"
            tool = {"type": "tool_use", "id": tool_id, "name": "write", "input": {}}
            yield encode(_block_start(index, tool))
            yield body(tool_body, tool_marks, index)
        else:
            yield encode(_block_start(index, _text_block()))
            yield body(text_body, text_marks, index)
        yield encode(_block_stop(index))
    yield encode(_message_delta(_big_delta_usage(text_blocks, tool_blocks), "tool_use"))
    yield encode(_STOP)
