r"""Server-sent events: the framing layer of the sans-I/O core (bytes in, events out).

Rules this module keeps:

- Pure: no I/O, no clock, no threads, nothing but the standard library, attrs and our errors.
  It never imports anyio. The caller owns the socket and hands bytes to
  :meth:`SSEDecoder.feed`, split anywhere.
- Conformant to WHATWG HTML, "Parsing an event stream" and "Interpreting an event stream": CR,
  LF and CRLF end lines (and nothing else does), one leading BOM is ignored, a blank line
  dispatches, an unfinished event at the end of the stream is dropped, invalid UTF-8 becomes
  U+FFFD.
- Chunking never changes the result, and an event comes out as soon as its blank line is
  complete (a lone CR included).
- Lines are found on the bytes and a field's value is decoded once, when it is needed. That
  equals decoding the stream first: CR, LF and ":" are ASCII, never part of a UTF-8 sequence,
  and the decoder ends an invalid sequence at any ASCII byte.
- Linear time: a long line arriving in pieces is joined once, and what the fast path holds
  between chunks is bounded.
- With ``keep``, events of other types are counted but not built, and whole events of the form
  ``event: NAME\ndata: ...\n\n`` are passed over on the bytes without being split into lines.
  The result is the same as without the shortcut, in every case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final

import attrs

from ._errors import EventTooLargeError, LocalTypeError, LocalUsageError, LocalValueError

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 0x0A
_COLON: Final = 0x3A
_SPACE: Final = 0x20
# A partial block held raw by the fast path is handed to the general path beyond this size,
# so that re-joining it with each new chunk stays cheap.
_HOLD_LIMIT: Final = 64 * 1024
# The fast path checks regions of at least this many bytes at once, else goes event by event.
_MIN_REGION: Final = 512
_MAX_REGION: Final = 1 << 30
# A data value at least this long is kept as a view of the line instead of a copy.
_BIG_VALUE: Final = 64 * 1024
# Each time in a row the fast path finds nothing to pass over, it leaves one block more to the
# general path before trying again, up to this many.
_MAX_COOLDOWN: Final = 64
# How far one regular-expression run of skip_framed reads (the decoder calls it again after).
_MAX_RUN: Final = 1 << 20
# When at most this many blocks are left to count for two names or more, the scanner finds
# them by their common prefix rather than counting each name (_find_the_rest).
_FEW_LEFT: Final = 64
# How many passed-over event names the fast path counts by name (each costs one scan).
_MAX_NAMES: Final = 16
# Event names longer than this are never cached (decoded or passed over): a cache holds at
# most a few kilobytes, however long the names a stream sends.
_MAX_CACHED_NAME: Final = 64
# The decoded event types every decoder starts with; a decoder copies it before adding one.
_TYPES: Final[dict[bytes, str]] = {
    raw.encode(): raw
    for raw in (
        "",
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "ping",
        "error",
    )
}
_TYPES[b""] = "message"


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    r"""One dispatched server-sent event.

    Attributes:
        event: The event type: the value of the block's last ``event`` field, or
            ``"message"`` when the block had none or an empty one.
        data: The ``data`` fields of the block joined with ``"\n"``.
        id: The last event ID in force when the event was dispatched. It is sticky: a block
            without an ``id`` field inherits the previous one.
        retry: The reconnection time (milliseconds) set by a valid ``retry`` field of this
            event's block, or None when the block had none.

    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """Decode :attr:`data` as JSON.

        Returns:
            The decoded value.

        Raises:
            json.JSONDecodeError: The data is not valid JSON (a :class:`ValueError`).

        """
        return json.loads(self.data)


