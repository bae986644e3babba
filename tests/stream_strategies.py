"""Hypothesis strategies for whole Messages API streams, and an independent reference reader.

The oracle here is written from ``docs/semantics.md`` (sections 2 to 4) and the WHATWG
event-stream rules, not read from ``usagetally``'s accumulator or decoder:

- :func:`valid_streams` builds a stream from a *plan*: the final iterations of one documented
  feature (plain, a single entry, a server-tool loop, compaction, paused compaction, advisor by
  either documented rule, fallback, an unknown entry type), a top level consistent with them by
  the rule of section 3, a ``message_start`` snapshot, and one to three ``message_delta``
  events that carry cumulative counts (never going down), iteration prefixes and the fields
  that must overwrite the start. Pings come anywhere (before ``message_start`` and after
  ``message_stop`` included), unknown event types between them, content blocks of text,
  thinking, tool use, server tool use and unknown kinds. Each stream carries its expected final
  usage, computed by the plain overwrite rule (a ``cache_creation`` split made stale by a delta
  is kept as sent).
- The framing varies per stream and per event: LF, CRLF or CR; ``event:`` lines or none (then
  the JSON ``type`` decides); multi-line ``data``; ``data:`` without its space; comments,
  ``id``, ``retry`` and unknown fields inside a block; the ``event`` line after the data;
  keep-alive blocks and extra blank lines between events; a leading BOM. Most events keep the
  exact API framing, so the decoder's fast path is exercised as much as its general path.
- :func:`byte_mutations` and :func:`frame_mutations` break a stream: byte flips, cuts,
  inserted garbage, deleted or repeated ranges; dropped, duplicated, swapped, moved or
  renamed events, and foreign events (errors, a second ``message_start``, deltas with random
  payloads).
- :func:`parse_sse` is a literal reading of the event-stream rules (whole input, no fast
  path), and :func:`reference_outcome` applies the merge and order rules of section 4 to its
  events. Payload *validity* (is this a count, is this an iteration entry) is asked of
  ``usagetally.converter``, which has its own tests; which event is read, in which order,
  what it overwrites and where a stream fails is decided here. Consistency diagnostics are
  not modelled: compare with ``policy="off"`` (or use valid streams under ``"strict"``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st
from strategies import message_delta_usage_payloads
from support import merge_wire, split_at

from usagetally import (
    BetaMessageDeltaUsage,
    BetaUsage,
    UsageError,
    UsageValidationError,
    converter,
)

__all__ = [
    "CUTS",
    "ERROR_TYPES",
    "ITERATION_KINDS",
    "MAX_COUNT",
    "Frame",
    "Outcome",
    "Stream",
    "Style",
    "byte_mutations",
    "chunk",
    "frame_mutations",
    "matches",
    "merge_wire",
    "mutated_streams",
    "outcome_of",
    "parse_sse",
    "reference_outcome",
    "split_at",
    "valid_streams",
    "wire",
]

Json = dict[str, Any]

MAX_COUNT = 2**63 - 1
"""The largest count the API's types allow."""

ERROR_TYPES = (
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
)
"""The documented ``error.type`` values of an ``error`` event."""

ITERATION_KINDS = (
    "plain",
    "single",
    "tool_loop",
    "compaction",
    "paused_compaction",
    "advisor",
    "advisor_older",
    "fallback",
    "unknown_entry",
)
"""The plans :func:`valid_streams` draws from (one per documented shape of ``iterations``)."""

_USAGE_EVENTS = frozenset({"message_start", "message_delta", "message_stop", "error"})
_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_CUMULATIVE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# What the SDK's accumulator copies from a message_delta (anthropic 2.12.0,
# lib/streaming/_beta_messages.py, accumulate_event): known fields only (the fields of its
# MessageDeltaUsage, which are BetaMessageDeltaUsage's), when not null.
SDK_DELTA_FIELDS = tuple(
    a.name for a in attrs.fields(BetaMessageDeltaUsage) if a.name != "unknown_fields"
)
_UNKNOWN_EVENTS = ("mystery_event", "message_annotation", "content_block_citation", "x")
_UNKNOWN_ENTRY_TYPES = ("tool_search_message", "retry", "web_fetch_message")
_MODELS = ("claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5")


