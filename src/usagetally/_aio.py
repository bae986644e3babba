"""The async shell over the core: :func:`accumulate` and :func:`tap`.

Rules:

- Sources are any async iterable of bytes, event mappings, anthropic SDK events or
  server-sent events, recognised by the kind of their first item; every later item must be
  of that kind. What each kind, each exception of the source and the stream's end mean is
  decided in ``_feeding.py`` (its docstring is the contract), shared with the synchronous
  shell (``_sync.py``) and the worker.
- A source that is an async iterator (it has ``__anext__``) is read with ``__anext__``;
  any other async iterable through ``__aiter__()``. An async context manager that is not
  iterable (``client.beta.messages.stream(...)``) is entered first and what it yields is read.
  :func:`tap` hands a synchronous source (an iterable, or a context manager that is not
  async) to :class:`~usagetally.SyncTap`.
- State is updated before an item is handed on, so after a timeout or a cancellation the
  usage of everything read is there. Nothing here holds a task group or a cancel scope, and
  nothing suspends except to read, enter or close the source.
- Cancellation is never caught. An exception raised by the source becomes the stream's error
  (a :class:`StreamErrorEvent` when it is the SDK's report of an ``error`` event, else a
  :class:`SourceError`; the original is its ``__cause__``) carrying the usage read so far:
  :func:`accumulate` raises it, :class:`Tap` lets the original reach the caller's loop
  unchanged and keeps the stream's error for :meth:`Tap.final`. usagetally's own errors pass
  through with their ``partial``.
- The ``on_finish`` hook runs exactly once per stream, after the source is closed: when the
  source ends or raises, at :meth:`Tap.final`, or when the tap is closed, whichever comes
  first. An exception it raises is logged and kept, never raised in place of the result.

Nothing here imports anyio: these helpers await only the source, so they run under any
event loop. Of the library, only ``_worker.py`` imports anyio; the core stays pure.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from ._accumulator import Policy, UsageAccumulator
from ._errors import LocalTypeError, LocalUsageError, StreamError, UsageError
from ._feeding import Feeder, TapState, UsageHook, conclude
from ._models import BetaUsage
from ._sync import SyncTap, is_sync_source

__all__ = ["Tap", "UsageHook", "accumulate", "tap"]

T = TypeVar("T")


def _iterator_of(source: Any) -> AsyncIterator[Any]:
    if hasattr(source, "__anext__"):
        # An async iterator read as one: the SDK's streams wrap __anext__ in an extra
        # async generator in __aiter__, which would be left suspended after a break.
        return source  # type: ignore[no-any-return]
    if hasattr(source, "__aiter__"):
        return source.__aiter__()  # type: ignore[no-any-return]
    if inspect.isawaitable(source):
        hint = " (await it first)"
    elif hasattr(source, "__iter__"):
        hint = " (for a synchronous stream, use usagetally.accumulate_sync or tap)"
    else:
        hint = ""
    raise LocalTypeError(f"{type(source).__name__} is not an async iterable{hint}")


def _is_manager(source: Any) -> bool:
    return not hasattr(source, "__aiter__") and hasattr(source, "__aenter__")


async def _close(obj: Any) -> None:
    close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
    if close is not None:
        result = close()
        if inspect.isawaitable(result):
            await result


async def _close_all(iterator: Any, source: Any) -> None:
    try:
        if iterator is not source:
            await _close(iterator)  # the generator __aiter__() made
    finally:
        await _close(source)


async def accumulate(
    source: AsyncIterable[Any] | AbstractAsyncContextManager[AsyncIterable[Any]],
    *,
    policy: Policy = "warn",
    strict_types: bool = False,
    max_event_size: int | None = None,
    on_finish: UsageHook | None = None,
) -> BetaUsage:
    r"""Read a whole stream and return its final usage.

    For a synchronous source, use :func:`accumulate_sync`.

    Args:
        source: An async iterable of bytes, event mappings, anthropic SDK events or
            server-sent events (the kind of its first item decides), or an async context
            manager yielding one (such as ``client.beta.messages.stream(...)``), which is
            entered and exited.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte source.
        on_finish: Called once as ``on_finish(usage, model, complete)`` when the stream has
            ended and its source is closed, also when it fails or is cancelled (then with
            the partial usage and ``complete=False``), in the caller's task. An exception it
            raises is logged on the ``usagetally`` logger, never raised (see
            :data:`UsageHook`).

    Returns:
        The final usage.

    Raises:
        StreamErrorEvent: The API sent an ``error`` event (also when the SDK reported it by
            raising its ``APIStatusError``, which is then ``__cause__``).
        SourceError: The source raised; the original exception is ``__cause__`` and
            ``partial`` holds the usage read before it.
        StreamError: The stream sent something that cannot be accepted (the source is then
            closed, with ``aclose()`` or ``close()``, before this is raised), or it ended before
            it was complete (:class:`IncompleteStreamError`); ``partial`` holds what was
            counted.
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
    feeder = Feeder(
        UsageAccumulator(policy=policy, strict_types=strict_types, max_event_size=max_event_size)
    )
    try:
        if _is_manager(source):
            try:
                async with source as stream:  # type: ignore[union-attr]
                    usage = await _read(stream, feeder)
            except UsageError:
                raise
            except Exception as exc:  # entering or leaving the context manager
                raise feeder.fail_from(exc) from exc
        else:
            usage = await _read(source, feeder)
    finally:
        conclude(feeder, on_finish)
    return usage


