"""The async shell over the core: :func:`accumulate` and :func:`tap`.

Rules:

- Sources are any async iterable, recognised by the kind of their first item, and every
  later item must be of that kind:

  - ``bytes``, ``bytearray`` or ``memoryview``: the raw ``text/event-stream`` body, split
    anywhere (``httpx.Response.aiter_bytes()``); fed to :meth:`UsageAccumulator.feed`.
  - mappings: events as decoded JSON; fed to :meth:`UsageAccumulator.feed_event`.
  - objects with a ``type`` string and a ``to_dict()`` or ``model_dump()`` method: the
    anthropic SDK's events (``create(stream=True)`` or the ``messages.stream()`` helper). They
    are dispatched on ``type``, never on their class (the SDK builds unknown event types as
    instances of known classes), and converted to a mapping only for ``message_start``,
    ``message_delta`` and ``error``. Content-block events cost a dictionary lookup; the events
    the helper adds of its own (``text``, ``thinking``, ``input_json``, ``citation``,
    ``signature``, ``compaction``) are not on the wire and are skipped; the helper's
    ``message_stop``, which carries the whole message, counts as ``message_stop`` unread.
  - objects with ``event`` and ``data`` (httpx-sse's ``ServerSentEvent``): fed to
    :meth:`UsageAccumulator.feed_sse`.

  The SDK is never imported: objects are recognised by shape.
- A source that is an async iterator (it has ``__anext__``) is read with ``__anext__``;
  any other async iterable through ``__aiter__()``. An async context manager that is not
  iterable (``client.beta.messages.stream(...)``) is entered first and what it yields is read.
- State is updated before an item is handed on, so after a timeout or a cancellation the
  usage of everything read is there. Nothing here holds a task group or a cancel scope, and
  nothing suspends except to read, enter or close the source.
- Cancellation is never caught. An exception raised by the source becomes a
  :class:`SourceError` (the original is its ``__cause__``) carrying the usage read so far:
  :func:`accumulate` raises it, :class:`Tap` lets the original reach the caller's loop
  unchanged and keeps the ``SourceError`` for :meth:`Tap.final`. usagetally's own errors pass
  through with their ``partial``.

Nothing here imports anyio: these helpers await only the source, so they run under any
event loop. Of the library, only ``_worker.py`` imports anyio; the core stays pure.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from ._accumulator import Policy, UsageAccumulator
from ._errors import (
    LocalUsageError,
    MalformedEventError,
    SourceError,
    StreamError,
    UsageDiagnostic,
    UsageError,
)
from ._models import BetaUsage

__all__ = ["Tap", "UsageHook", "accumulate", "tap"]

T = TypeVar("T")

UsageHook = Callable[[BetaUsage | None, str | None, bool], object]
"""Called once per stream as ``hook(usage, model, complete)`` when it ends.

``usage`` is the final usage, or the partial usage of a stream that failed, was cut or was
cancelled (None if it failed before ``message_start``); ``model`` is the model named by
``message_start``; ``complete`` says which. ``usagetally.otel.otel_hook`` makes one.
"""

# SDK objects: what each event type costs, in one lookup. Content-block events (and ping) carry
# no usage and are the bulk of a stream: before message_stop they are only counted (True), so
# that event indices stay right (UsageAccumulator passes over them the same way, reading
# nothing); after it they are fed by name, so that the core reports an event after
# message_stop. The events the messages.stream() helper adds of its own are not on the wire:
# never fed (False). The helper's message_stop carries the whole message: a constant stands
# for it.
_PASSED_OVER: dict[str, bool] = {
    "content_block_start": True,
    "content_block_delta": True,
    "content_block_stop": True,
    "ping": True,
    "text": False,
    "thinking": False,
    "input_json": False,
    "citation": False,
    "signature": False,
    "compaction": False,
}
_MESSAGE_STOP: Mapping[str, Any] = {"type": "message_stop"}
_BYTES_TYPES = (bytes, bytearray, memoryview)


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    """Return an SDK object's wire form: the fields sent, unknown ones kept, absent left out."""
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        try:
            # warnings=False: pydantic warns on unknown iteration types held in known classes.
            result: Mapping[str, Any] = to_dict(warnings=False)
        except TypeError:
            result = to_dict()
        return result
    dump = obj.model_dump
    try:
        result = dump(by_alias=True, exclude_unset=True, warnings=False)
    except TypeError:
        result = dump()
    return result


