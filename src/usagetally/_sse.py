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
from collections.abc import Collection
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
# How many passed-over event names the fast path counts by name (each costs one scan).
_MAX_NAMES: Final = 16
# Event names longer than this are never cached (decoded or passed over): a cache holds at
# most a few kilobytes, however long the names a stream sends.
_MAX_CACHED_NAME: Final = 64


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

    Raises:
        LocalValueError: ``max_event_size`` is negative.
        LocalTypeError: ``max_event_size`` is not an int.
        LocalTypeError: ``keep`` is a string.

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"event: ping\ndata: {}\n\ndata: he")
        [ServerSentEvent(event='ping', data='{}', id='', retry=None)]
        >>> decoder.feed(b"llo\r\r")
        [ServerSentEvent(event='message', data='hello', id='', retry=None)]

    """

    def __init__(
        self,
        *,
        max_event_size: int | None = None,
        keep: Collection[str] | None = None,
        check_type: bool = False,
        unchecked: Collection[str] = (),
    ) -> None:
        if max_event_size is not None and type(max_event_size) is not int:
            raise LocalTypeError(f"max_event_size must be None or an int, got {max_event_size!r}")
        if max_event_size is not None and max_event_size < 0:
            raise LocalValueError(f"max_event_size must be >= 0, got {max_event_size}")
        if isinstance(unchecked, str):
            raise LocalTypeError("unchecked must be a collection of event types, not a string")
        self._max = max_event_size
        self._check = check_type
        self._unchecked = frozenset(k.encode() for k in unchecked)
        self._keep = keep
        # Stream state.
        self._bom: bytes | None = b""  # leading bytes that may still be a BOM; None once decided
        self._cr_pending = False  # the last byte was a CR ending a line: skip one LF
        self._partial: list[bytes] = []  # pieces of an unterminated line
        self._partial_start = 0
        self._raw = b""  # a partial block held undecoded by the fast path
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
        self._types: dict[bytes, str] = {b"": "message"}  # decoded event types
        self._region = _MAX_REGION
        self._misses = self._cooldown = 0
        # Internal: after a kept event of one of these types, _feed returns at once and holds
        # the rest of the chunk, so the caller can change `keep` before it is read (_resume).
        self._until: frozenset[str] = frozenset()
        # Internal: _feed also returns once the events it holds carry more data than this, so
        # a caller that resumes never holds more than that many bytes of events at once.
        self._pause_bytes = _MAX_REGION
        # (data, its offset, where to resume, the next CR and LF at or after it, as _run has them)
        self._held: tuple[bytes, int, int, int, int] | None = None

    @property
    def _keep(self) -> frozenset[str] | None:
        # Internal: the accumulator sets it (to None, to see every event after message_stop).
        # It applies from the next chunk on.
        return self._kept

    @_keep.setter
    def _keep(self, keep: Collection[str] | None) -> None:
        if isinstance(keep, str):
            raise LocalTypeError("keep must be a collection of event types, not a string")
        self._kept = None if keep is None else frozenset(keep)
        self._keep_ascii = frozenset(k.encode() for k in self._kept or () if k.isascii())
        # Where a kept event can start inside a region: a block naming it, or a block with no
        # event line (its type is "message"). Used to pass over a region up to the first one.
        self._kept_marks = (
            *(b"\n\nevent: " + k + b"\n" for k in sorted(self._keep_ascii)),
            b"\n\ndata:",
        )
        self._names: set[bytes] = set()  # event names known to be passed over
        # b"\nevent: NAME\ndata:" for each of them, followed by b' {"type":"NAME"' when the
        # type is checked.
        self._patterns: list[bytes] = []

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
        return [event for _, _, event in self._feed(chunk)]

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
        self._types = {b"": "message"}
        self._names = set()
        self._patterns = []

    def _feed(
        self, chunk: bytes | bytearray | memoryview
    ) -> list[tuple[int, int, ServerSentEvent]]:
        """Feed bytes and return the kept events with where they are.

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
        nl_hint = scan = cr = lf = -1
        if self._held is not None:  # the caller did not _resume(): keep the rest raw
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

    def _resume(self) -> list[tuple[int, int, ServerSentEvent]]:
        """Read what ``_feed`` held after an ``_until`` event, with the current ``keep``.

        Returns:
            As :meth:`_feed`.

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
        fast = keep is not None
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
            if fast and bs < 0:
                if self._cooldown:
                    self._cooldown -= 1
                else:
                    p = self._skip(data, p, cr, nl_hint, scan)
                    nl_hint = -1
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
                        if etype in self._until or held > pause:
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
            self._types[raw] = name
        return name

    def _skippable(self, name: bytes) -> bool:
        # Whether `event: NAME` makes a type that is not kept. Only ASCII names are judged on
        # the bytes (their decoding is the identity); an empty one means "message".
        if not name or not name.isascii() or name in self._keep_ascii:
            return False
        if len(self._names) < _MAX_NAMES and len(name) <= _MAX_CACHED_NAME:
            self._names.add(name)
            self._patterns.append(b"\nevent: " + name + b"\ndata:" + self._typed(name))
        return True

    def _typed(self, name: bytes) -> bytes:
        # What the data line of a passed-over event must start with after "data:".
        if self._check and name not in self._unchecked:
            return b' {"type":"' + name + b'"'
        return b""

    def _skip(self, data: bytes, p: int, stop: int, nl_hint: int, scan: int) -> int:
        r"""Pass over events of the form ``event: NAME\ndata:...\n\n`` that are not kept.

        Called at a block boundary (no partial line, empty buffers, no pending CR); ``stop``
        is the first CR at or after ``p`` (or ``len(data)``): nothing at or beyond it is
        passed over. Returns where the general path must continue, or ``len(data)`` when the
        rest was held raw for the next chunk. ``nl_hint`` and ``scan`` resume the search in a
        block held raw before (-1 when there is none).
        """
        n = len(data)
        find = data.find
        startswith = data.startswith
        limit = self._max
        names = self._names
        region = self._region
        count = 0
        hold = -1  # when >= 0: hold data[p:] raw, resuming the LF search there
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
                q = data.rfind(b"\n\n", p, end)
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
            if name not in names and not self._skippable(name):
                break
            lead = b"data:" + self._typed(name) if self._check else b"data:"
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
        self._index += count
        self._region = region
        if count:
            self._misses = 0
        elif hold < 0:
            # Nothing passed over: after repeated misses (a stream whose events all have an
            # id line, say) try less often; the general path gives the same result anyway.
            self._misses = self._cooldown = min(self._misses + 1, _MAX_COOLDOWN)
        if hold >= 0:
            size = n - p
            if size <= _HOLD_LIMIT and (limit is None or size <= limit):
                self._raw = data[p:]
                self._raw_nl = nl - p if nl >= 0 else -1
                self._raw_scan = hold - p
                return n
        return p

    def _first_kept(self, data: bytes, p: int, r: int) -> int:
        """Return where the first blank line before a possibly kept block is, or -1."""
        first = -1
        find = data.find
        for mark in self._kept_marks:
            at = find(mark, p, r if first < 0 else first)
            if at >= 0:
                first = at
        return first

    def _pass_region(self, data: bytes, p: int, r: int) -> int:
        r"""Count the events of ``data[p:r]`` if it is made only of events that can be skipped.

        Returns their number; -1 when its first block is not of that form; 0 when something
        further on is not. ``data[p:r]`` starts a block, ends with ``\n\n`` and holds no CR;
        it is at most ``max_event_size + 1`` bytes long.

        Why counting suffices: let A = (LF count) / 3. Every ``\n\nevent: `` marks a blank
        line followed by an ``event: `` line, and the region ends with a blank line, so there
        are at least A blank lines when that count is A - 1. Every ``\nevent: NAME\ndata:``
        (and the first two lines, checked directly) is a pair of lines ``event: NAME`` then
        ``data:...``; A such pairs take 2A lines. With 3A lines in all, the other A lines are
        exactly the blank ones, none two in a row, the first line is an ``event`` line and the
        last is blank: the region is A blocks of exactly ``event: NAME\ndata:...\n\n``.
        """
        nl = data.find(b"\n", p, r)
        if not data.startswith(b"event: ", p, nl):
            return -1
        name = data[p + 7 : nl]
        if name not in self._names and not self._skippable(name):
            return -1
        if not data.startswith(b"data:" + self._typed(name), nl + 1):
            return -1
        blocks, rest = divmod(data.count(b"\n", p, r), 3)
        if rest or data.count(b"\n\nevent: ", p, r) != blocks - 1:
            return 0
        need = blocks - 1
        patterns = self._patterns
        best = best_at = 0
        for i, pattern in enumerate(patterns):
            if not need:
                break
            found = data.count(pattern, p, r)
            need -= found
            if found > best:
                best, best_at = found, i
        if best_at:
            patterns.insert(0, patterns.pop(best_at))  # the most frequent name first
        return 0 if need else blocks

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
