"""Feeding one stream's accumulator from what a source yields, and ending it once.

This is the contract shared by the async shell (``_aio.py``), the synchronous shell
(``_sync.py``) and the worker (``_worker.py``); each of them reads its source its own way and
hands every item, every exception of the source and the stream's end to what is here, so
that the same stream gives the same usage, the same error and the same hook call on every
path.

:class:`Feeder` (one per stream):

- ``Feeder(acc)`` wraps a fresh :class:`~usagetally.UsageAccumulator`. ``feed(item)`` feeds
  one item; the kind of the first item decides how every item is read, and every later item
  must be of that kind:

  - ``bytes``, ``bytearray`` or ``memoryview``: the raw ``text/event-stream`` body, split
    anywhere; fed to :meth:`UsageAccumulator.feed`.
  - mappings: events as decoded JSON; fed to :meth:`UsageAccumulator.feed_event`.
  - objects with a ``type`` string and a ``to_dict()`` or ``model_dump()`` method: the
    anthropic SDK's events (``create(stream=True)`` or the ``messages.stream()`` helper,
    sync or async). They are dispatched on ``type``, never on their class (the SDK builds
    unknown event types as instances of known classes), and converted to a mapping only for
    ``message_start``, ``message_delta`` and ``error``. Content-block events cost a
    dictionary lookup; the events the helper adds of its own (``text``, ``thinking``,
    ``input_json``, ``citation``, ``signature``, ``compaction``) are not on the wire and are
    skipped; the helper's ``message_stop``, which carries the whole message, counts as
    ``message_stop`` unread.
  - objects with ``event`` and ``data`` (httpx-sse's ``ServerSentEvent``): fed to
    :meth:`UsageAccumulator.feed_sse`.

  ``feed`` raises the :class:`StreamError` that stops the stream (kept by the feeder or by
  the accumulator: :attr:`Feeder.failure` is it).
- ``fail_from(exc)``: the source raised ``exc`` (an :class:`Exception` that is not a
  :class:`UsageError`). It returns the stream's error and records it (unless one is
  recorded already) with ``exc`` as ``__cause__``. The anthropic SDK reports an ``error``
  event by raising its ``APIStatusError`` (an exception with an integer ``status_code`` and
  the event's decoded ``body``), or raises the same for an HTTP error answer whose body is a
  JSON error: that body is fed as the ``error`` event it is, so the stream's error is the
  :class:`StreamErrorEvent` with ``error_type`` and ``error_message`` that the raw bytes give.
  Any other exception becomes a :class:`SourceError` with the usage read so far.
- ``finish()`` returns the final usage or raises the stream's error.

:func:`conclude` ends a stream: it calls the ``on_finish`` hook once with the stream's
outcome (final usage and ``complete=True``, or the partial usage and ``complete=False``). An
exception the hook raises never propagates: it is logged on the ``usagetally`` logger (with
its traceback) and returned, so that the stream's result is never lost to its hook; callers
keep it (``Tap.hook_error``, ``StreamResult.hook_error``). Callers close the source *before*
they conclude.

:func:`as_event_mapping` (from ``_sdk_events.py``, which the accumulator uses too) converts
one SDK event object to the mapping :meth:`UsageAccumulator.feed_event` reads (usage events
whole, the others as their ``type``).

:class:`TapState` is the state of a tapped stream that the async :class:`~usagetally.Tap` and
the synchronous :class:`~usagetally.SyncTap` share: they differ only in how they read and
close the source.

The SDK is never imported: objects are recognised by shape. Nothing here does I/O.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._accumulator import Policy, UsageAccumulator
from ._errors import (
    MalformedEventError,
    SourceError,
    StreamError,
    UsageDiagnostic,
    UsageError,
)
from ._models import BetaUsage
from ._sdk_events import MESSAGE_STOP, USAGE_EVENTS, as_event_mapping, is_sdk_event, wire_form
from ._wire import NO_USAGE_EVENTS

__all__ = ["Feeder", "TapState", "UsageHook", "as_event_mapping", "conclude", "logger"]

logger = logging.getLogger("usagetally")

UsageHook = Callable[[BetaUsage | None, str | None, bool], object]
"""Called once per stream as ``hook(usage, model, complete)`` when it ends.