class SSEDecoder:
    r"""An incremental, WHATWG-conformant decoder of ``text/event-stream`` bytes.

    Feed it the body in chunks split anywhere; it returns the events completed by each chunk.
    It does no I/O.

    Args:
        max_event_size: When set, a block (the lines of one event, comments included, with
            their line endings but without the blank line that ends it) larger than this many
            bytes raises :class:`~usagetally.EventTooLargeError` as soon as it is seen to be
            larger, even in the middle of a line. It applies to every block, kept or not,
            and to blocks that would dispatch nothing.
        keep: When set, only events whose type is in it are returned; the others are counted
            (:attr:`events_dispatched`, event indices) but never built. Must be a collection
            of strings, not a string.
        check_type: With ``keep``, an event of another type is returned too when its data
            does not begin with ``{"type":"TYPE"`` for its own type (the form the Messages
            API sends), so that a caller that goes by the JSON ``type`` sees every event
            whose ``type`` may differ from its name. The check costs one comparison of the
            data's first bytes.
        unchecked: Event types never checked (``ping``, for a caller that drops pings by
            name, as the anthropic SDK does).
        pause_after: Event types after which a read pauses (see :meth:`feed_located`).
        pause_bytes: A read also pauses once the events it returns carry more than this
            many bytes of data (None: never).
        pass_over: Event types the caller expects not to keep, known in advance rather than
            learnt one by one (it changes no result, only how soon the pass-over starts).

    Raises:
        LocalValueError: ``max_event_size`` is negative, or ``pause_bytes`` is not None or
            an int >= 0.
        LocalTypeError: ``max_event_size`` is not an int; ``keep``, ``unchecked``,
            ``pause_after`` or ``pass_over`` is a string.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"event: ping\ndata: {}\n\ndata: he")
        [ServerSentEvent(event='ping', data='{}', id='', retry=None)]
        >>> decoder.feed(b"llo\r\r")
        [ServerSentEvent(event='message', data='hello', id='', retry=None)]

    """

    __slots__ = (
        "_block_retry",
        "_block_start",
        "_bom",
        "_bytes_fed",
        "_check",
        "_closed",
        "_cr_pending",
        "_error",
        "_held",
        "_id_buffer",
        "_index",
        "_kept",
        "_last_id",
        "_max",
        "_partial",
        "_partial_start",
        "_parts",
        "_pass_over",
        "_pause_after",
        "_pause_bytes",
        "_raw",
        "_raw_nl",
        "_raw_scan",
        "_retry",
        "_scanner",
        "_type",
        "_types",
        "_unchecked",
    )

    def __init__(
        self,
        *,
        max_event_size: int | None = None,
        keep: Collection[str] | None = None,
        check_type: bool = False,
        unchecked: Collection[str] = (),
        pause_after: Collection[str] = (),
        pause_bytes: int | None = None,
        pass_over: Collection[str] = (),
    ) -> None:
        if max_event_size is not None and type(max_event_size) is not int:
            raise LocalTypeError(f"max_event_size must be None or an int, got {max_event_size!r}")
        if max_event_size is not None and max_event_size < 0:
            raise LocalValueError(f"max_event_size must be >= 0, got {max_event_size}")
        for name, value in (
            ("unchecked", unchecked),
            ("pause_after", pause_after),
            ("pass_over", pass_over),
        ):
            if isinstance(value, str):
                raise LocalTypeError(f"{name} must be a collection of event types, not a string")
        if pause_bytes is not None and (type(pause_bytes) is not int or pause_bytes < 0):
            raise LocalValueError(f"pause_bytes must be None or an int >= 0, got {pause_bytes!r}")
        self._max = max_event_size
        self._check = check_type
        self._unchecked = _encoded(unchecked)
        self._pass_over = tuple(pass_over)
        self._pause_after = frozenset(pause_after)
        self._pause_bytes = _MAX_REGION if pause_bytes is None else pause_bytes
        self.keep = keep
        # Stream state.
        self._bom: bytes | None = b""  # leading bytes that may still be a BOM; None once decided
        self._cr_pending = False  # the last byte was a CR ending a line: skip one LF
        self._partial: list[bytes] = []  # pieces of an unterminated line
        self._partial_start = 0
        self._raw = b""  # a partial block held undecoded by the scanner
        self._raw_nl = -1  # where its first line ends, when known
        self._raw_scan = 0  # where the search for its next LF resumes
        # Block state (the spec's buffers).
        self._block_start = -1  # offset of the block's first line, -1 between blocks
        self._parts: list[bytes | memoryview] = []  # the data buffer, one item per data field
        self._type = b""  # the event type buffer
        self._block_retry: int | None = None
        self._id_buffer = ""  # the last event ID buffer
        # Results.
        self._last_id = ""  # the last event ID string, set at dispatch
        self._retry: int | None = None
        self._index = 0
        self._bytes_fed = 0
        self._closed = False
        self._error: EventTooLargeError | None = None
        self._types: dict[bytes, str] = _TYPES  # decoded event types (copied when one is added)
        # A paused read: (data, its offset, where to resume, the next CR and LF at or after it,
        # as _run has them).
        self._held: tuple[bytes, int, int, int, int] | None = None

    @property
    def keep(self) -> frozenset[str] | None:
        """The event types returned (None: every type); settable.

        A new value applies from the next read on: the next :meth:`feed`,
        :meth:`feed_located` or :meth:`resume`. The accumulator sets it to None after
        ``message_stop`` (while paused there) to see every later event.

        Raises:
            TypeError: (on setting) the value is a string.

        """
        return self._kept

    @keep.setter
    def keep(self, keep: Collection[str] | None) -> None:
        if isinstance(keep, str):
            raise LocalTypeError("keep must be a collection of event types, not a string")
        self._kept = None if keep is None else frozenset(keep)
        self._scanner = (
            None
            if self._kept is None
            else _PassOver(_scan_config(self._kept, self._check, self._unchecked, self._pass_over))
        )

    # The decoder's own tests set and call these older names; they are the public ones.
    _keep = keep

    @property
    def paused(self) -> bool:
        """Whether the last read paused, holding the rest of its chunk (see :meth:`resume`)."""
        return self._held is not None

    # -- what the caller reads ---------------------------------------------------------------

    @property
    def events_dispatched(self) -> int:
        """The number of events dispatched so far, including those not kept."""
        return self._index

    @property
    def last_event_id(self) -> str:
        """The last event ID string: the ``id`` in force at the last dispatch.

        A blank line sets it even when no event is dispatched (the block had no data).
        """
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The reconnection time (milliseconds) last set by a valid ``retry`` field, or None.

        It takes effect when the field is read, even if its block is never dispatched.
        """
        return self._retry

    @property
    def bytes_fed(self) -> int:
        """The number of bytes fed so far (a leading BOM included)."""
        return self._bytes_fed

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished event are buffered."""
        return bool(
            self._bom
            or self._partial
            or self._raw
            or self._held is not None
            or self._block_start >= 0
        )

    # -- feeding -----------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Feed the next bytes of the stream.

        Args:
            chunk: The next bytes, split anywhere (even inside a character or a CRLF).

        Returns:
            The events completed by these bytes, in order (only the kept ones when ``keep``
            is set).

        Raises:
            EventTooLargeError: A block exceeded ``max_event_size``. When events were
                completed before it in the same chunk, they are returned first and the error
                is raised by the next call. After it, every call raises it again.
            LocalUsageError: The decoder was ended, or ``chunk`` is not bytes (or a
                bytearray or memoryview).

        """
        return [event for _, _, event in self.feed_located(chunk)]

    def end(self) -> None:
        """Mark the end of the stream: an unfinished event is discarded, as the spec says.

        Calling it again does nothing; feeding after it raises.

        Raises:
            EventTooLargeError: The decoder failed earlier (see :meth:`feed`).

        """
        if self._error is not None:
            raise self._error
        self._closed = True
        self._bom = None
        self._cr_pending = False
        self._partial = []
        self._raw = b""
        self._held = None
        self._reset_block()
        # Nothing more will be decoded: let the caches go (a finished decoder may live long).
        self._types = _TYPES
        if self._scanner is not None:
            self._scanner = _PassOver(self._scanner.config)

    def feed_located(
        self, chunk: bytes | bytearray | memoryview
    ) -> list[tuple[int, int, ServerSentEvent]]:
        """Feed bytes and return the kept events with where they are; the driving interface.

        This and :meth:`resume` are how a caller drives the decoder when it must act between
        events (the usage accumulator does). A read stops early, *pauses*, right after
        returning an event whose type is in ``pause_after``, or once the events it returns
        carry more than ``pause_bytes`` bytes of data; the rest of the chunk is then held and
        :attr:`paused` is True. The caller may then change :attr:`keep` and call
        :meth:`resume`, which reads on from the very byte where the read stopped (at no cost,
        however many pauses one chunk holds) with the keep now in force, and may pause again.
        A chunk fed while paused is read after the held rest, as one stream.

        Args:
            chunk: The next bytes of the stream.

        Returns:
            ``(event_index, byte_offset, event)`` for each kept event. ``event_index`` counts
            every dispatched event from 0, kept or not; ``byte_offset`` is the offset in the
            whole stream (a leading BOM counts) of the first byte of the event's first line
            (comments and other fields of its block included, blank lines before it not).

        Raises:
            EventTooLargeError: As :meth:`feed`.
            LocalUsageError: As :meth:`feed`.

        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise LocalUsageError("SSEDecoder.feed() called after end()")
        if type(chunk) is not bytes:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise LocalTypeError(f"feed() takes bytes, got {type(chunk).__name__}")
            chunk = bytes(chunk)
        if not chunk:
            return []
        base = self._bytes_fed
        self._bytes_fed = base + len(chunk)
        data = chunk
        if self._bom is not None:
            data = self._bom + chunk
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._bom = data
                return []
            self._bom = None
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
                base = len(_BOM)
                if not data:
                    return []
            else:
                base = 0
        scanner = self._scanner
        if (
            scanner is not None
            and data.startswith(scanner.config.heads)
            and data.endswith(b"\n\n")
            and data.count(b"\n") == 3
            and self._block_start < 0
            and not (self._partial or self._raw or self._cr_pending or scanner.cooldown)
            and self._held is None
            and b"\r" not in data
            and (self._max is None or len(data) - 1 <= self._max)
        ):
            # The chunk is one whole event ``event: NAME\ndata:...\n\n`` of a name passed
            # over (its head, event line and data lead, is one of config.heads; three LFs,
            # the last two ending it), as one chunk per event brings them: what the
            # scanner's one-block path decides, without the setup of the general path.
            self._index += 1
            return []
        nl_hint = scan = cr = lf = -1
        if self._held is not None:  # the caller did not resume(): keep the rest raw
            rest, _, resume_at, _, _ = self._held
            self._held = None
            self._raw = rest[resume_at:]
            self._raw_nl = self._raw_scan = -1
        if self._partial:
            lf = data.find(b"\n")
            cr = data.find(b"\r")
            if lf < 0 and cr < 0:
                self._partial.append(data)
                limit = self._max
                if limit is not None and self._bytes_fed - self._block_start > limit:
                    return self._fail([])
                return []
            # The pieces held hold no line ending: the search in the joined line starts here.
            held = base - self._partial_start
            self._partial.append(data)
            data = b"".join(self._partial)
            base = self._partial_start
            self._partial = []
            lf = held + lf if lf >= 0 else len(data)
            cr = held + cr if cr >= 0 else len(data)
        elif self._raw:
            raw = self._raw
            data = raw + data
            base -= len(raw)
            nl_hint = self._raw_nl
            scan = self._raw_scan
            self._raw = b""
        return self._run(data, base, nl_hint, scan, cr, lf)

    _feed = feed_located  # the older name, which the decoder's own tests use

    def resume(self) -> list[tuple[int, int, ServerSentEvent]]:
        """Read on from where the last read paused, with the :attr:`keep` now in force.

        Returns:
            As :meth:`feed_located`; nothing when the decoder is not paused or has failed.

        Raises:
            EventTooLargeError: As :meth:`feed`.

        """
        held = self._held
        if held is None or self._error is not None:
            return []
        self._held = None
        data, base, p, cr, lf = held
        # The CR and LF searches go on from where they were: resuming costs nothing, however
        # many pauses one chunk holds.
        return self._run(data, base, -1, -1, cr, lf, p)

    # -- internals -------------------------------------------------------------------------

    def _run(
        self, data: bytes, base: int, nl_hint: int, scan: int, cr: int, lf: int, p: int = 0
    ) -> list[tuple[int, int, ServerSentEvent]]:
        # data[0] is at offset `base` of the stream; data[p] starts a line (or is the LF of a
        # CRLF).
        # `cr` and `lf` are the first CR and LF in data when known (else -1); `nl_hint` and
        # `scan` resume the fast path in a block held raw (else -1).
        # The block's start and data buffer live in locals here; self has them on every exit.
        out: list[tuple[int, int, ServerSentEvent]] = []
        n = len(data)
        limit = self._max
        keep = self._kept
        bs = self._block_start
        if self._cr_pending:
            self._cr_pending = False
            if data[p] == _LF:
                p += 1
                if bs >= 0 and limit is not None and base + p - bs > limit:
                    return self._fail(out)
        scanner = self._scanner
        pause = self._pause_bytes
        held = 0  # bytes of data in the events of `out`
        parts = self._parts
        types = self._types
        find = data.find
        while p < n:  # cr and lf: the next CR and LF at or after p (n when there is none)
            if cr < p:
                cr = find(b"\r", p)
                if cr < 0:
                    cr = n
            if bs < 0 and data.startswith(b"event: ", p):
                # A block ``event: NAME\ndata: VALUE\n\n`` that is returned (a kept or
                # retyped type, or every type without keep) is read in one match rather
                # than line by line: what the parser below would do with its two lines and
                # the blank line.
                nl = find(b"\n", p + 7, cr)
                name = data[p + 7 : nl] if nl >= 0 else b""
                etype = (types.get(name) or self._type_name(name)) if nl >= 0 else ""
                block = (
                    _block(data, p, min(cr, p + _BIG_VALUE))
                    if nl >= 0
                    and (
                        keep is None
                        or etype in keep
                        or (self._check and self._retyped_line(name, data, nl + 1))
                    )
                    else None  # (a block passed over is the scanner's, below)
                )
                if block is not None and (limit is None or block.end() - 1 - p <= limit):
                    value = block[1]
                    self._last_id = self._id_buffer
                    index = self._index
                    self._index = index + 1
                    event = ServerSentEvent(
                        event=etype,
                        data=str(value, "utf-8", "replace"),
                        id=self._last_id,
                        retry=None,
                    )
                    out.append((index, base + p, event))
                    held += len(value)
                    p = block.end()
                    if etype in self._pause_after or held > pause:
                        self._block_start = -1
                        if p < n:
                            self._held = (data, base, p, cr, lf)  # resuming is O(1)
                        return out
                    continue
            if scanner is not None and bs < 0:
                if scanner.cooldown:
                    scanner.cooldown -= 1
                else:
                    at = scanner.skip(data, p, cr, nl_hint, scan, limit)
                    self._index += scanner.passed
                    nl_hint = -1
                    hold = scanner.hold
                    if hold >= 0:
                        # The rest may be one more block to pass over: hold it raw for the
                        # next chunk, unless that would cost more than reading it now.
                        size = n - at
                        if size <= _HOLD_LIMIT and (limit is None or size <= limit):
                            self._raw = data[at:]
                            self._raw_nl = scanner.hold_nl - at if scanner.hold_nl >= 0 else -1
                            self._raw_scan = hold - at
                            at = n
                    elif not scanner.passed:
                        # Not the framing `skip` reads: try the others (CRLF, CR, no event
                        # line, id and comment lines).
                        at = scanner.skip_framed(data, p, limit)
                        if at > p:
                            self._index += scanner.passed
                            scanner.misses = scanner.cooldown = 0
                            if scanner.last_id is not None:
                                self._id_buffer = self._last_id = scanner.last_id.decode(
                                    "utf-8", "replace"
                                )
                            p = at
                            continue  # the search for the next CR goes on from here
                    p = at
                    if p >= n:
                        break
            if lf < p:
                lf = find(b"\n", p)
                if lf < 0:
                    lf = n
            if cr < lf:
                eol = cr
                if cr + 1 < n:
                    nxt = cr + 2 if data[cr + 1] == _LF else cr + 1
                else:
                    nxt = n
                    self._cr_pending = True
            elif lf < n:
                eol = lf
                nxt = lf + 1
            else:
                start = base + p
                if bs < 0:
                    bs = start
                self._block_start = bs
                self._partial = [data[p:]]
                self._partial_start = start
                if limit is not None and base + n - bs > limit:
                    return self._fail(out)
                return out
            if eol == p:
                # A blank line: dispatch the event.
                self._last_id = self._id_buffer
                if parts:
                    index = self._index
                    self._index = index + 1
                    etype = types.get(self._type) or self._type_name(self._type)
                    if keep is None or etype in keep or (self._check and self._retyped(parts)):
                        text = parts[0] if len(parts) == 1 else b"\n".join(parts)
                        event = ServerSentEvent(
                            event=etype,
                            data=str(text, "utf-8", "replace"),
                            id=self._last_id,
                            retry=self._block_retry,
                        )
                        out.append((index, bs, event))
                        held += len(text)
                        if etype in self._pause_after or held > pause:
                            self._parts = []
                            self._type = b""
                            self._block_retry = None
                            self._block_start = -1
                            if nxt < n:
                                self._held = (data, base, nxt, cr, lf)  # resuming is O(1)
                            return out
                    parts = self._parts = []
                self._type = b""
                self._block_retry = None
                bs = -1
            else:
                if bs < 0:
                    bs = base + p
                if data[p] == _COLON:
                    pass  # a comment
                elif data.startswith(b"data:", p, eol):
                    v = p + 5
                    if v < eol and data[v] == _SPACE:
                        v += 1
                    if eol - v < _BIG_VALUE:
                        parts.append(data[v:eol])
                    else:
                        parts.append(memoryview(data)[v:eol])  # saves copying a long line
                elif data.startswith(b"event:", p, eol):
                    v = p + 6
                    if v < eol and data[v] == _SPACE:
                        v += 1
                    self._type = data[v:eol]
                else:
                    self._field(data[p:eol])  # appends to self._parts, which is `parts`
                if limit is not None and base + nxt - bs > limit:
                    self._block_start = bs
                    return self._fail(out)
            p = nxt
        self._block_start = bs
        return out

    def _retyped_line(self, name: bytes, data: bytes, at: int) -> bool:
        # _retyped for a block whose data line starts at data[at] (``data: VALUE``).
        name = name or b"message"
        lead = b'data: {"type":"' + name + b'"'
        return name not in self._unchecked and not data.startswith(lead, at)

    def _retyped(self, parts: list[bytes | memoryview]) -> bool:
        # Whether an event that is not kept must be handed over anyway: its data does not
        # start with its own type (check_type).
        name = self._type or b"message"
        if name in self._unchecked:
            return False
        lead = b'{"type":"' + name + b'"'
        first = parts[0][: len(lead)]
        return (first.tobytes() if isinstance(first, memoryview) else first) != lead

    def _field(self, line: bytes) -> None:
        # Any field but `data:` and `event:` with their colon (those are read inline).
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._parts.append(value)
        elif name == b"event":
            self._type = value
        elif name == b"id":
            if b"\x00" not in value:
                self._id_buffer = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits, not empty
            try:
                retry = int(value.lstrip(b"0") or b"0")
            except ValueError:
                # Beyond sys.get_int_max_str_digits(); browsers ignore values that overflow.
                return
            self._retry = self._block_retry = retry

    def _type_name(self, raw: bytes) -> str:
        name = raw.decode("utf-8", "replace")
        if len(self._types) < 64 and len(raw) <= _MAX_CACHED_NAME:
            if self._types is _TYPES:
                self._types = dict(_TYPES)  # the shared one is never written
            self._types[raw] = name
        return name

    def _fail(
        self, out: list[tuple[int, int, ServerSentEvent]]
    ) -> list[tuple[int, int, ServerSentEvent]]:
        limit = self._max
        assert limit is not None
        self._error = EventTooLargeError(
            f"an event is larger than max_event_size ({limit} bytes)",
            limit=limit,
            event_index=self._index,
            byte_offset=self._block_start,
        )
        if out:
            return out  # completed events first; the error comes with the next call
        raise self._error

    def _reset_block(self) -> None:
        self._block_start = -1
        self._parts = []
        self._type = b""
        self._block_retry = None
        self._id_buffer = self._last_id