# --- Framing -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Style:
    """How one event is framed on the wire (everything the SSE rules allow us to vary)."""

    eol: str = "\n"
    named: bool = True
    space: bool = True
    multiline: bool = False
    extras: tuple[str, ...] = ()  # comment, id, retry or unknown-field lines inside the block
    event_last: bool = False
    trailer: str = ""  # after the blank line: extra blank lines, keep-alive comment blocks

    @property
    def api_like(self) -> bool:
        """Whether the event has the exact framing of the API (the decoder's fast path)."""
        return self == Style()


@dataclasses.dataclass(frozen=True)
class Frame:
    """One event: its JSON and its framing. ``name`` overrides the ``event:`` line."""

    payload: Json
    style: Style = Style()
    name: str | None = None

    @property
    def event_name(self) -> str:
        """The SSE event name it is sent with (its JSON ``type`` unless overridden)."""
        return self.name if self.name is not None else str(self.payload.get("type"))

    def render(self) -> bytes:
        """The bytes of the event: its block, the blank line ending it, then the trailer."""
        s = self.style
        eol = s.eol
        if s.multiline:
            text = json.dumps(self.payload, indent=1, ensure_ascii=False)
        else:
            text = json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)
        lead = "data: " if s.space else "data:"
        lines = [*s.extras, *(lead + line for line in text.split("\n"))]
        if s.named:
            name_line = "event: " + self.event_name
            lines = [*lines, name_line] if s.event_last else [name_line, *lines]
        out = "".join(line + eol for line in lines) + eol + s.trailer.replace("\n", eol)
        return out.encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Stream:
    """A generated stream and what it must give.

    Attributes:
        frames: The events in order.
        prefix: Bytes before the first event (a BOM, keep-alive comments).
        expected: The final usage in wire form (None for a stream that is not valid).
        sdk_expected: What the anthropic SDK's accumulator must report for it: the start
            snapshot with the known fields of each delta copied over, the split never rebuilt.
        stale: Whether a delta changed ``cache_creation_input_tokens`` after the split of
            ``message_start`` (kept as sent; the accumulator notes ``cache_split_stale``).
        start_split: The ``cache_creation`` of ``message_start``, if any.
        delta_unknown: Top-level fields only a ``message_delta`` sends that usagetally does
            not know: kept by the overwrite rule, dropped by the SDK.
        kind: The plan it was built from (one of :data:`ITERATION_KINDS`).
        sdk_readable: Whether the SDK can read it at all: every event named, no BOM.
    """

    frames: tuple[Frame, ...]
    prefix: bytes = b""
    expected: Json | None = None
    sdk_expected: Json | None = None
    stale: bool = False
    start_split: Json | None = None
    delta_unknown: tuple[str, ...] = ()
    kind: str = ""
    sdk_readable: bool = False

    def to_bytes(self) -> bytes:
        """The whole stream as sent."""
        return self.prefix + b"".join(frame.render() for frame in self.frames)

    def events(self) -> list[Json]:
        """The events' JSON, in order (for ``feed_event``)."""
        return [frame.payload for frame in self.frames]

    def replace(self, frames: Sequence[Frame]) -> Stream:
        """The same stream with other frames; no longer a valid stream."""
        return Stream(frames=tuple(frames), prefix=self.prefix, kind=self.kind)


CUTS = st.one_of(
    st.lists(st.integers(0, 2**32), max_size=40),
    st.just([-1]),  # one byte at a time
)
"""Where to cut a stream, as fractions of its length (``[-1]``: between every two bytes)."""