``usage`` is the final usage, or the partial usage of a stream that failed, was cut or was
cancelled (None if it failed before ``message_start``); ``model`` is the model named by
``message_start``; ``complete`` says which. An exception it raises is logged on the
``usagetally`` logger and kept (``Tap.hook_error``, ``StreamResult.hook_error``), never
raised in place of the stream's result. ``usagetally.otel.otel_hook`` makes one.
"""

# SDK objects: what each event type costs, in one lookup. Content-block events (and ping) carry
# no usage and are the bulk of a stream: before message_stop they are only counted (True), so
# that event indices stay right (UsageAccumulator passes over them the same way, reading
# nothing); after it they are fed by name, so that the core reports an event after
# message_stop. The events the messages.stream() helper adds of its own are not on the wire:
# never fed (False). The helper's message_stop carries the whole message: a constant stands
# for it.
_PASSED_OVER: dict[str, bool] = {
    **dict.fromkeys(NO_USAGE_EVENTS, True),
    "text": False,
    "thinking": False,
    "input_json": False,
    "citation": False,
    "signature": False,
    "compaction": False,
}
_BYTES_TYPES = (bytes, bytearray, memoryview)
_OBJECTS = "SDK event objects"


class Feeder:
    """One stream's accumulator, fed with items of the kind its first item had."""

    __slots__ = ("acc", "error", "feed", "kind")

    def __init__(self, acc: UsageAccumulator) -> None:
        self.acc = acc
        self.kind = ""
        # An error of this layer (a source error, an item of the wrong kind); the
        # accumulator keeps its own.
        self.error: StreamError | None = None
        self.feed: Callable[[Any], None] = self._first

    @property
    def failure(self) -> StreamError | None:
        """The error that stopped the stream, of this layer or of the accumulator."""
        return self.error if self.error is not None else self.acc.error

    def fail(self, exc: StreamError) -> StreamError:
        """Record ``exc`` as the stream's error unless one is recorded; return ``exc``."""
        if self.error is None and self.acc.error is None:
            self.error = exc
        return exc

    def fail_from(self, exc: BaseException) -> StreamError:
        """Record that the source raised ``exc``; return the stream's error for it."""
        error = self._error_event(exc)
        if error is None:
            error = SourceError(
                f"the source raised {type(exc).__name__}: {exc}",
                event_index=self.acc.events_seen,
                partial=self.acc.usage,
            )
        error.__cause__ = exc
        return self.fail(error)

    def _error_event(self, exc: BaseException) -> StreamError | None:
        # The anthropic SDK's APIStatusError: raised for an `error` event with the event's
        # decoded data as `body` (a str when it is not JSON), or for an HTTP error answer.
        body = getattr(exc, "body", None)
        if (
            body is None
            or not isinstance(getattr(exc, "status_code", None), int)
            or self.kind not in ("", _OBJECTS)
            or self.failure is not None
        ):
            return None
        data = body if isinstance(body, str) else json.dumps(body, default=str)
        try:
            self.acc.feed_sse("error", data)
        except StreamError as error:
            return error
        except UsageError:
            return None
        return None

    def finish(self) -> BetaUsage:
        """Return the final usage, or raise the stream's error."""
        if self.error is not None:
            raise self.error
        return self.acc.finish()

    def _first(self, item: Any) -> None:
        if isinstance(item, _BYTES_TYPES):
            self.kind, self.feed = "bytes", self._bytes
        elif isinstance(item, Mapping):
            self.kind, self.feed = "event mappings", self.acc.feed_event
        elif is_sdk_event(item):
            self.kind, self.feed = _OBJECTS, self._object
        elif hasattr(item, "event") and hasattr(item, "data"):
            self.kind, self.feed = "server-sent events", self._sse
        else:
            raise self.fail(
                MalformedEventError(
                    f"cannot read usage from a {type(item).__name__}: a source must yield "
                    "bytes, event mappings, anthropic SDK events or server-sent events "
                    "(for text, read the bytes: iter_bytes() or aiter_bytes())",
                    event_index=0,
                )
            )
        self.feed(item)

    def _wrong(self, item: Any) -> StreamError:
        return self.fail(
            MalformedEventError(
                f"the source yielded a {type(item).__name__} after {self.kind}",
                event_index=self.acc.events_seen,
                partial=self.acc.usage,
            )
        )

    def _bytes(self, item: Any) -> None:
        if type(item) is not bytes:
            if not isinstance(item, _BYTES_TYPES):
                raise self._wrong(item)
            item = bytes(item)
        self.acc.feed(item)

    def _object(self, item: Any) -> None:
        try:
            kind = item.type
            counted = _PASSED_OVER.get(kind)
        except (AttributeError, TypeError):  # no type, or an unhashable one
            raise self._wrong(item) from None
        if counted is not None:
            if not counted:
                return
            self.acc.feed_skipped(kind)
        elif kind == "message_stop":
            self.acc.feed_event(MESSAGE_STOP)
        elif kind in USAGE_EVENTS:
            self.acc.feed_event(wire_form(item))
        else:
            # An unknown event type: skipped by the core (a non-string type counts as one).
            self.acc.feed_event({"type": kind})

    def _sse(self, item: Any) -> None:
        try:
            event, data = item.event, item.data
        except AttributeError:
            raise self._wrong(item) from None
        self.acc.feed_sse(event or "", data if data is not None else "")