# -- the pass-over scanner -------------------------------------------------------------------
#
# What the decoder and the scanner promise each other (both are in this module):
#
# - The decoder calls `skip(data, p, stop, nl_hint, scan, limit)` only at a block boundary:
#   no partial line, empty block buffers, no pending CR; `stop` is the first CR at or after
#   `p` (or len(data)), and nothing at or beyond it is passed over (the scanner knows LF
#   framing only).
# - `skip` returns where the decoder's line parser must go on. Everything before it was whole
#   events ``event: NAME\ndata:...\n\n`` whose type is not kept and (with check_type) whose
#   data starts with ``{"type":"NAME"``: exactly what the parser would have counted and not
#   returned. `passed` is how many; the decoder adds them to its event index.
# - `hold` >= 0 says the rest from the returned position may be the start of one more such
#   event: the decoder may keep it raw for the next chunk (its own limits decide), and then
#   hands `hold_nl` (the end of its first line, or -1) and `hold` (where the LF search goes
#   on) back, relative, as `nl_hint` and `scan`.
# - When `skip` passes nothing and holds nothing, the decoder calls
#   `skip_framed(data, p, limit)` at the same boundary, which may read past `stop`: it passes
#   over the same events framed with CRLF or CR line endings, or with `id` and comment lines
#   (blocks without an event line never: their type is their data's). It returns where the
#   parser goes on, with `passed` as above and `last_id` the value (bytes) of the last `id`
#   line it passed over, or None: the decoder sets its last event ID (and ID buffer) to it,
#   as the parser would have at each of those blank lines. It holds nothing; a success
#   clears `misses` and `cooldown`.
# - `cooldown` > 0 asks the decoder not to call either for that many block boundaries (the
#   decoder counts it down): after repeated misses, trying costs more than it saves.
# - The scanner's configuration is shared between decoders of the same settings and never
#   written; what it learns (names, their order) is copied on its first write.