async def _read(source: Any, feeder: Feeder) -> BetaUsage:
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
            error = feeder.fail_from(exc)
            with contextlib.suppress(Exception):
                await _close_all(iterator, source)
            raise error from exc
        try:
            feeder.feed(item)
        except UsageError:
            # The stream's own error is the one to report, even if closing fails too.
            with contextlib.suppress(Exception):
                await _close_all(iterator, source)
            raise
    with contextlib.suppress(Exception):  # read whole: a failing close costs nothing counted
        await _close_all(iterator, source)
    return feeder.finish()


class Tap(TapState, Generic[T]):
    """A pass-through over a stream that accumulates its usage on the way.

    Iterate it instead of the stream: every item comes out unchanged, after the
    accumulator has seen it. It is an async iterator and an async context manager (leaving
    it closes the source). Build one with :func:`tap`; :class:`SyncTap` is its synchronous
    twin.

    A stream whose usage cannot be accepted (a malformed event, a strict check) is still
    passed through whole: the error is kept in :attr:`error` and raised by :meth:`final`,
    and items after it are no longer fed. An exception raised by the source propagates
    unchanged to the loop, and the stream's error for it is kept for :meth:`final` (a
    :class:`StreamErrorEvent` for the SDK's report of an ``error`` event, else a
    :class:`SourceError`).

    The ``on_finish`` hook runs exactly once, after the source is closed: when the source
    ends or raises, at :meth:`final`, or at :meth:`aclose`, whichever comes first.

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
        super().__init__(
            source,
            manager=_is_manager(source),
            policy=policy,
            strict_types=strict_types,
            max_event_size=max_event_size,
            on_finish=on_finish,
        )
        self._iterator: AsyncIterator[T] | None = None
        self._anext: Callable[[], Awaitable[T]] = self._begin

    def final(self) -> BetaUsage:
        """Return the final usage; call it once the stream has been read.

        It ends the accounting: reading the tap after it raises :class:`LocalUsageError`.
        Calling it again returns the same usage or raises the same error.

        Returns:
            The final usage.

        Raises:
            IncompleteStreamError: The stream was not complete (cut, timed out, cancelled,
                or not read to its end); ``partial`` holds what was counted.
            StreamErrorEvent: The API sent an ``error`` event.
            SourceError: The source raised; the original is ``__cause__``.
            StreamError: The stream sent something that cannot be accepted.

        """
        self._anext = self._refuse
        self._finalized = True
        return self._final()

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> Tap[T]:
        return self

    async def __anext__(self) -> T:
        try:
            item = await self._anext()
        except StopAsyncIteration:
            await self._end()
            raise
        except UsageError:
            raise
        except Exception as exc:
            self._source_failed(exc)
            await self._end()
            raise
        if self._feeding:  # inline (see TapState): this runs for every item
            try:
                self._feeder.feed(item)
            except StreamError:
                self._feeding = False  # kept by the feeder or the accumulator for final()
        return item

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

    async def _end(self) -> None:
        # The source ended or failed: close it, then end the accounting (once).
        if self._concluded:
            return
        self._anext = self._ended
        try:
            with contextlib.suppress(Exception):
                await self._close_source()
        finally:
            self._conclude()

    # -- closing ---------------------------------------------------------------------------

    async def _close_source(self) -> None:
        if self._source_closed:
            return
        self._source_closed = True
        iterator, stream = self._iterator, self.stream
        try:
            if iterator is not None and iterator is not stream:
                await _close(iterator)  # the generator __aiter__() made
        finally:
            if stream is not None and self._manager is None:
                await _close(stream)

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
        try:
            try:
                await self._close_source()
            finally:
                if self._manager is not None and self.stream is not None:
                    await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            self._conclude()

    async def __aenter__(self) -> Tap[T]:
        if self._manager is not None and self.stream is None:
            try:
                self.stream = await self._manager.__aenter__()
            except Exception as exc:
                # The request failed (such as an HTTP error answer): the stream is over.
                self._source_failed(exc)
                self._closed = self._source_closed = True
                self._conclude()
                raise
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


@overload
def tap(
    source: Iterable[T],
    *,
    policy: Policy = ...,
    strict_types: bool = ...,
    max_event_size: int | None = ...,
    on_finish: UsageHook | None = ...,
) -> SyncTap[T]: ...


@overload
def tap(
    source: AbstractContextManager[Iterable[T]],
    *,
    policy: Policy = ...,
    strict_types: bool = ...,
    max_event_size: int | None = ...,
    on_finish: UsageHook | None = ...,
) -> SyncTap[T]: ...


def tap(
    source: Any,
    *,
    policy: Policy = "warn",
    strict_types: bool = False,
    max_event_size: int | None = None,
    on_finish: UsageHook | None = None,
) -> Tap[Any] | SyncTap[Any]:
    """Wrap a stream so that its usage is accumulated while it is read.

    An async source gives a :class:`Tap` (``async for``, ``async with``); a synchronous one
    (an iterable, or a context manager that is not async, such as the streams of the
    synchronous ``anthropic.Anthropic`` client) gives a :class:`SyncTap` (``for``,
    ``with``). The choice is made by the source's shape: the SDK is never imported.

    Args:
        source: An iterable or async iterable of bytes, event mappings, anthropic SDK events
            or server-sent events (see :func:`accumulate`), such as the stream of
            ``client.beta.messages.stream(...)`` or of ``create(stream=True)``. A context
            manager that is not iterable (``client.beta.messages.stream(...)`` itself) is
            entered by ``with tap(...)`` or ``async with tap(...)``.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte source.
        on_finish: Called once as ``on_finish(usage, model, complete)`` when the stream ends:
            when the source is read to its end or raises, at ``final()``, or when the tap is
            closed, whichever comes first, after the source is closed (see
            :data:`UsageHook`).

    Returns:
        A :class:`Tap` or a :class:`SyncTap` that yields the source's items unchanged.

    With the anthropic SDK::

        async with client.beta.messages.stream(...) as stream:
            counted = tap(stream)
            async for event in counted:
                ...
            message = await stream.get_final_message()  # still works
        usage = counted.final()

        with sync_client.beta.messages.stream(...) as stream:
            counted = tap(stream)
            for event in counted:
                ...
        usage = counted.final()

    """
    options: dict[str, Any] = {
        "policy": policy,
        "strict_types": strict_types,
        "max_event_size": max_event_size,
        "on_finish": on_finish,
    }
    if is_sync_source(source):
        return SyncTap(source, **options)
    return Tap(source, **options)