def run_hook(
    hook: UsageHook, usage: BetaUsage | None, model: str | None, complete: bool
) -> Exception | None:
    """Call ``hook``; return (and log) the exception it raised, or None."""
    try:
        hook(usage, model, complete)
    except Exception as exc:
        logger.error(
            "the on_finish hook %r raised %s: %s (the stream's result is kept)",
            hook,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        return exc
    return None


def conclude(feeder: Feeder, hook: UsageHook | None) -> Exception | None:
    """End the stream and call ``hook`` with its outcome; return the hook's exception.

    The stream's final usage is obtained with :meth:`Feeder.finish` (the same result or
    error again on later calls); when that raises, the hook gets the partial usage and
    ``complete=False``.
    """
    try:
        usage: BetaUsage | None = feeder.finish()
        complete = True
    except Exception:  # a StreamError, or a logging handler that raised
        usage, complete = feeder.acc.usage, False
    if hook is None:
        return None
    return run_hook(hook, usage, feeder.acc.model, complete)


class TapState:
    """What the async and the synchronous tap share: the accounting of one tapped stream.

    A subclass reads the source; while ``_feeding`` it feeds each item to ``_feeder.feed``
    (inline, as that runs for every item), setting ``_feeding`` to False on a
    :class:`StreamError` (kept for :meth:`_final`); it hands each exception of the source to
    :meth:`_source_failed`, and calls :meth:`_conclude` once the source has ended, failed or
    been closed (after closing it).
    """

    def __init__(
        self,
        source: Any,
        *,
        manager: bool,
        policy: Policy,
        strict_types: bool,
        max_event_size: int | None,
        on_finish: UsageHook | None,
    ) -> None:
        # The source, and the accumulator the tap keeps for it. ``manager``: the source is a
        # context manager to enter, and ``stream`` will be what it yields.
        self._feeder = Feeder(
            UsageAccumulator(
                policy=policy, strict_types=strict_types, max_event_size=max_event_size
            )
        )
        self._manager = source if manager else None
        self.stream: Any = None if manager else source
        self._source_closed = False
        self._closed = False
        self._finalized = False
        self._on_finish = on_finish
        self._feeding = True
        self._concluded = False
        self._hook_error: Exception | None = None

    @property
    def usage(self) -> BetaUsage | None:
        """The usage of everything read so far (None before ``message_start``).

        Until :attr:`complete`, ``output_tokens`` may still be the placeholder of
        ``message_start``.
        """
        return self._feeder.acc.usage

    @property
    def complete(self) -> bool:
        """Whether the stream has had a ``message_delta`` and then ``message_stop``."""
        return self._feeder.error is None and self._feeder.acc.complete

    @property
    def model(self) -> str | None:
        """The model named by ``message_start``, or None."""
        return self._feeder.acc.model

    @property
    def diagnostics(self) -> list[UsageDiagnostic]:
        """The consistency diagnostics collected under the ``"warn"`` policy."""
        return self._feeder.acc.diagnostics

    @property
    def error(self) -> StreamError | None:
        """The error that stopped the accounting, if any (:meth:`final` raises it)."""
        return self._feeder.failure

    @property
    def hook_error(self) -> Exception | None:
        """The exception the ``on_finish`` hook raised, if it raised (it is also logged)."""
        return self._hook_error

    def _source_failed(self, exc: BaseException) -> None:
        if self._feeding:
            self._feeding = False
            self._feeder.fail_from(exc)

    def _conclude(self) -> None:
        if self._concluded:
            return
        self._concluded = True
        hook, self._on_finish = self._on_finish, None  # called once at most
        self._hook_error = conclude(self._feeder, hook)

    def _final(self) -> BetaUsage:
        self._feeding = False
        self._conclude()
        return self._feeder.finish()