class _ScanConfig:
    """What a scanner is told: the kept types and the names it knows to pass over.

    Shared by the decoders of the same settings, so never written after it is made.
    """

    __slots__ = (
        "check",
        "heads",
        "keep_ascii",
        "kept_marks",
        "marks",
        "names",
        "patterns",
        "unchecked",
    )

    def __init__(
        self,
        keep_ascii: frozenset[bytes],
        check: bool,
        unchecked: frozenset[bytes],
        pass_over: Collection[str],
    ) -> None:
        self.keep_ascii = keep_ascii  # the kept types that are ASCII, as bytes
        # Where a kept event can start inside a region, for each line ending: a block naming
        # it, or a block with no event line (its type is "message", or its data's).
        self.marks = {
            eol: (
                *(eol + eol + b"event: " + k + eol for k in sorted(keep_ascii)),
                eol + eol + b"data:",
            )
            for eol in (b"\n", b"\r\n", b"\r")
        }
        self.kept_marks = self.marks[b"\n"]
        self.check = check
        self.unchecked = unchecked
        names: list[bytes] = []
        for name in pass_over:
            raw = name.encode()
            if (
                self.skippable(raw)
                and raw not in names
                and len(names) < _MAX_NAMES
                and len(raw) <= _MAX_CACHED_NAME
            ):
                names.append(raw)
        self.names = frozenset(names)  # names known to be passed over
        # b"\n\nevent: NAME\ndata:" (+ the type check) for each, and the same without the
        # blank line before.
        self.patterns = tuple(b"\n\nevent: " + n + b"\ndata:" + self.typed(n) for n in names)
        self.heads = tuple(b"event: " + n + b"\ndata:" + self.typed(n) for n in names)

    def typed(self, name: bytes) -> bytes:
        # What the data line of a passed-over event must start with after "data:".
        if self.check and name not in self.unchecked:
            return b' {"type":"' + name + b'"'
        return b""

    def skippable(self, name: bytes) -> bool:
        # Whether `event: NAME` makes a type that is not kept. Only ASCII names are judged on
        # the bytes (their decoding is the identity); an empty one means "message".
        return bool(name) and name.isascii() and name not in self.keep_ascii