def chunk(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the cuts drawn from :data:`CUTS`."""
    if list(cuts) == [-1]:
        return [data[i : i + 1] for i in range(len(data))]
    return split_at(data, [len(data) * c // 2**32 for c in cuts])


# --- Reference reader ----------------------------------------------------------------------------


def parse_sse(data: bytes) -> list[tuple[str, str, int]]:
    """Read ``text/event-stream`` bytes the way the WHATWG rules say, without shortcuts.

    Returns:
        ``(event name, data, byte offset)`` for each dispatched event; the offset is that
        of the first line of its block in ``data`` (a leading BOM counts).
    """
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    events: list[tuple[str, str, int]] = []
    kind = b""
    parts: list[bytes] = []
    block = -1
    n = len(data)
    while pos < n:
        ends = [i for i in (data.find(b"\r", pos), data.find(b"\n", pos)) if i >= 0]
        if not ends:
            break  # an unfinished line at the end of the stream: its event is dropped
        eol = min(ends)
        nxt = eol + 2 if data[eol : eol + 2] == b"\r\n" else eol + 1
        line = data[pos:eol]
        if not line:
            if parts:
                name = kind.decode("utf-8", "replace") or "message"
                text = b"\n".join(parts).decode("utf-8", "replace")
                events.append((name, text, block))
            kind, parts, block = b"", [], -1
        else:
            if block < 0:
                block = pos
            if not line.startswith(b":"):
                field, colon, value = line.partition(b":")
                if colon and value.startswith(b" "):
                    value = value[1:]
                if field == b"data":
                    parts.append(value)
                elif field == b"event":
                    kind = value
        pos = nxt
    return events


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What reading a stream gives: the final usage, or an error and where.

    ``usage`` and ``partial`` are in wire form.
    """

    usage: Json | None = None
    error: str | None = None
    event_index: int | None = None
    byte_offset: int | None = None
    partial: Json | None = None
    error_type: str | None = None
    message: str | None = dataclasses.field(default=None, compare=False)


def wire(state: Mapping[str, Any] | None) -> Json | None:
    """The wire form of a merged state (as the converter writes a usage back)."""
    if state is None:
        return None
    result: Json = converter.unstructure(converter.structure(dict(state), BetaUsage))
    return result


def _valid(payload: Mapping[str, Any], cls: type[Any]) -> bool:
    try:
        converter.structure(dict(payload), cls)
    except UsageValidationError:
        return False
    return True


def reference_outcome(events: Sequence[tuple[str, str, int | None]]) -> Outcome:
    """Apply the order and merge rules of docs/semantics.md, section 4 to dispatched events.

    Args:
        events: ``(event name, data, byte offset)`` as :func:`parse_sse` gives them (offset
            None for events not read from bytes).

    Returns:
        The outcome under ``policy="off"``: the final usage, or the first error.

    Precedence, as the library documents it: an event is read first (the usage events, and
    events without a name, are JSON-decoded: malformed data fails there), then judged by its
    place (only ``ping`` may follow ``message_stop``), then merged. What an event is: its
    JSON ``type`` (docs/semantics.md, section 4, rule 8), but ``ping`` is never read and
    ``error`` is an error whatever its data; other named events are decoded only when their
    data does not begin with ``{"type":"NAME"`` for their own name.
    """
    state: Json | None = None
    deltas = 0
    stopped = False

    def fail(error: str, index: int, offset: int | None, **extra: Any) -> Outcome:
        return Outcome(
            error=error, event_index=index, byte_offset=offset, partial=wire(state), **extra
        )

    for index, (name, data, offset) in enumerate(events):
        obj: Any = None
        if name == "error":  # an error whatever its data
            try:
                obj = json.loads(data)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                obj = {}
        elif name in _USAGE_EVENTS or name == "message":
            try:
                obj = json.loads(data)
            except ValueError:
                return fail("MalformedEventError", index, offset)
            if not isinstance(obj, dict):
                return fail("MalformedEventError", index, offset)
            kind = obj.get("type")
            if isinstance(kind, str):
                name = kind  # the JSON type decides
            elif name == "message":
                name = ""
        elif name != "ping" and not data.startswith('{"type":"' + name + '"'):
            # Any other name is passed over only when its data begins with its own type;
            # otherwise the type, if the data has one, decides.
            try:
                other = json.loads(data)
            except (ValueError, RecursionError):
                other = None
            if isinstance(other, dict) and isinstance(other.get("type"), str):
                name, obj = other["type"], other
        if stopped and name != "ping":
            return fail("EventOrderError", index, offset)
        if obj is None or name not in _USAGE_EVENTS:
            continue
        if name == "message_start":
            if state is not None:
                return fail("EventOrderError", index, offset)
            message = obj.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if not isinstance(usage, dict):
                return fail("MalformedEventError", index, offset)
            new = merge_wire(usage, [])
            if not _valid(new, BetaUsage):
                return fail("MalformedEventError", index, offset)
            state = new
        elif name == "message_delta":
            if state is None:
                return fail("EventOrderError", index, offset)
            usage = obj.get("usage")
            if not isinstance(usage, dict):
                return fail("MalformedEventError", index, offset)
            carried = merge_wire(usage, [])
            merged = merge_wire(state, [carried])
            if not _valid(carried, BetaMessageDeltaUsage) or not _valid(merged, BetaUsage):
                return fail("MalformedEventError", index, offset)
            state = merged
            deltas += 1
        elif name == "message_stop":
            if state is None:
                return fail("EventOrderError", index, offset)
            stopped = True
        else:
            error = obj.get("error")
            kind = error.get("type") if isinstance(error, dict) else None
            return fail(
                "StreamErrorEvent",
                index,
                offset,
                error_type=kind if isinstance(kind, str) else None,
            )
    if state is None or not stopped or deltas == 0:
        return Outcome(error="IncompleteStreamError", event_index=len(events), partial=wire(state))
    return Outcome(usage=wire(state))


# --- Valid streams -----------------------------------------------------------------------------
# Drawing is done through a few cached strategies: building a strategy object per draw costs
# more than the whole test of one stream.


@functools.cache
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


@functools.cache
def _choices(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


_BOOL = st.booleans()
_UNIT_MAX = 2**32
_UNIT = st.one_of(st.integers(0, _UNIT_MAX), st.sampled_from([0, _UNIT_MAX]))
_SMALL_COUNT = st.one_of(st.integers(0, 2_000), st.integers(0, 10**6), st.sampled_from([0, 1]))
_COUNT = st.one_of(_SMALL_COUNT, st.integers(0, 2**40))
_BIG_COUNT = st.one_of(_SMALL_COUNT, st.integers(0, MAX_COUNT), st.sampled_from([MAX_COUNT]))
# Text of content blocks: mostly from a pool (one draw each), sometimes arbitrary.
_TEXT_POOL = st.sampled_from(
    [
        "",
        "Hello",
        " world.",
        "\n\n",
        "\r\n",
        "\r",
        "event: message_stop",
        "data: {}\n\n",
        ": comment",
        '{"usage": {"output_tokens": 1}}',
        "\ufeff",
        "\u2028\u2029\x85\x0b\x0c",
        "\x00",
        "héllo wörld",
        "日本語のテキスト",
        "emoji \U0001f600",
        "a" * 300,
    ]
)
_TEXT = st.one_of(
    _TEXT_POOL,
    _TEXT_POOL,
    _TEXT_POOL,
    st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from("\n\ré"), max_size=24),
)
_EXTRAS = st.lists(
    st.sampled_from([":", ": keep-alive", "id: 42", "retry: 1000", "foo: bar", "id"]), max_size=2
)
_TRAILERS = st.sampled_from(["", "", "\n", ": ping\n\n", "\n\n"])
_SPLIT_POINTS = st.lists(st.integers(1, 40), max_size=4)
_STATUSES = st.sampled_from(
    [
        {"type": "redeemed"},
        {"type": "not_applied", "reason": "prompt_cached"},
        {"type": "not_applied", "reason": "x", "remove_to_redeem": ["tools"]},
    ]
)
_UNKNOWN_VALUES = st.one_of(
    st.integers(0, 100),
    st.text(max_size=5),
    st.lists(st.integers(0, 9), max_size=2),
    st.fixed_dictionaries({"n": st.integers(0, 9)}),
)


class _Draw:
    """The few kinds of draw the generator makes, each from a cached strategy."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(_ints(lo, hi)))

    def below(self, hi: int) -> int:
        """An integer in [0, hi], any size, shrinking towards 0."""
        return hi * int(self.draw(_UNIT)) // _UNIT_MAX

    def flag(self, one_in: int = 2) -> bool:
        return bool(self.draw(_BOOL)) if one_in == 2 else self.integer(1, one_in) == 1

    def pick(self, *options: Any) -> Any:
        return self.draw(_choices(options))

    def count(self, big: bool = False) -> int:
        return int(self.draw(_BIG_COUNT if big else _COUNT))

    def split(self, total: int) -> Json:
        five = self.below(total)
        return {"ephemeral_5m_input_tokens": five, "ephemeral_1h_input_tokens": total - five}

    def nondecreasing(self, n: int, final: int) -> list[int]:
        """``n`` values in [0, final], in order: cumulative counts of earlier deltas."""
        return sorted(self.below(final) for _ in range(n))


def _entry(d: _Draw, kind: str, *, split: bool) -> Json:
    entry: Json = {"type": kind}
    for name in _COUNTS:
        entry[name] = d.count()
    if split or d.flag():
        entry["cache_creation"] = d.split(entry["cache_creation_input_tokens"])
    if kind in ("advisor_message", "fallback_message") or (kind == "message" and d.flag()):
        entry["model"] = d.pick(*_MODELS)
    if kind not in ("message", "compaction", "advisor_message", "fallback_message") and d.flag():
        entry["future_detail"] = d.integer(0, 9)
    return entry


def _sum(entries: Sequence[Json], name: str) -> int:
    return sum(int(e[name]) for e in entries)


@dataclasses.dataclass
class _Plan:
    entries: list[Json]
    top: Json  # the four counts (only those present)
    makers: list[Json]  # the entries whose cache_creation_input_tokens make up the top level


def _plan(d: _Draw, kind: str, split_all: bool) -> _Plan:
    """The final iterations of one documented feature and the top level its rule implies."""

    def entry(k: str) -> Json:
        return _entry(d, k, split=split_all and k != "compaction")

    if kind == "plain":
        top = {"input_tokens": d.count(big=True), "output_tokens": d.count(big=True)}
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            if d.flag():
                top[name] = d.count(big=True)
        return _Plan([], top, [])
    if kind == "unknown_entry":  # the top level is not checked: its rule is unknown
        entries = [entry("message") for _ in range(d.integer(0, 2))]
        entries.insert(d.integer(0, len(entries)), entry(d.pick(*_UNKNOWN_ENTRY_TYPES)))
        return _Plan(entries, {name: d.count() for name in _COUNTS}, [])
    if kind == "single":
        entries = [entry("message")]
    elif kind == "tool_loop":  # server-tool loop: one message entry per sampling turn
        entries = [entry("message") for _ in range(d.integer(1, 4))]
    elif kind == "compaction":  # compaction entries are outside the top level
        order = [d.pick("compaction", "message") for _ in range(d.integer(0, 4))]
        if "compaction" not in order:
            order.insert(d.integer(0, len(order)), "compaction")
        if "message" not in order:
            order.append("message")
        entries = [entry(k) for k in order]
    elif kind == "paused_compaction":  # pause_after_compaction: top level 0 / 0
        entries = [entry("compaction")]
    elif kind in ("advisor", "advisor_older"):  # advisor calls are outside the top level
        order = ["message"]
        for _ in range(d.integer(1, 3)):
            order += ["advisor_message", "message"]
        if d.flag():
            order.append("advisor_message")
        entries = [entry(k) for k in order]
    else:  # fallback: declined attempts, then the serving one; the top level is the latter
        entries = [entry("message") for _ in range(d.integer(0, 2))]
        for declined in entries:
            declined.setdefault("model", d.pick(*_MODELS))
            if d.flag():
                declined["output_tokens"] = 0
        entries.append(entry("fallback_message"))
        return _Plan(entries, {name: entries[-1][name] for name in _COUNTS}, entries[-1:])
    executors = [e for e in entries if e["type"] == "message"]
    top = {name: _sum(executors, name) for name in _COUNTS}
    makers = executors
    if kind == "advisor_older":
        # Older doc rule: output summed, input and cache read of the first executor entry;
        # cache creation is accepted either way.
        first = executors[0]
        top["input_tokens"] = first["input_tokens"]
        top["cache_read_input_tokens"] = first["cache_read_input_tokens"]
        if d.flag():
            top["cache_creation_input_tokens"] = first["cache_creation_input_tokens"]
            makers = [first]
    return _Plan(entries, top, makers)


def _content_block(d: _Draw, index: int) -> list[Json]:
    kind = d.pick("text", "thinking", "tool_use", "server_tool_use", "redacted", "future")
    n = d.integer(20, 40) if d.flag(6) else d.integer(0, 4)  # many: a long run the decoder skips
    events: list[Json] = []

    def start(block: Json) -> None:
        events.append({"type": "content_block_start", "index": index, "content_block": block})

    def delta(body: Json) -> None:
        events.append({"type": "content_block_delta", "index": index, "delta": body})

    if kind == "text":
        start({"type": "text", "text": ""})
        for _ in range(n):
            delta({"type": "text_delta", "text": d.draw(_TEXT)})
    elif kind == "thinking":
        start({"type": "thinking", "thinking": "", "signature": ""})
        for _ in range(n):
            delta({"type": "thinking_delta", "thinking": d.draw(_TEXT)})
        delta({"type": "signature_delta", "signature": "EqQBCgIYAhIM"})
    elif kind in ("tool_use", "server_tool_use"):
        start({"type": kind, "id": f"toolu_{index}", "name": "get_weather", "input": {}})
        arguments = json.dumps({"city": d.draw(_TEXT), "days": d.integer(0, 9)})
        for piece in split_at(arguments.encode(), d.draw(_SPLIT_POINTS)):
            delta({"type": "input_json_delta", "partial_json": piece.decode("utf-8", "replace")})
    elif kind == "redacted":
        start({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"})
    else:  # a block type added after this version
        start({"type": "future_block", "payload": d.draw(_TEXT)})
        delta({"type": "future_delta", "payload": d.draw(_TEXT)})
    events.append({"type": "content_block_stop", "index": index})
    return events


def _style(d: _Draw, eol: str, named: bool, plain: bool) -> Style:
    if plain or d.integer(0, 9) < 6:
        return Style(eol=eol, named=named)
    return Style(
        eol=eol,
        named=named,
        space=d.flag(),
        multiline=d.flag(),
        extras=tuple(d.draw(_EXTRAS)),
        event_last=named and d.flag(),
        trailer=d.draw(_TRAILERS),
    )


def _unknown_fields(d: _Draw, prefix: str) -> Json:
    return {f"{prefix}_{name}": d.draw(_UNKNOWN_VALUES) for name in ("a", "b")[: d.integer(1, 2)]}


def _delta_event(usage: Json, stop_reason: str | None) -> Json:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


@st.composite
def valid_streams(
    draw: st.DrawFn, *, sdk_readable: bool = False, kinds: Sequence[str] = ITERATION_KINDS
) -> Stream:
    """A complete, consistent stream and its expected final usage.

    Args:
        sdk_readable: Only streams the anthropic SDK can read: every event has an
            ``event:`` line (the SDK drops the others) and there is no BOM (the SDK keeps it
            and loses the first event's name). Both are SSE framing, not usage semantics.
        kinds: The plans to draw from.

    Every stream is accepted by ``UsageAccumulator(policy="strict")``: counts never go down
    between deltas, reported iterations never change, the top level follows the rule of
    section 3 for its entries, and a ``cache_creation`` split either adds up or was left stale
    by a delta (a note, which strict mode accepts).
    """
    d = _Draw(draw)
    kind = d.pick(*kinds)
    stale = kind not in ("plain", "paused_compaction", "unknown_entry") and d.flag()
    plan = _plan(d, kind, split_all=stale)
    top = plan.top

    # message_start: the start snapshot. A field whose start value differs from the final
    # one (or that the start lacks) must be carried by the last delta.
    start: Json = {}
    must_carry: set[str] = {"output_tokens"}
    for name in _CUMULATIVE:
        if name not in top:
            continue
        how = d.pick("same", "same", "other", "absent")
        if how == "same":
            start[name] = top[name]
        elif how == "other" or name == "input_tokens":  # input_tokens is required
            start[name] = d.count()
            must_carry.add(name)
        else:
            must_carry.add(name)
    start["output_tokens"] = d.integer(0, 5)  # a placeholder
    cc = "cache_creation_input_tokens"
    start_split: Json | None = None
    if cc in start and (stale or d.flag()):
        if start[cc] == top[cc]:
            start_split = d.split(start[cc])
        elif stale:
            # The delta changes cache_creation_input_tokens: the start split goes stale and
            # is kept as sent (a cache_split_stale note).
            start_split = d.split(start[cc])
        if start_split is not None:
            start["cache_creation"] = start_split
    split_stale = start_split is not None and start[cc] != top[cc]
    if d.flag():
        start["service_tier"] = d.pick("standard", "priority", "batch")
    if d.flag():
        start["speed"] = d.pick("standard", "fast")
    if d.flag():
        start["inference_geo"] = d.pick("us", "global", "eu", "日本")
    if plan.entries and d.flag(10):
        start["iterations"] = []
    final_tools: Json | None = None
    if kind in ("tool_loop", "compaction") or d.flag(4):
        final_tools = {
            "web_search_requests": d.integer(0, 30),
            "web_fetch_requests": d.integer(0, 30),
        }
        if d.flag(5):
            final_tools["web_code_execution_requests"] = d.integer(0, 5)
        where = d.pick("start", "start_zero", "delta")
        if where == "start":
            start["server_tool_use"] = dict(final_tools)
        else:
            if where == "start_zero":
                start["server_tool_use"] = dict.fromkeys(final_tools, 0)
            must_carry.add("server_tool_use")
    if d.flag(4):
        start.update(_unknown_fields(d, "start"))

    # message_delta events: cumulative counts that never go down; when an earlier delta
    # carries a field, the last one does too (else the earlier value would be final).
    n_deltas = d.integer(1, 3)
    deltas: list[Json] = [{} for _ in range(n_deltas)]
    last = n_deltas - 1
    final = deltas[last]

    def carriers(name: str) -> list[int]:
        chosen = [i for i in range(last) if name == "output_tokens" or d.flag()]
        if name in must_carry or chosen or d.flag():
            chosen.append(last)
        return chosen

    for name in ("output_tokens", *_CUMULATIVE):
        if name in top:
            chosen = carriers(name)
            values = [*d.nondecreasing(len(chosen) - 1, top[name]), top[name]]
            for i, value in zip(chosen, values, strict=False):
                deltas[i][name] = value
    if final_tools is not None:
        chosen = carriers("server_tool_use")
        columns = {
            key: [*d.nondecreasing(len(chosen) - 1, value), value]
            for key, value in final_tools.items()
        }
        for j, i in enumerate(chosen):
            deltas[i]["server_tool_use"] = {key: column[j] for key, column in columns.items()}
    if plan.entries:
        # Earlier deltas may carry the iterations so far (advisor doc); the last, all of them.
        lengths = sorted(d.integer(0, len(plan.entries)) for _ in range(last))
        for i, length in enumerate(lengths):
            if d.flag():
                deltas[i]["iterations"] = plan.entries[:length]
        final["iterations"] = plan.entries
    if d.flag(4):
        final["output_tokens_details"] = {"thinking_tokens": d.below(top["output_tokens"])}
    if kind == "fallback" and d.flag():
        final["fallback_credit"] = {"status": d.draw(_STATUSES)}
    delta_extra = _unknown_fields(d, "delta") if d.flag(5) else {}
    final.update(delta_extra)
    for delta in deltas:
        for name in ("input_tokens", "cache_read_input_tokens", "iterations", "server_tool_use"):
            if name not in delta and d.flag(8):
                delta[name] = None  # gateways send absent fields as null

    expected = merge_wire(start, deltas)
    for name, value in top.items():
        assert expected[name] == value, (name, expected, top)
    sdk = merge_wire(start, [{k: dl[k] for k in SDK_DELTA_FIELDS if k in dl} for dl in deltas])
    delta_unknown = tuple(sorted(k for k in delta_extra if expected.get(k) != sdk.get(k)))

    # The events: pings anywhere, content blocks, unknown events, earlier deltas in order.
    message_start: Json = {
        "type": "message_start",
        "message": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": d.pick(*_MODELS),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start,
        },
    }
    body: list[list[Json]] = [_content_block(d, i) for i in range(d.integer(0, 4))]
    unknown_names = _UNKNOWN_EVENTS if sdk_readable else (*_UNKNOWN_EVENTS, "é")
    for _ in range(d.integer(0, 2)):
        body.insert(d.integer(0, len(body)), [{"type": d.pick(*unknown_names), "detail": 1}])
    for _ in range(d.integer(0, 3)):
        body.insert(d.integer(0, len(body)), [{"type": "ping"}])
    places = sorted(d.integer(0, len(body)) for _ in range(last))
    for place, delta in reversed(list(zip(places, deltas[:last], strict=True))):
        body.insert(place, [_delta_event(delta, None)])
    payloads: list[Json] = [{"type": "ping"} for _ in range(d.integer(0, 1))]
    payloads.append(message_start)
    payloads += [event for group in body for event in group]
    payloads.append(_delta_event(final, "end_turn"))
    payloads.append({"type": "message_stop"})
    payloads += [{"type": "ping"} for _ in range(d.integer(0, 2))]

    eol = d.pick("\n", "\n", "\n", "\r\n", "\r")
    named = sdk_readable or d.integer(0, 4) > 0
    plain = d.flag()
    frames = tuple(Frame(p, _style(d, eol, named or d.flag(), plain)) for p in payloads)
    prefix = b""
    if not sdk_readable and d.flag(6):
        prefix += b"\xef\xbb\xbf"
    if d.flag(6):
        prefix += f": stream opened{eol}{eol}".encode()
    return Stream(
        frames=frames,
        prefix=prefix,
        expected=expected,
        sdk_expected=sdk,
        stale=split_stale,
        start_split=start_split,
        delta_unknown=delta_unknown,
        kind=kind,
        sdk_readable=all(f.style.named for f in frames) and not prefix.startswith(b"\xef"),
    )


# --- Mutations ---------------------------------------------------------------------------------


_GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.sampled_from(
        [b"\n", b"\r", b"\r\n", b"\n\n", b"\x00", b"\xff", b"\xc3", b"data: ", b"event: ", b":"]
    ),
    st.sampled_from([b"event: message_stop\n", b'data: {"type":"message_stop"}\n\n']),
)


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """Break ``data`` at the byte level, one to three times: flips, cuts, garbage, ranges."""
    d = _Draw(draw)
    for _ in range(d.integer(1, 3)):
        n = len(data)
        how = d.pick("flip", "cut", "insert", "delete", "repeat")
        at = d.below(n)
        if how == "flip" and n:
            at = min(at, n - 1)
            data = data[:at] + bytes([data[at] ^ d.integer(1, 255)]) + data[at + 1 :]
        elif how == "cut":
            data = data[:at]
        elif how == "insert":
            data = data[:at] + draw(_GARBAGE) + data[at:]
        elif how == "delete":
            data = data[:at] + data[at + d.integer(1, 64) :]
        else:
            end = min(n, at + d.integer(1, 300))
            data = data[:end] + data[at:end] + data[end:]
    return data


_FOREIGN = st.one_of(
    st.builds(
        lambda kind: {"type": "error", "error": {"type": kind, "message": "boom"}},
        st.sampled_from(ERROR_TYPES),
    ),
    st.builds(
        lambda n: {
            "type": "message_start",
            "message": {"usage": {"input_tokens": n, "output_tokens": 1}},
        },
        st.integers(0, 9),
    ),
    st.builds(
        lambda usage: {"type": "message_delta", "usage": usage},
        message_delta_usage_payloads(lenient=True),
    ),
    st.sampled_from(
        [
            {"type": "message_stop"},
            {"type": "ping"},
            {"type": "content_block_stop", "index": 0},
            {"type": "mystery_event"},
            {"type": "message_delta", "usage": None},
            {"type": "message_delta"},
            {"type": "message_start", "message": {"usage": None}},
            {"type": "error"},
        ]
    ),
)
_RENAMES = ("message_start", "message_delta", "message_stop", "ping", "error", "content_block_stop")


@st.composite
def frame_mutations(draw: st.DrawFn, stream: Stream) -> Stream:
    """Break a stream at the event level, one to three times: dropped, duplicated, swapped,
    moved or renamed events, foreign events inserted, the stream cut after an event."""
    d = _Draw(draw)
    frames = list(stream.frames)
    for _ in range(d.integer(1, 3)):
        n = len(frames)
        how = d.pick("drop", "duplicate", "swap", "move", "foreign", "rename", "cut")
        i = d.below(max(n - 1, 0))
        j = d.below(n)
        if how == "foreign":
            frames.insert(j, Frame(draw(_FOREIGN)))
        elif not frames:
            continue
        elif how == "drop":
            del frames[i]
        elif how == "duplicate":
            frames.insert(j, frames[i])
        elif how == "swap":
            j = min(j, n - 1)
            frames[i], frames[j] = frames[j], frames[i]
        elif how == "move":
            frames.insert(j, frames.pop(i))
        elif how == "rename":
            frame = frames[i]
            style = dataclasses.replace(frame.style, named=True)
            frames[i] = Frame(frame.payload, style, d.pick(*_RENAMES))
        else:
            frames = frames[:i]
    return stream.replace(frames)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """The bytes of a valid stream broken at the event level, the byte level, or both."""
    stream = draw(valid_streams())
    how = draw(_choices(("frames", "bytes", "both")))
    if how != "bytes":
        stream = draw(frame_mutations(stream))
    data = stream.to_bytes()
    if how != "frames":
        data = draw(byte_mutations(data))
    return data


def outcome_of(run: Callable[[], Any]) -> Outcome:
    """Run ``run`` (which returns a final usage) and describe what it gave.

    Only :class:`usagetally.UsageError` subclasses are caught: anything else escapes and
    fails the test.
    """
    try:
        usage = run()
    except UsageError as exc:
        partial = getattr(exc, "partial", None)
        return Outcome(
            error=type(exc).__name__,
            event_index=getattr(exc, "event_index", None),
            byte_offset=getattr(exc, "byte_offset", None),
            partial=None if partial is None else converter.unstructure(partial),
            error_type=getattr(exc, "error_type", None),
            message=str(exc),
        )
    result: Json = converter.unstructure(usage)
    return Outcome(usage=result)


def matches(actual: Outcome, expected: Outcome) -> bool:
    """Whether ``actual`` is ``expected``: the same outcome, byte offset included."""
    return actual == expected