class _Feeder:
    """One stream's accumulator, fed with items of the kind its first item had."""

    __slots__ = ("acc", "error", "feed", "kind", "stopped")

    def __init__(self, acc: UsageAccumulator) -> None:
        self.acc = acc
        self.kind = ""
        self.stopped = False  # an SDK object stream has had message_stop
        # An error of this layer (a source error, an item of the wrong kind); the
        # accumulator keeps its own.
        self.error: StreamError | None = None
        self.feed: Callable[[Any], None] = self._first

    @property
    def failure(self) -> StreamError | None:
        return self.error if self.error is not None else self.acc.error

    def fail(self, exc: StreamError) -> StreamError:
        if self.error is None and self.acc.error is None:
            self.error = exc
        return exc

    def finish(self) -> BetaUsage:
        if self.error is not None:
            raise self.error
        return self.acc.finish()

    def _first(self, item: Any) -> None:
        if isinstance(item, _BYTES_TYPES):
            self.kind, self.feed = "bytes", self._bytes
        elif isinstance(item, Mapping):
            self.kind, self.feed = "event mappings", self.acc.feed_event
        elif isinstance(getattr(item, "type", None), str) and (
            hasattr(item, "to_dict") or hasattr(item, "model_dump")
        ):
            self.kind, self.feed = "SDK event objects", self._object
        elif hasattr(item, "event") and hasattr(item, "data"):
            self.kind, self.feed = "server-sent events", self._sse
        else:
            raise self.fail(
                MalformedEventError(
                    f"cannot read usage from a {type(item).__name__}: a source must yield "
                    "bytes, event mappings, anthropic SDK events or server-sent events "
                    "(for text, read the bytes: aiter_bytes())",
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
            self.acc.feed_event(_MESSAGE_STOP)
            self.stopped = True
        elif kind in ("message_start", "message_delta", "error"):
            self.acc.feed_event(_as_mapping(item))
        else:
            # An unknown event type: skipped by the core (a non-string type counts as one).
            self.acc.feed_event({"type": kind})

    def _sse(self, item: Any) -> None:
        try:
            event, data = item.event, item.data
        except AttributeError:
            raise self._wrong(item) from None
        self.acc.feed_sse(event or "", data if data is not None else "")


def _source_error(feeder: _Feeder, exc: BaseException) -> SourceError:
    return SourceError(
        f"the source raised {type(exc).__name__}: {exc}",
        event_index=feeder.acc.events_seen,
        partial=feeder.acc.usage,
    )


def _iterator_of(source: Any) -> AsyncIterator[Any]:
    if hasattr(source, "__anext__"):
        # An async iterator read as one: the SDK's streams wrap __anext__ in an extra
        # async generator in __aiter__, which would be left suspended after a break.
        return source  # type: ignore[no-any-return]
    if hasattr(source, "__aiter__"):
        return source.__aiter__()  # type: ignore[no-any-return]
    hint = " (await it first)" if inspect.isawaitable(source) else ""
    raise LocalUsageError(f"{type(source).__name__} is not an async iterable{hint}")


def _is_manager(source: Any) -> bool:
    return not hasattr(source, "__aiter__") and hasattr(source, "__aenter__")


async def _close(obj: Any) -> None:
    close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


async def accumulate(
    source: AsyncIterable[Any] | AbstractAsyncContextManager[AsyncIterable[Any]],
    *,
    policy: Policy = "warn",
    strict_types: bool = False,
    max_event_size: int | None = None,
    on_finish: UsageHook | None = None,
) -> BetaUsage:
    r"""Read a whole stream and return its final usage.

    Args:
        source: An async iterable of bytes, event mappings, anthropic SDK events or
            server-sent events (the kind of its first item decides), or an async context
            manager yielding one (such as ``client.beta.messages.stream(...)``), which is
            entered and exited.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte source.
        on_finish: Called once as ``on_finish(usage, model, complete)`` when the stream ends,
            also when it fails or is cancelled (then with the partial usage and
            ``complete=False``), in the caller's task (see :data:`UsageHook`). An exception
            it raises on success propagates; on failure the stream's own error wins.

    Returns:
        The final usage.

    Raises:
        SourceError: The source raised; the original exception is ``__cause__`` and
            ``partial`` holds the usage read before it.
        StreamError: The stream sent something that cannot be accepted (the source is then
            closed, with ``aclose()`` or ``close()``, before this is raised), or it ended
            before it was complete (:class:`IncompleteStreamError`); ``partial`` holds what
            was counted.
        LocalUsageError: ``source`` is not an async iterable.

    Cancellation propagates untouched; nothing is awaited on the way out.

    >>> import anyio
    >>> async def body():
    ...     yield b'event: message_start\ndata: {"type":"message_start","message":'
    ...     yield b'{"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
    ...     yield b'event: message_delta\ndata: {"type":"message_delta","usage":'
    ...     yield b'{"output_tokens":42}}\n\nevent: message_stop\ndata: {}\n\n'
    >>> anyio.run(accumulate, body())
    BetaUsage(input_tokens=10, output_tokens=42, ...)

    """
    feeder = _Feeder(
        UsageAccumulator(policy=policy, strict_types=strict_types, max_event_size=max_event_size)
    )
    try:
        if _is_manager(source):
            async with source as stream:  # type: ignore[union-attr]
                usage = await _read(stream, feeder)
        else:
            usage = await _read(source, feeder)
    except BaseException:
        if on_finish is not None:
            _report_failure(on_finish, feeder)
        raise
    if on_finish is not None:
        on_finish(usage, feeder.acc.model, True)
    return usage


def _report_failure(hook: UsageHook, feeder: _Feeder) -> None:
    # The stream's own error (or the cancellation) is what propagates, even if the hook fails.
    with contextlib.suppress(Exception):
        hook(feeder.acc.usage, feeder.acc.model, False)


async def _read(source: Any, feeder: _Feeder) -> BetaUsage:
    iterator = _iterator_of(source)
    anext = iterator.__anext__
    while True:
        try:
            item = await anext()
        except StopAsyncIteration:
            break
        except UsageError:
            raise
        except Exception as exc:
            raise _source_error(feeder, exc) from exc
        try:
            feeder.feed(item)
        except UsageError:
            # The stream's own error is the one to report, even if closing fails too.
            with contextlib.suppress(Exception):
                await _close(iterator)
            raise
    return feeder.finish()


class Tap(Generic[T]):
    """A pass-through over a stream that accumulates its usage on the way.

    Iterate it instead of the stream: every item comes out unchanged, after the
    accumulator has seen it. It is an async iterator and an async context manager (leaving
    it closes the source). Build one with :func:`tap`.

    A stream whose usage cannot be accepted (a malformed event, a strict check) is still
    passed through whole: the error is kept in :attr:`error` and raised by :meth:`final`,
    and items after it are no longer fed. An exception raised by the source propagates
    unchanged to the loop, and is kept as a :class:`SourceError` for :meth:`final`.

    Attributes:
        stream: The object being read: the source, or what it yielded when it is an async
            context manager entered by ``async with`` (such as the SDK's message stream,
            for ``get_final_message()``).

    """

    def __init__(
        self,
        source: Any,
        *,
        policy: Policy = "warn",
        strict_types: bool = False,
        max_event_size: int | None = None,
        on_finish: UsageHook | None = None,
    ) -> None:
        self._source = source
        self._on_finish = on_finish
        self._manager = source if _is_manager(source) else None
        self.stream: Any = None if self._manager is not None else source
        self._iterator: AsyncIterator[T] | None = None
        self._anext: Callable[[], Awaitable[T]] = self._begin
        self._feeding = True
        self._finalized = False
        self._feeder = _Feeder(
            UsageAccumulator(
                policy=policy, strict_types=strict_types, max_event_size=max_event_size
            )
        )
        self._feed: Callable[[Any], None] = self._feed_first
        self._closed = False

    # -- what the caller reads -------------------------------------------------------------

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

    def final(self) -> BetaUsage:
        """Return the final usage; call it once the stream has been read.

        It ends the accounting: reading the tap after it raises :class:`LocalUsageError`.
        Calling it again returns the same usage or raises the same error.

        Returns:
            The final usage.

        Raises:
            IncompleteStreamError: The stream was not complete (cut, timed out, cancelled,
                or not read to its end); ``partial`` holds what was counted.
            SourceError: The source raised; the original is ``__cause__``.
            StreamError: The stream sent something that cannot be accepted.

        """
        self._anext = self._refuse
        self._feeding = False
        self._finalized = True
        return self._finish()

    def _finish(self) -> BetaUsage:
        hook, self._on_finish = self._on_finish, None  # called once at most
        try:
            usage = self._feeder.finish()
        except BaseException:
            if hook is not None:
                _report_failure(hook, self._feeder)
            raise
        if hook is not None:
            hook(usage, self._feeder.acc.model, True)
        return usage

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> Tap[T]:
        return self

    async def __anext__(self) -> T:
        try:
            item = await self._anext()
        except (StopAsyncIteration, UsageError):
            raise
        except Exception as exc:
            if self._feeding:
                self._feeding = False
                error = _source_error(self._feeder, exc)
                error.__cause__ = exc
                self._feeder.fail(error)
            raise
        if self._feeding:
            try:
                self._feed(item)
            except StreamError:
                self._feeding = False  # kept by the feeder or the accumulator for final()
        return item

    def _feed_first(self, item: Any) -> None:
        feeder = self._feeder
        try:
            feeder.feed(item)
        finally:
            self._feed = feeder.feed  # the kind's own feeder, chosen by the first item

    async def _begin(self) -> T:
        if self.stream is None:
            raise LocalUsageError(
                "tap() over an async context manager must be entered first: "
                "async with tap(...) as t: async for item in t: ..."
            )
        self._iterator = _iterator_of(self.stream)
        self._anext = self._iterator.__anext__
        return await self._anext()

    async def _refuse(self) -> T:
        raise LocalUsageError("final() ended this tap; it cannot be read further")

    async def _ended(self) -> T:
        raise StopAsyncIteration

    # -- closing ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the source (``aclose()`` or ``close()``, or exit it if it was entered).

        The usage read so far stays readable. Calling it again does nothing.
        """
        await self._exit(None, None, None)

    async def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._finalized:
            self._anext = self._ended
            if self._on_finish is not None:
                # Closed without final(): report what the stream came to, complete or not.
                with contextlib.suppress(StreamError):
                    self._finish()
        iterator, stream = self._iterator, self.stream
        if iterator is not None and iterator is not stream:
            await _close(iterator)  # the generator __aiter__() made
        if self._manager is not None:
            if stream is not None:
                await self._manager.__aexit__(exc_type, exc, tb)
        elif stream is not None:
            await _close(stream)

    async def __aenter__(self) -> Tap[T]:
        if self._manager is not None and self.stream is None:
            self.stream = await self._manager.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._exit(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<Tap complete={self.complete} usage={self.usage!r}>"


@overload
def tap(
    source: AsyncIterable[T],
    *,
    policy: Policy = ...,
    strict_types: bool = ...,
    max_event_size: int | None = ...,
    on_finish: UsageHook | None = ...,
) -> Tap[T]: ...


@overload
def tap(
    source: AbstractAsyncContextManager[AsyncIterable[T]],
    *,
    policy: Policy = ...,
    strict_types: bool = ...,
    max_event_size: int | None = ...,
    on_finish: UsageHook | None = ...,
) -> Tap[T]: ...


def tap(
    source: Any,
    *,
    policy: Policy = "warn",
    strict_types: bool = False,
    max_event_size: int | None = None,
    on_finish: UsageHook | None = None,
) -> Tap[Any]:
    """Wrap a stream so that its usage is accumulated while it is read.

    Args:
        source: An async iterable of bytes, event mappings, anthropic SDK events or
            server-sent events (see :func:`accumulate`), such as the stream of
            ``client.beta.messages.stream(...)`` or of ``create(stream=True)``. An async
            context manager that is not iterable (``client.beta.messages.stream(...)``
            itself) is entered by ``async with tap(...)``.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte source.
        on_finish: Called once as ``on_finish(usage, model, complete)`` by :meth:`Tap.final`,
            or, if it is never called, when the tap is closed (see :data:`UsageHook`).

    Returns:
        A :class:`Tap` that yields the source's items unchanged.

    With the anthropic SDK::

        async with client.beta.messages.stream(...) as stream:
            counted = tap(stream)
            async for event in counted:
                ...
            message = await stream.get_final_message()  # still works
        usage = counted.final()

    """
    return Tap(
        source,
        policy=policy,
        strict_types=strict_types,
        max_event_size=max_event_size,
        on_finish=on_finish,
    )