_ENCODED: dict[frozenset[str], frozenset[bytes]] = {}


def _encoded(names: Collection[str]) -> frozenset[bytes]:
    # The names as bytes, one shared set per distinct collection (a few in a program).
    key = frozenset(names)
    found = _ENCODED.get(key)
    if found is None:
        found = frozenset(k.encode() for k in key)
        if len(_ENCODED) < 32:
            _ENCODED[key] = found
    return found


_CONFIGS: dict[tuple[frozenset[str], bool, frozenset[bytes], tuple[str, ...]], _ScanConfig] = {}


def _scan_config(
    keep: frozenset[str], check: bool, unchecked: frozenset[bytes], pass_over: tuple[str, ...]
) -> _ScanConfig:
    # One configuration per distinct set of settings (a few at most in a program), shared by
    # every decoder made with them; beyond 32 each decoder builds its own.
    key = (keep, check, unchecked, pass_over)
    config = _CONFIGS.get(key)
    if config is None:
        config = _build_config(*key)
        if len(_CONFIGS) < 32:
            _CONFIGS[key] = config
    return config


_Match = Callable[[bytes, int, int], "re.Match[bytes] | None"]
# A whole block of the canonical framing, read in one match (`.` is anything but LF; the
# caller bounds the match before the next CR).
_block: Final = re.compile(rb"event: .*\ndata: (.*)\n\n").match


_PREFIXES: dict[tuple[tuple[bytes, ...], tuple[bytes, ...]], bytes] = {}


def _rest_prefix(rest: tuple[bytes, ...], counted: tuple[bytes, ...]) -> bytes:
    # The common prefix of `rest`, or b"" when it is no longer than "\n\nevent: " or begins
    # a pattern of `counted` (memoised in _PREFIXES: a program has a few sets of names).
    first, last = min(rest), max(rest)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    prefix = first[:size]
    if size <= len(b"\n\nevent: ") or any(q.startswith(prefix) for q in counted):
        return b""
    return prefix


