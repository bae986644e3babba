"""The usage accumulator: events in, one exact final usage out.

Rules (docs/semantics.md, section 4); everything that affects the result lives here, except
the consistency checks, which only report (``_checks.py``):

1. The first usage-bearing event must be ``message_start``; its usage is the starting snapshot.
2. Each ``message_delta`` overwrites every usage field it carries; absent or null fields keep
   their value; ``iterations`` replaces the whole list. Counts are cumulative: never added.
3. ``ping`` and unknown events are skipped; ``content_block_*`` events are never JSON-decoded
   (the SSE decoder passes over them), which is where the speed comes from.
4. An event is what its JSON ``type`` says, as in the anthropic SDK's event loop, except that
   one named ``ping`` is passed over unread and one named ``error`` is an error event whatever
   its data. Events whose data starts with their own name as ``{"type":"NAME"`` (the form the
   API sends) are passed over without decoding; the decoder hands over any other.
5. A stream is complete after at least one ``message_delta`` followed by ``message_stop``, or
   after a ``message_start`` whose message is already finished (a non-null ``stop_reason``, as
   the API sends with programmatic tool calling) followed by ``message_stop``. Only ``ping``
   may follow ``message_stop``.
6. Every failure raises a :class:`StreamError` naming the event index and byte offset and
   carrying the usage accumulated before the failing event; the failure is sticky.
7. Consistency checks (diagnostics) run on each delta (reported iterations changing or
   disappearing, cumulative counts going down between deltas) and on the final usage (top
   level against iterations; the cache TTL split against ``cache_creation_input_tokens``).
   The checks themselves are the pure functions of ``_checks.py``, which return findings;
   this module applies the policy to them (``_report``: collect and log, or raise). The
   final usage keeps what the wire said: a TTL split left stale by a delta (the API never
   re-sends it) is kept as sent and reported as ``cache_split_stale``, a note that the
   ``"strict"`` policy does not refuse; :func:`~usagetally.cache_writes` prices it.
8. Diagnostics are kept on the accumulator and logged to the ``usagetally`` logger; they are
   not Python warnings (the warnings registry would keep one entry per distinct text).

The rules are explained, with their sources, in ``docs/semantics.md``.

This module is pure: no I/O and no anyio.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._checks import check_delta, check_final
from ._converter import default_converter, make_converter, merge_unknown_fields
from ._errors import (
    EventOrderError,
    IncompleteStreamError,
    InconsistentUsageError,
    LocalTypeError,
    LocalUsageError,
    LocalValueError,
    MalformedEventError,
    StreamError,
    StreamErrorEvent,
    UsageDiagnostic,
    UsageValidationError,
)
from ._limits import check_event_json
from ._models import BetaMessageDeltaUsage, BetaUsage
from ._sdk_events import as_event_mapping
from ._sse import SSEDecoder
from ._wire import (
    COUNT_FIELDS,
    ERROR_EVENT,
    NO_USAGE_EVENTS,
    STOP_EVENT,
    UNCHECKED_EVENTS,
    UNTYPED_EVENT,
    USAGE_EVENTS,
)

if TYPE_CHECKING:
    import logging

    import cattrs

__all__ = ["Policy", "UsageAccumulator"]

Policy = Literal["warn", "strict", "off"]
"""How consistency diagnostics are handled: collected and warned, raised, or not checked."""

# Events the decoder hands over; every other named event (ping included) is passed over
# unread. After message_stop the decoder pauses, and from there on hands over every event,
# since only ping may follow.
# (The names are the catalogue's, _wire.py.)
_USAGE_EVENTS = frozenset({*USAGE_EVENTS, STOP_EVENT, ERROR_EVENT})
_KEPT = _USAGE_EVENTS | {UNTYPED_EVENT}
_PASSED_OVER = NO_USAGE_EVENTS
_PAUSE_AFTER = frozenset({STOP_EVENT, UNTYPED_EVENT})
_CUMULATIVE = COUNT_FIELDS
_strict: list[cattrs.Converter] = []  # the strict converter, built by the first strict one


def _strict_converter() -> cattrs.Converter:
    # Built on first use: most programs never ask for strict types, and building a
    # converter is a sizeable part of `import usagetally`. Two threads building it at once
    # build two equal converters; the first one kept is used from then on.
    if not _strict:
        _strict.append(make_converter(strict=True))
    return _strict[0]


# What a delta's usage can carry as known fields, and the fields only BetaUsage knows.
_DELTA_FIELDS = frozenset(a.name for a in attrs.fields(BetaMessageDeltaUsage)) - {"unknown_fields"}
_USAGE_FIELDS = frozenset(a.name for a in attrs.fields(BetaUsage)) - {"unknown_fields"}
_USAGE_NAMES = tuple(a.name for a in attrs.fields(BetaUsage))
_usage_values = operator.attrgetter(*_USAGE_NAMES)
_HEAD = 64 * 1024  # how much of a body is kept to describe it when it holds no events
# Diagnostics that describe normal API behaviour: collected and logged (at INFO), never
# refused under the "strict" policy.
NOTES = frozenset({"cache_split_stale"})
_loggers: list[logging.Logger] = []  # the "usagetally" logger, once a diagnostic is logged


def _logger() -> logging.Logger:
    # `logging` is imported, and the library's NullHandler added (a library logs only where
    # the application says), when the first diagnostic is logged: importing logging is a
    # sizeable part of `import usagetally`, and most streams log nothing.
    if not _loggers:
        import logging

        log = logging.getLogger("usagetally")
        if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
            log.addHandler(logging.NullHandler())
        _loggers.append(log)
    return _loggers[0]


class UsageAccumulator:
    r"""Accumulates the usage of one Messages API stream, from bytes or from events.

    Feed it the raw bytes of the stream with :meth:`feed` (any chunking gives the same
    result), or the events' JSON with :meth:`feed_event`, or decoded server-sent events with
    :meth:`feed_sse`; one kind per accumulator. Then call :meth:`finish` for the final usage.

    Args:
        policy: What to do with consistency diagnostics: ``"warn"`` (default) collects them
            in :attr:`diagnostics` and logs each to the ``usagetally`` logger (WARNING);
            ``"strict"`` raises :class:`InconsistentUsageError` for an inconsistency (notes
            of normal API behaviour, such as ``cache_split_stale``, are still collected and
            logged at INFO); ``"off"`` skips the checks.
        strict_types: Refuse unknown usage fields and iteration types instead of keeping them.
        max_event_size: Largest event, in bytes, accepted from :meth:`feed` (None: no limit).
            A non-negative ``int``.

    Raises:
        LocalUsageError: An argument is not one of the values described.

    >>> acc = UsageAccumulator()
    >>> acc.feed(b'event: message_start\ndata: {"type":"message_start","message":'
    ...          b'{"usage":{"input_tokens":10,"output_tokens":1}}}\n\n')
    >>> acc.feed(b'event: message_delta\ndata: {"type":"message_delta","usage":'
    ...          b'{"output_tokens":42}}\n\nevent: message_stop\ndata: {}\n\n')
    >>> acc.finish()
    BetaUsage(input_tokens=10, output_tokens=42, ...)

    """

    def __init__(
        self,
        *,
        policy: Policy = "warn",
        strict_types: bool = False,
        max_event_size: int | None = None,
    ) -> None:
        if policy not in ("warn", "strict", "off"):
            raise LocalValueError(f"policy must be 'warn', 'strict' or 'off', got {policy!r}")
        if max_event_size is not None and (type(max_event_size) is not int or max_event_size < 0):
            bad = LocalTypeError if type(max_event_size) is not int else LocalValueError
            raise bad(f"max_event_size must be None or an int >= 0, got {max_event_size!r}")
        self._policy = policy
        self._converter = _strict_converter() if strict_types else default_converter()
        # The decoder's driving interface is SSEDecoder.feed_located / paused / resume / keep
        # (documented there). It pauses after message_stop and after untyped events (one may
        # be message_stop), so that `keep` can be widened before the next event is read; and
        # whenever 64 kB of events are waiting, so that a chunk holding many deltas never
        # holds more than that many decoded at once. The names it will pass over most are
        # known now rather than learnt one by one.
        self._decoder = SSEDecoder(
            max_event_size=max_event_size,
            keep=_KEPT,
            check_type=True,
            unchecked=UNCHECKED_EVENTS,
            pause_after=_PAUSE_AFTER,
            pause_bytes=64 * 1024,
            pass_over=_PASSED_OVER,
        )
        self._mode: str | None = None
        self._index = 0  # next event index for feed_event / feed_sse
        self._usage: BetaUsage | None = None
        self._model: str | None = None
        self._deltas = 0
        self._finished_at_start = False  # message_start's message had a stop_reason
        self._start_cache_creation: int | None = None
        self._stopped_at: int | None = None
        self._delta_counts: dict[str, int] = {}
        self._diagnostics: list[UsageDiagnostic] = []
        self._error: StreamError | None = None
        self._final: BetaUsage | None = None
        self._busy = False  # a feed call is running: another one (re-entrant) is refused
        # The first bytes fed, kept until message_start, to say what a body that holds no
        # event stream is (empty, a JSON error response, JSON lines, gzip, binary).
        self._head: bytes | None = b""

    # -- what the caller reads -------------------------------------------------------------

    @property
    def usage(self) -> BetaUsage | None:
        """The usage accumulated so far (None before ``message_start``).

        Before the stream is complete, ``output_tokens`` may still be the placeholder sent
        on ``message_start``; :attr:`complete` tells.
        """
        return self._final if self._final is not None else self._usage

    @property
    def model(self) -> str | None:
        """The model named by ``message_start`` (None if it named none or has not come)."""
        return self._model

    @property
    def complete(self) -> bool:
        """Whether the stream is complete.

        Complete means a ``message_delta`` (or a ``message_start`` whose message was already
        finished) and then ``message_stop``.
        """
        return self._stopped_at is not None and self._has_final_counts() and self._error is None

    @property
    def error(self) -> StreamError | None:
        """The error that stopped this stream, if any (it is raised again on each call)."""
        return self._error

    @property
    def diagnostics(self) -> list[UsageDiagnostic]:
        """The diagnostics collected so far, in order (notes included under ``"strict"``)."""
        return list(self._diagnostics)

    @property
    def events_seen(self) -> int:
        """How many events have been dispatched so far (passed-over ones included)."""
        if self._mode == "bytes":
            return self._decoder.events_dispatched
        return self._index

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the stream, split anywhere.

        Args:
            chunk: Bytes of the ``text/event-stream`` body.

        Raises:
            StreamError: The stream sent something that cannot be accepted; ``partial``
                holds the usage accumulated before it.
            LocalUsageError: ``chunk`` is not bytes (or a bytearray or memoryview), events
                were fed before, the stream was finished, or a feed call of this accumulator
                is running (a re-entrant call, such as from a logging handler or a warning
                hook, would be applied out of byte order).

        """
        if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise LocalTypeError(f"feed() takes bytes, got {type(chunk).__name__}")
        if self._busy:
            self._check_not_busy()
        if self._mode != "bytes" or self._error is not None or self._final is not None:
            self._enter("bytes")  # the checks, only when one may fail or the mode is unset
        head = self._head
        if head is not None:
            if self._usage is not None:
                self._head = None
            elif len(head) < _HEAD:
                self._head = head + bytes(chunk[: _HEAD - len(head)])
        decoder = self._decoder
        self._busy = True
        try:
            dispatched = decoder.feed_located(chunk)
            if not dispatched and not decoder.paused:
                return  # a chunk of events passed over (the finally clause still runs)
            while True:
                for index, offset, sse in dispatched:
                    self._dispatch_sse(sse.event, sse.data, index, offset)
                if self._stopped_at is not None and decoder.keep is not None:
                    decoder.keep = None  # from message_stop on, see every event
                if not decoder.paused:
                    break
                dispatched = decoder.resume()
            if self._head is not None and self._usage is not None:
                self._head = None  # only a body without message_start is described by it
        except StreamError as exc:
            if exc is not self._error:
                raise self._fail(exc) from None
            raise
        finally:
            self._busy = False

    def feed_sse(self, event: str, data: str) -> None:
        """Feed one server-sent event already decoded (for example by httpx-sse).

        Args:
            event: The SSE event name (``"message"`` or ``""`` when the block had none).
            data: The event's data.

        Raises:
            StreamError: As :meth:`feed`.
            LocalUsageError: ``event`` or ``data`` is not a string, or as :meth:`feed`.

        """
        bad: object = data if isinstance(event, str) else event
        if not isinstance(bad, str):
            raise LocalTypeError(f"feed_sse() takes two strings, got a {type(bad).__name__}")
        self._check_not_busy()
        self._enter("events")
        index = self._index
        self._index += 1
        self._busy = True
        try:
            self._dispatch_sse(event or "message", data, index, None)
        finally:
            self._busy = False

    def feed_skipped(self, event: str) -> None:
        """Count one event that carries no usage, without reading it.

        For callers that already know an event's type and that it carries no usage (a
        ``content_block_*`` event or ``ping``): cheaper than :meth:`feed_event`, with the same
        result. After ``message_stop`` anything but ``ping`` is refused, as ever.

        Args:
            event: The event's type.

        Raises:
            StreamError: As :meth:`feed` (after an error, the same error again).
            LocalUsageError: ``event`` is not a string, or as :meth:`feed`.

        """
        if (
            self._mode != "events"
            or self._stopped_at is not None
            or self._busy
            or self._error is not None
            or type(event) is not str
        ):
            if not isinstance(event, str):
                raise LocalTypeError(f"feed_skipped() takes a string, got {type(event).__name__}")
            self._check_not_busy()
            self._enter("events")
            self._dispatch(event, None, self._index, None)
        self._index += 1

    def feed_event(self, event: Mapping[str, Any] | object) -> None:
        """Feed one event: its decoded JSON (a mapping with a ``type``), or an SDK event.

        Args:
            event: The event, such as ``{"type": "message_delta", "usage": {...}}``, or one
                of the anthropic SDK's event objects (read by their ``type`` and, for the
                events that carry usage, their ``to_dict()``).

        Raises:
            StreamError: As :meth:`feed`.
            LocalUsageError: As :meth:`feed`.

        """
        self._check_not_busy()
        self._enter("events")
        index = self._index
        self._index += 1
        if not isinstance(event, Mapping):
            event = as_event_mapping(event) or event
        if not isinstance(event, Mapping):
            raise self._fail(
                MalformedEventError(
                    f"an event must be a JSON object, got {type(event).__name__}",
                    event_index=index,
                )
            )
        kind = event.get("type")
        self._busy = True
        try:
            self._dispatch(kind if isinstance(kind, str) else "", event, index, None)
        finally:
            self._busy = False

    def finish(self) -> BetaUsage:
        """End the stream and return its final usage, after the final consistency checks.

        Calling it again returns the same usage.

        Returns:
            The final usage.

        Raises:
            IncompleteStreamError: The stream did not have a ``message_delta`` followed by
                ``message_stop``; ``partial`` holds what was counted.
            StreamError: The stream failed earlier (the same error is raised again), or a
                final check failed under the ``"strict"`` policy.

        """
        if self._final is not None:
            return self._final
        if self._error is not None:
            raise self._error
        if self._mode == "bytes":
            try:
                self._decoder.end()
            except StreamError as exc:  # an oversized block found at the end of a chunk
                raise self._fail(exc) from None
        index = self.events_seen
        if self._usage is None or self._stopped_at is None or not self._has_final_counts():
            if self._usage is None:
                why = "the stream ended before message_start"
                if self._mode != "events" and self._head is not None:
                    why = self._what_body(why, self._head)
            elif not self._has_final_counts():
                why = "the stream ended before any message_delta (output_tokens is a placeholder)"
            else:
                why = "the stream ended before message_stop"
            raise self._fail(IncompleteStreamError(why, event_index=index))
        usage = self._usage
        stop = self._stopped_at
        if self._policy != "off":
            for finding in check_final(usage, self._start_cache_creation):
                self._report(finding.code, finding.message, stop)
        self._final = usage
        return usage

    # -- internals -------------------------------------------------------------------------

    def _check_not_busy(self) -> None:
        if self._busy:
            raise LocalUsageError(
                "a feed call was made while another feed call of the same UsageAccumulator "
                "was running (from a logging handler or a warning hook?); it would be applied "
                "out of order"
            )

    def _has_final_counts(self) -> bool:
        return self._deltas > 0 or self._finished_at_start

    def _enter(self, mode: str) -> None:
        if self._final is not None:
            raise LocalUsageError("this stream is finished; use a new UsageAccumulator")
        if self._error is not None:
            raise self._error
        if self._mode != mode:
            if self._mode is not None:
                raise LocalUsageError(
                    "feed() (bytes) and feed_event()/feed_sse() (events) cannot be mixed"
                )
            self._mode = mode

    def _what_body(self, why: str, head: bytes) -> str:
        size = self._decoder.bytes_fed
        what, error = _describe_body(head, size)
        if error is not None:
            kind, message = error
            text = f"the body is a JSON error response, not an event stream: {kind or 'unknown'}"
            raise self._fail(
                StreamErrorEvent(
                    f"{text}: {message}" if message else text,
                    error_type=kind,
                    error_message=message,
                    event_index=self.events_seen,
                    byte_offset=0,
                )
            )
        return f"{why}: {what}" if what else why

    def _fail(self, exc: StreamError) -> StreamError:
        exc.partial = self._usage
        self._error = exc
        return exc

    def _dispatch_sse(self, name: str, data: str, index: int, offset: int | None) -> None:
        # What an event is (docs/semantics.md, section 4, rule 8): its JSON type decides, as
        # in the SDK's event loop, but for `ping` (passed over unread) and `error` (an error
        # whatever its data). Others are passed over unread when the data's leading type is
        # their name, the form the API sends.
        if name not in _USAGE_EVENTS and name != UNTYPED_EVENT:
            if name in UNCHECKED_EVENTS or data.startswith(f'{{"type":"{name}"'):
                self._dispatch(name, None, index, offset)
                return
            self._check_limits(name, data, index, offset)
            try:
                other = json.loads(data)
            except (ValueError, RecursionError):
                other = None  # not a usage event whatever it is: passed over, as before
            kind = other.get("type") if isinstance(other, dict) else None
            if isinstance(other, dict) and isinstance(kind, str):
                self._dispatch(kind, other, index, offset)
            else:
                self._dispatch(name, None, index, offset)
            return
        if name == ERROR_EVENT:
            try:
                error = json.loads(data) if check_event_json(data) is None else None
            except (ValueError, RecursionError):
                error = None
            self._dispatch("error", error if isinstance(error, dict) else {}, index, offset)
            return
        event = self._decode(name, data, index, offset)
        kind = event.get("type")
        if isinstance(kind, str):
            name = kind
        elif name == "message":
            name = ""
        self._dispatch(name, event, index, offset)

    def _check_limits(self, name: str, data: str, index: int, offset: int | None) -> None:
        # The limits of _limits.py, before any json.loads: past them it can neither recurse
        # deeply nor build more than a bounded number of objects, whatever the event's size.
        refused = check_event_json(data)
        if refused is not None:
            problem, path = refused
            raise self._fail(
                MalformedEventError(
                    f"{name} data: {problem}" + (f", at {path}" if path else ""),
                    path=path,
                    event_index=index,
                    byte_offset=offset,
                )
            )

    def _decode(self, name: str, data: str, index: int, offset: int | None) -> dict[str, Any]:
        self._check_limits(name, data, index, offset)
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise self._fail(
                MalformedEventError(
                    f"{name} data is not valid JSON: {exc}",
                    event_index=index,
                    byte_offset=offset,
                )
            ) from None
        except RecursionError:  # only when called with the stack nearly exhausted already
            raise self._fail(
                MalformedEventError(
                    f"{name} data nests too deeply to decode here",
                    event_index=index,
                    byte_offset=offset,
                )
            ) from None
        if not isinstance(event, dict):
            raise self._fail(
                MalformedEventError(
                    f"{name} data must be a JSON object, got {type(event).__name__}",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        return event

    def _dispatch(
        self, name: str, event: Mapping[str, Any] | None, index: int, offset: int | None
    ) -> None:
        if self._stopped_at is not None and name not in UNCHECKED_EVENTS:
            raise self._fail(
                EventOrderError(
                    f"{name or 'an untyped'} event after message_stop",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        if event is None or name not in _USAGE_EVENTS:
            return
        if name == "message_delta":
            self._on_delta(event, index, offset)
        elif name == "message_start":
            self._on_start(event, index, offset)
        elif name == STOP_EVENT:
            if self._usage is None:
                raise self._fail(
                    EventOrderError(
                        "message_stop before message_start", event_index=index, byte_offset=offset
                    )
                )
            self._stopped_at = index
        else:
            self._on_error(event, index, offset)

    def _on_start(self, event: Mapping[str, Any], index: int, offset: int | None) -> None:
        if self._usage is not None:
            raise self._fail(
                EventOrderError("a second message_start", event_index=index, byte_offset=offset)
            )
        message = event.get("message")
        if not isinstance(message, Mapping):
            raise self._fail(
                MalformedEventError(
                    "message_start has no message object",
                    path="message",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        raw = message.get("usage")
        if not isinstance(raw, Mapping):
            problem = "is null" if raw is None and "usage" in message else "is missing"
            if raw is not None:
                problem = f"must be an object, got {type(raw).__name__}"
            raise self._fail(
                MalformedEventError(
                    f"message_start: message.usage {problem}",
                    path="message.usage",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        present = {k: v for k, v in raw.items() if v is not None}
        usage = self._structure(present, BetaUsage, "message.usage", index, offset)
        model = message.get("model")
        self._model = model if isinstance(model, str) else None
        self._finished_at_start = isinstance(message.get("stop_reason"), str)
        self._start_cache_creation = usage.cache_creation_input_tokens
        self._usage = usage

    def _on_delta(self, event: Mapping[str, Any], index: int, offset: int | None) -> None:
        if self._usage is None:
            raise self._fail(
                EventOrderError(
                    "message_delta (usage) before message_start",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        raw = event.get("usage")
        if not isinstance(raw, Mapping):
            if raw is None:
                problem = "usage is null" if "usage" in event else "has no usage"
            else:
                problem = f"usage must be an object, got {type(raw).__name__}"
            raise self._fail(
                MalformedEventError(
                    f"message_delta {problem}",
                    path="usage",
                    event_index=index,
                    byte_offset=offset,
                )
            )
        carried = {k: v for k, v in raw.items() if v is not None}
        delta = self._structure(carried, BetaMessageDeltaUsage, "usage", index, offset)
        # Only the delta is structured, and merged field by field: the cost of a delta is
        # proportional to the delta, never to what was accumulated before it.
        before = self._usage
        changes: dict[str, Any] = {k: getattr(delta, k) for k in carried if k in _DELTA_FIELDS}
        if delta.unknown_fields:
            # Fields only BetaUsage knows (such as cache_creation) are structured as such.
            only = {k: carried[k] for k in delta.unknown_fields if k in _USAGE_FIELDS}
            if only:
                some = {"input_tokens": 0, "output_tokens": 0, **only}
                part = self._structure(some, BetaUsage, "usage", index, offset)
                changes.update((k, getattr(part, k)) for k in only)
            try:
                merged = merge_unknown_fields(
                    before.unknown_fields, delta.unknown_fields, skip=_USAGE_FIELDS
                )
            except UsageValidationError as exc:
                raise self._invalid(exc, "usage", index, offset) from None
            changes["unknown_fields"] = merged
        fields = dict(zip(_USAGE_NAMES, _usage_values(before), strict=True))
        fields.update(changes)
        usage = BetaUsage(**fields)
        if self._policy != "off":
            self._check_delta(before, usage, delta, index, offset)
        self._usage = usage
        self._deltas += 1

    def _on_error(self, event: Mapping[str, Any], index: int, offset: int | None) -> None:
        error = event.get("error")
        kind = message = None
        if isinstance(error, Mapping):
            kind = error.get("type") if isinstance(error.get("type"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
        text = f"the API sent an error event: {kind or 'unknown error'}"
        if message:
            text += f": {message}"
        raise self._fail(
            StreamErrorEvent(
                text,
                error_type=kind,
                error_message=message,
                event_index=index,
                byte_offset=offset,
            )
        )

    def _structure(
        self, raw: Mapping[str, Any], cls: type[Any], where: str, index: int, offset: int | None
    ) -> Any:
        try:
            return self._converter.structure(raw, cls)
        except UsageValidationError as exc:
            raise self._invalid(exc, where, index, offset) from None

    def _invalid(
        self, exc: UsageValidationError, where: str, index: int, offset: int | None
    ) -> StreamError:
        bad = exc.prefixed(where)
        return self._fail(
            MalformedEventError(str(bad), path=bad.path, event_index=index, byte_offset=offset)
        )

    def _check_delta(
        self,
        before: BetaUsage,
        after: BetaUsage,
        delta: BetaMessageDeltaUsage,
        index: int,
        offset: int | None,
    ) -> None:
        findings, current = check_delta(before, delta, self._delta_counts)
        for finding in findings:
            self._report(finding.code, finding.message, index, offset)
        self._delta_counts.update(current)

    def _report(self, code: str, message: str, index: int, offset: int | None = None) -> None:
        # The one path to the sticky error (_fail): a delta's findings are reported before the
        # delta is applied, so the partial usage is the usage before the event that showed it.
        diagnostic = UsageDiagnostic(code=code, message=message, event_index=index)
        note = code in NOTES
        if self._policy == "strict" and not note:
            raise self._fail(InconsistentUsageError(diagnostic, byte_offset=offset))
        self._diagnostics.append(diagnostic)
        log = _logger()
        (log.info if note else log.warning)(
            "%s",
            diagnostic,
            extra={"usagetally_diagnostic": diagnostic},
        )


def _describe_body(head: bytes, size: int) -> tuple[str, tuple[str | None, str | None] | None]:
    """Say what a body without ``message_start`` is, from its first bytes.

    Returns a description (empty when it looks like an event stream), and the error's type
    and message when the body is a JSON error response such as an HTTP 529's.
    """
    if size == 0:
        return "the body is empty", None
    if head.startswith(b"\x1f\x8b"):
        return "the body is gzip-compressed (decode its Content-Encoding first)", None
    whole = size <= len(head)
    try:
        text = head.decode("utf-8") if whole else head[:-3].decode("utf-8", "strict")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "the body is binary data, not a UTF-8 event stream", None
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        if whole:
            try:
                value = json.loads(stripped)
            except (ValueError, RecursionError):
                value = None
            if isinstance(value, dict):
                error = value.get("error")
                if value.get("type") == "error" and isinstance(error, dict):
                    kind, message = error.get("type"), error.get("message")
                    return "", (
                        kind if isinstance(kind, str) else None,
                        message if isinstance(message, str) else None,
                    )
                return "the body is one JSON object, not an event stream", None
        lines = [line for line in stripped.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip().startswith("{") for line in lines[:16]):
            return "the body is JSON lines, not an event stream", None
        return "the body is JSON, not an event stream", None
    if "data:" not in text and "event:" not in text:
        return "the body has no event or data lines: it is not an event stream", None
    return "", None