def _find_the_rest(
    data: bytes, p: int, r: int, patterns: Sequence[bytes], i: int, need: int
) -> int:
    r"""Count the occurrences of ``patterns[i:]`` in ``data[p:r]`` by searching their prefix.

    Returns -1 when their common prefix is no longer than ``\n\nevent: `` or begins one
    of ``patterns[:i]`` (the search would stop at those). Else every hit of the prefix is a
    blank line before a block: one of the patterns there counts it; any other block there
    means the region is not all passed over, and the count so far (less than ``need``) is
    returned. The search stops once ``need`` are found: by the argument of ``_pass_region``
    the patterns occur at most ``need`` more times, so the rest of the region holds none.
    """
    rest = tuple(patterns[i:])
    counted = tuple(patterns[:i])
    key = (rest, counted)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = _PREFIXES[key] = _rest_prefix(rest, counted) if len(_PREFIXES) < 64 else b""
    if not prefix:
        return -1
    size = len(prefix)
    found = 0
    find = data.find
    at = find(prefix, p, r)
    while at >= 0:
        if not data.startswith(rest, at, r):
            return found
        found += 1
        if found == need:
            return found
        at = find(prefix, at + size, r)
    return found


def _trim_kept(data: bytes, p: int, q: int, marks: tuple[bytes, ...], blank: bytes) -> int:
    """Leave the region's last blocks out while they may be kept events; return its new end.

    ``data[p:q]`` is a region of whole blocks and ``q`` the blank line that ends it (or < 0).
    A response's kept events come last (``message_delta``, ``message_stop``): a region that
    ends with them would fail its count and be counted again up to its first kept event.
    Looking back one block at a time costs only those blocks; at most four are left out.
    """
    for _ in range(4):
        if q <= p:
            return q
        prev = data.rfind(blank, p, q)
        if prev < 0 or not data.startswith(marks, prev):
            return q
        q = prev
    return q


_REGEXES: dict[tuple[bytes, tuple[bytes, ...], bool, frozenset[bytes]], _Match] = {}


def _framed_regex(
    eol: bytes, names: tuple[bytes, ...], check: bool, unchecked: frozenset[bytes]
) -> _Match:
    r"""Return the ``match`` of a pattern for a run of passed-over blocks with id or comments.

    A block: ``event: NAME`` then one ``data:`` line (``data: {"type":"NAME"`` with
    check_type, for a checked name), each line ending with ``eol``, with any ``id:`` and
    comment lines before and after the pair, then the blank line. Nothing else (no
    ``retry``, no second data or event line, nothing between the two) is matched: the line
    parser reads what is not.
    """
    key = (eol, names, check, unchecked)
    found = _REGEXES.get(key)
    if found is not None:
        return found
    e = re.escape(eol)
    # The rest of a line: `.` (anything but LF) and `[^\r]` are the fast loops of `re`, a
    # class of two bytes is ten times slower; so a line may hold a stray CR (LF or CRLF
    # framing) or LF (CR framing) here, and _framed_run refuses a run that has one.
    line = (rb"[^\r]*" if eol == b"\r" else rb".*") + e
    extra = rb"(?:(?::|id:)" + line + rb")*"  # (an id with NUL: _framed_run refuses it)
    kinds = []  # one alternative per name: its event line, then its data line's lead
    for name in sorted(names, key=len, reverse=True):
        lead = (
            rb'data:\x20\{"type":"' + re.escape(name) + b'"'
            if check and name not in unchecked
            else b"data:"
        )
        kinds.append(rb"event:\x20" + re.escape(name) + e + lead + line)
    if not kinds:
        kinds.append(rb"(?!)")  # nothing can be passed over
    block = extra + rb"(?:" + b"|".join(kinds) + rb")" + extra + e
    compiled = re.compile(rb"(?:" + block + rb")*+").match
    if len(_REGEXES) < 32:
        _REGEXES[key] = compiled
    return compiled


def _build_config(
    keep: frozenset[str], check: bool, unchecked: frozenset[bytes], pass_over: tuple[str, ...]
) -> _ScanConfig:
    keep_ascii = frozenset(k.encode() for k in keep if k.isascii())
    return _ScanConfig(keep_ascii, check, unchecked, pass_over)


class _PassOver:
    """The pass-over scanner: counts whole events that are not kept, on the bytes."""

    __slots__ = (
        "config",
        "cooldown",
        "framed",
        "hold",
        "hold_nl",
        "last_id",
        "misses",
        "names",
        "own",
        "passed",
        "patterns",
        "region",
    )

    def __init__(self, config: _ScanConfig) -> None:
        self.config = config
        self.names: frozenset[bytes] | set[bytes] = config.names
        self.patterns: tuple[bytes, ...] | list[bytes] = config.patterns
        self.own = False  # names and patterns are this scanner's copies
        self.region = _MAX_REGION
        self.misses = self.cooldown = 0
        self.passed = 0
        self.hold = self.hold_nl = -1
        self.last_id: bytes | None = None  # the last id line skip_framed passed over
        # skip_framed's patterns, by line ending, with len(names) when made (made when first
        # needed: most streams never need them, and a decoder is kept per in-flight stream).
        self.framed: dict[bytes, tuple[int, tuple[bytes, ...]]] | None = None

    def _owned(self) -> tuple[set[bytes], list[bytes]]:
        names, patterns = self.names, self.patterns
        if not self.own:
            self.names = names = set(names)
            self.patterns = patterns = list(patterns)
            self.own = True
        assert isinstance(names, set)
        assert isinstance(patterns, list)
        return names, patterns

    def learn(self, name: bytes) -> bool:
        """Whether ``event: NAME`` makes a type that is not kept; remembers it if so."""
        config = self.config
        if not config.skippable(name):
            return False
        if len(self.names) < _MAX_NAMES and len(name) <= _MAX_CACHED_NAME:
            names, patterns = self._owned()
            names.add(name)
            patterns.append(b"\n\nevent: " + name + b"\ndata:" + config.typed(name))
        return True

    def skip(
        self, data: bytes, p: int, stop: int, nl_hint: int, scan: int, limit: int | None
    ) -> int:
        r"""Pass over events of the form ``event: NAME\ndata:...\n\n`` that are not kept.

        See the contract above the class. ``nl_hint`` and ``scan`` resume the search in a
        block held raw before (-1 when there is none).
        """
        n = len(data)
        find = data.find
        startswith = data.startswith
        config = self.config
        check = config.check
        region = self.region
        count = 0
        hold = -1  # when >= 0: the rest may be held raw, resuming the LF search there
        nl = -1
        while True:
            while p < stop and data[p] == _LF:
                p += 1  # blank lines between blocks dispatch nothing
            if p >= stop:
                break
            nl = -1
            if not startswith(b"event: ", p):
                if stop == n and n - p < 7 and b"event: ".startswith(data[p:]):
                    hold = n
                break
            if region >= _MIN_REGION and scan < 0 and stop - p > _MIN_REGION:
                end = min(stop, p + region)
                if limit is not None:
                    end = min(end, p + limit + 1)
                q = _trim_kept(data, p, data.rfind(b"\n\n", p, end), config.kept_marks, b"\n\n")
                if q > p:
                    passed = self._pass_region(data, p, q + 2)
                    if passed > 0:
                        count += passed
                        p = q + 2
                        region = min(2 * region, _MAX_REGION)
                        continue
                    if passed < 0:
                        break  # the first block is not of the form
                    # Something further on is not passed over: most often a kept event.
                    # Pass over everything before the first one in one go if that works.
                    first = self._first_kept(data, p, q + 2)
                    if first > p:
                        passed = self._pass_region(data, p, first + 2)
                        if passed > 0:
                            count += passed
                            # Next time look about as far as this run went: a region scanned
                            # in vain then costs at most twice what was passed over.
                            region = max(2 * (first + 2 - p), _MIN_REGION)
                            p = first + 2
                            continue
                    # Something odd (a comment, an id line): look closer, after one block.
                    region = (q + 2 - p) // 2
            # One block at a time (it starts with "event: ", checked above).
            if nl_hint >= 0:
                nl = nl_hint
                nl_hint = -1
            else:
                nl = find(b"\n", p + 7 if scan < p + 7 else scan, stop)
            if nl < 0:
                if stop == n:
                    hold = n
                break
            name = data[p + 7 : nl]
            if name not in self.names and not self.learn(name):
                break
            lead = b"data:" + config.typed(name) if check else b"data:"
            if not startswith(lead, nl + 1):
                if stop == n and n - nl - 1 < len(lead) and lead.startswith(data[nl + 1 :]):
                    hold = n
                break
            e = find(b"\n", nl + 6 if scan < nl + 6 else scan, stop)
            if e < 0 or e + 1 >= stop:
                if stop == n:
                    hold = n if e < 0 else e
                break
            if data[e + 1] != _LF or (limit is not None and e + 1 - p > limit):
                break
            count += 1
            p = e + 2
            scan = -1
            if region < _MIN_REGION:
                region = _MIN_REGION
        self.passed = count
        self.region = region
        if count:
            self.misses = 0
        elif hold < 0:
            # Nothing passed over: after repeated misses (a stream whose events all have an
            # id line, say) try less often; the general path gives the same result anyway.
            self.misses = self.cooldown = min(self.misses + 1, _MAX_COOLDOWN)
        self.hold = hold
        self.hold_nl = nl if hold >= 0 else -1
        return p

    def _first_kept(self, data: bytes, p: int, r: int) -> int:
        """Return where the first blank line before a possibly kept block is, or -1."""
        first = -1
        find = data.find
        for mark in self.config.kept_marks:
            at = find(mark, p, r if first < 0 else first)
            if at >= 0:
                first = at
        return first

    def _pass_region(self, data: bytes, p: int, r: int) -> int:
        r"""Count the events of ``data[p:r]`` if it is made only of events that can be skipped.

        Returns their number; -1 when its first block is not of that form; 0 when something
        further on is not. ``data[p:r]`` starts a block, ends with ``\n\n`` and holds no CR;
        it is at most ``max_event_size + 1`` bytes long.

        Why counting suffices: let A = (LF count) / 3. The patterns are prefix-free and hold
        no ``\n\n`` but their first two bytes, so their occurrences are at distinct places.
        Each ``\n\nevent: NAME\ndata:`` is a blank line followed by the pair of lines
        ``event: NAME`` then ``data:...``; A - 1 of them, the first two lines (checked
        directly, at the region's start, so not among them) and the blank line the region
        ends with are 3A distinct lines: all of them. So every line is one of these, each
        event line is followed by its data line, each blank line but the last by an event
        line, and no two blank lines are in a row: the region is A blocks of exactly
        ``event: NAME\ndata:...\n\n``. (One pass fewer than also counting the blank lines.)
        """
        nl = data.find(b"\n", p, r)
        if not data.startswith(b"event: ", p, nl):
            return -1
        name = data[p + 7 : nl]
        if name not in self.names and not self.learn(name):
            return -1
        if not data.startswith(b"data:" + self.config.typed(name), nl + 1):
            return -1
        blocks, rest = divmod(data.count(b"\n", p, r), 3)
        if rest:
            return 0
        need = blocks - 1
        patterns = self.patterns
        best = best_at = 0
        for i, pattern in enumerate(patterns):
            if not need:
                break
            if i and need <= _FEW_LEFT and i + 1 < len(patterns) and r - p > _BIG_VALUE:
                # Few blocks are left for several names in a large region: one search for
                # their common prefix instead of a count for each (tool-use streams: start and
                # stop). (In a small region a count costs less than setting the search up.)
                found = _find_the_rest(data, p, r, patterns, i, need)
                if found >= 0:
                    need -= found
                    break
            found = data.count(pattern, p, r)
            need -= found
            if found > best:
                best, best_at = found, i
        if best_at:
            _, own = self._owned()
            own.insert(0, own.pop(best_at))  # the most frequent name first
        return 0 if need else blocks

    # -- other framings: skip_framed -----------------------------------------------------

    def skip_framed(self, data: bytes, p: int, limit: int | None) -> int:
        r"""Pass over whole events at ``p`` framed otherwise than :meth:`skip` reads them.

        The framings: CRLF or CR line endings (one kind through the region), and blocks with
        ``id`` or comment lines. (Blocks without an event line are never passed over: their
        type is their data's, which only decoding them tells.) See the contract above the
        class: it returns where the line parser goes on, with :attr:`passed` the number of
        events passed over and :attr:`last_id` the value of the last ``id`` line among them
        (None when there was none). It never holds anything.
        """
        self.passed = 0
        self.last_id = None
        n = len(data)
        end = n if limit is None else min(n, p + limit + 1)
        cr = data.find(b"\r", p, end)
        lf = data.find(b"\n", p, end if cr < 0 else cr + 2)
        if cr >= 0 and (lf < 0 or cr < lf):
            if cr + 1 >= n:
                return p
            eol = b"\r\n" if data[cr + 1] == _LF else b"\r"
            first = cr
        elif lf >= 0:
            eol = b"\n"
            first = lf
        else:
            return p
        if data.startswith(b"event: ", p):
            if eol == b"\n":
                return p  # skip's own framing: it could not pass this over either
            found = self._framed_region(data, p, end, eol, data[p + 7 : first])
        elif data.startswith((b":", b"id:"), p):
            return self._framed_run(data, p, end, eol)
        else:
            return p
        if found is None:
            return p
        self.passed, at = found
        return at

    def _framed_region(
        self, data: bytes, p: int, end: int, eol: bytes, name: bytes
    ) -> tuple[int, int] | None:
        # (events, end) of the longest region from p made of passed-over blocks of this form
        # that ends before `end`, or (failing that) of the region before its first kept
        # block; None when there is none.
        if name not in self.names and not self.learn(name):
            return None
        blank = eol + eol
        q = _trim_kept(data, p, data.rfind(blank, p, end), self.config.marks[eol], blank)
        if q <= p:
            return None
        r = q + len(blank)
        passed = self._framed_count(data, p, r, eol, name)
        if passed > 0:
            return passed, r
        if passed < 0:
            return None
        first = -1
        for mark in self.config.marks[eol]:
            at = data.find(mark, p, r if first < 0 else first)
            if at >= 0:
                first = at
        if first > p:
            r = first + len(blank)
            passed = self._framed_count(data, p, r, eol, name)
            if passed > 0:
                return passed, r
        return None

    def _framed_count(self, data: bytes, p: int, r: int, eol: bytes, name: bytes) -> int:
        r"""Count the events of ``data[p:r]`` if it is made only of blocks that can be skipped.

        The blocks are ``event: NAME`` E ``data:...`` E E, E the line ending ``eol``;
        ``data[p:r]`` starts a block and ends with E E.
        Returns their number; -1 when the first block is not of that form; 0 when something
        further on is not.

        Why counting suffices. CR: the region holds no LF, so its lines are its 3A CRs. Then
        the argument of :meth:`_pass_region` holds with CR for LF: the patterns E E
        ``event: NAME`` E ``data:`` (+ the type check) hold no E E but their first, are
        prefix-free, and so occur at distinct places; A - 1 of them, the first block's two
        lines (checked directly) and the blank line the region ends with are all 3A lines,
        so the region is A blocks of exactly that form. CRLF: the region holds 3A LFs and
        3A CRs. The same A - 1 patterns, the first block's event line and the CRLF CRLF the
        region ends with are 3A CRLFs at distinct places: every CR and every LF is in one
        of them, so no line ends otherwise, the lines are exactly those, and the argument
        above holds with CRLF for LF.
        """
        head = b"event: " + name + eol + b"data:" + self.config.typed(name)
        if not data.startswith(head, p):
            return -1
        if eol == b"\r\n":
            lines = data.count(b"\n", p, r)  # (single bytes count fastest)
            if data.count(b"\r", p, r) != lines:
                return 0
        else:
            if data.find(b"\n", p, r) >= 0:
                return 0
            lines = data.count(b"\r", p, r)
        blocks, rest = divmod(lines, 3)
        if rest or not blocks:
            return 0
        need = blocks - 1
        for pattern in self._framed_patterns(eol):
            if not need:
                break
            need -= data.count(pattern, p, r)
        return 0 if need else blocks

    def _framed_run(self, data: bytes, p: int, end: int, eol: bytes) -> int:
        # Blocks with id or comment lines: one regular expression matches the run of
        # passed-over blocks from p (in C, but byte by byte: slower than counting).
        config = self.config
        match = _framed_regex(eol, tuple(sorted(self.names)), config.check, config.unchecked)
        found = match(data, p, min(end, p + _MAX_RUN))
        stop = p if found is None else found.end()
        if stop == p:
            return p
        # Every line ending in the run must be `eol`, and no id may hold a NUL (an id line
        # with one is ignored by the spec): see _framed_regex. (A NUL anywhere refuses it.)
        if data.find(b"\x00", p, stop) >= 0:
            return p
        if eol == b"\n":
            stray = data.find(b"\r", p, stop) >= 0
        elif eol == b"\r":
            stray = data.find(b"\n", p, stop) >= 0
        else:  # every LF of the run ends a line with its CR: a CR more is a stray one
            stray = data.count(b"\r", p, stop) != data.count(b"\n", p, stop)
        if stray:
            return p
        self.passed = data.count(eol + eol, p, stop)
        at = data.rfind(eol + b"id:", p, stop)
        start = at + len(eol) + 3 if at >= 0 else p + 3 if data.startswith(b"id:", p) else -1
        if start >= 0:
            value = data[start : data.find(eol, start, stop)]
            self.last_id = value[1:] if value[:1] == b" " else value
        return stop

    def _framed_patterns(self, eol: bytes) -> tuple[bytes, ...]:
        # The patterns of _framed_count for this line ending, remade when a name is learnt.
        if self.framed is None:
            self.framed = {}
        made = self.framed.get(eol)
        if made is not None and made[0] == len(self.names):
            return made[1]
        blank = eol + eol
        typed = self.config.typed
        # In the order of `skip`'s patterns (the most frequent name first, so that the count
        # is made up soonest), not the names' set order, which changes with the hash seed.
        names = [pattern[9 : pattern.index(b"\n", 9)] for pattern in self.patterns]
        patterns = tuple(blank + b"event: " + n + eol + b"data:" + typed(n) for n in names)
        self.framed[eol] = (len(self.names), patterns)
        return patterns
