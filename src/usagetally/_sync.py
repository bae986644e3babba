"""The synchronous shell over the core: :func:`accumulate_sync` and :class:`SyncTap`.

The synchronous twin of ``_aio.py``, with the same rules and the same guarantees; only the
reading differs. What a stream's items, exceptions and end mean is decided in
``_feeding.py`` (its docstring is the contract), so that both shells agree item for item.

- Sources are any iterable of bytes, event mappings, anthropic SDK events or server-sent
  events: ``httpx.Client.stream(...).iter_bytes()``, ``requests``' ``iter_content()``,
  ``client.beta.messages.create(stream=True)`` on the synchronous ``anthropic.Anthropic``, or
  the stream of its ``messages.stream()`` helper. A context manager that is not iterable
  (``client.beta.messages.stream(...)`` itself) is entered first and what it yields is read.
- An iterator (it has ``__next__``) is read with ``next()``; any other iterable through
  ``iter()``. A ``bytes`` or ``str`` object is refused as a source: iterating it gives
  integers or characters, never chunks.
- An exception raised by the source becomes the stream's error (a :class:`StreamErrorEvent`
  for the SDK's report of an ``error`` event, else a :class:`SourceError`, the original as
  ``__cause__``): :func:`accumulate_sync` raises it, :class:`SyncTap` lets the original reach
  the caller's loop unchanged and keeps the stream's error for :meth:`SyncTap.final`.
  ``KeyboardInterrupt`` and other ``BaseException`` are never caught.
- The ``on_finish`` hook runs once per stream, after the source is closed: when the source
  ends or raises, at :meth:`SyncTap.final`, or when the tap is closed, whichever comes first.
  An exception the hook raises is logged and kept (``hook_error``), never raised in place of
  the stream's result.

Nothing here imports anyio or does I/O other than reading and closing the source.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._accumulator import Policy, UsageAccumulator
from ._errors import LocalTypeError, LocalUsageError, StreamError, UsageError
from ._feeding import Feeder, TapState, UsageHook, conclude
from ._models import BetaUsage

__all__ = ["SyncTap", "accumulate_sync", "is_sync_source"]

T = TypeVar("T")

_NOT_SOURCES = (bytes, bytearray, memoryview, str)


def is_sync_source(source: object) -> bool:
    """Whether ``source`` is read synchronously (an iterable or a context manager, not async)."""
    if hasattr(source, "__aiter__") or hasattr(source, "__anext__"):
        return False
    if hasattr(source, "__iter__") or hasattr(source, "__next__"):
        return True
    return hasattr(source, "__enter__") and not hasattr(source, "__aenter__")


def _iterator_of(source: Any) -> Iterator[Any]:
    if isinstance(source, _NOT_SOURCES):
        raise LocalTypeError(
            f"a {type(source).__name__} is not a source of chunks: pass an iterable of them, "
            "such as [body] or response.iter_bytes()"
        )
    if hasattr(source, "__next__"):
        # An iterator read as one: the SDK's streams wrap __next__ in an extra generator in
        # __iter__, which would be left suspended after a break.
        return source  # type: ignore[no-any-return]
    if hasattr(source, "__iter__"):
        return iter(source)
    hint = " (use await usagetally.accumulate or async for)" if _is_async(source) else ""
    raise LocalTypeError(f"{type(source).__name__} is not an iterable{hint}")


def _is_async(source: Any) -> bool:
    return any(hasattr(source, name) for name in ("__aiter__", "__anext__", "__aenter__"))


def _is_manager(source: Any) -> bool:
    return not hasattr(source, "__iter__") and hasattr(source, "__enter__")


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if close is not None:
        close()


def accumulate_sync(
    source: Iterable[Any] | AbstractContextManager[Iterable[Any]],
    *,
    policy: Policy = "warn",
    strict_types: bool = False,
    max_event_size: int | None = None,
    on_finish: UsageHook | None = None,
) -> BetaUsage:
    r"""Read a whole stream synchronously and return its final usage.

    The synchronous counterpart of :func:`usagetally.accumulate`, for
    ``httpx.Client.stream(...).iter_bytes()``, ``requests``' ``iter_content()`` or the
    synchronous ``anthropic.Anthropic`` client's streams.

    Args:
        source: An iterable of bytes, event mappings, anthropic SDK events or server-sent
            events (the kind of its first item decides), or a context manager yielding one
            (such as ``client.beta.messages.stream(...)``), which is entered and exited.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte source.
        on_finish: Called once as ``on_finish(usage, model, complete)`` when the stream has
            ended and its source is closed, also when it fails (then with the partial
            usage and ``complete=False``). An exception it raises is logged on the
            ``usagetally`` logger, never raised (see :data:`UsageHook`).

    Returns:
        The final usage.

    Raises:
        StreamErrorEvent: The API sent an ``error`` event (also when the SDK reported it by
            raising its ``APIStatusError``, which is then ``__cause__``).
        SourceError: The source raised; the original exception is ``__cause__`` and
            ``partial`` holds the usage read before it.
        StreamError: The stream sent something that cannot be accepted, or it ended before
            it was complete (:class:`IncompleteStreamError`); ``partial`` holds what was
            counted.
        LocalUsageError: ``source`` is not an iterable (or is a ``bytes`` or ``str``).

    The source is closed (``close()``, or the context manager exited) before this returns
    or raises.

    >>> body = [
    ...     b'event: message_start\ndata: {"type":"message_start","message":',
    ...     b'{"usage":{"input_tokens":10,"output_tokens":1}}}\n\n',
    ...     b'event: message_delta\ndata: {"type":"message_delta","usage":',
    ...     b'{"output_tokens":42}}\n\nevent: message_stop\ndata: {}\n\n',
    ... ]
    >>> accumulate_sync(body)
    BetaUsage(input_tokens=10, output_tokens=42, ...)

    """
    feeder = Feeder(
        UsageAccumulator(policy=policy, strict_types=strict_types, max_event_size=max_event_size)
    )
    try:
        if _is_manager(source):
            try:
                with source as stream:  # type: ignore[union-attr]
                    usage = _read(stream, feeder)
            except UsageError:
                raise
            except Exception as exc:  # entering or leaving the context manager
                raise feeder.fail_from(exc) from exc
        else:
            usage = _read(source, feeder)
    finally:
        conclude(feeder, on_finish)
    return usage


def _read(source: Any, feeder: Feeder) -> BetaUsage:
    iterator = _iterator_of(source)
    next_ = iterator.__next__
    while True:
        try:
            item = next_()
        except StopIteration:
            break
        except UsageError:
            raise
        except Exception as exc:
            error = feeder.fail_from(exc)
            with contextlib.suppress(Exception):
                _close_all(iterator, source)
            raise error from exc
        try:
            feeder.feed(item)
        except UsageError:
            # The stream's own error is the one to report, even if closing fails too.
            with contextlib.suppress(Exception):
                _close_all(iterator, source)
            raise
    with contextlib.suppress(Exception):  # read whole: a failing close costs nothing counted
        _close_all(iterator, source)
    return feeder.finish()


def _close_all(iterator: Any, source: Any) -> None:
    try:
        if iterator is not source:
            _close(iterator)
    finally:
        _close(source)


class SyncTap(TapState, Generic[T]):
    """A pass-through over a synchronous stream that accumulates its usage on the way.

    The synchronous twin of :class:`Tap`, with the same guarantees. Iterate it instead of
    the stream: every item comes out unchanged, after the accumulator has seen it. It is an
    iterator and a context manager (leaving it closes the source). Build one with
    :func:`usagetally.tap`, which returns a ``SyncTap`` for a synchronous source.

    A stream whose usage cannot be accepted (a malformed event, a strict check) is still
    passed through whole: the error is kept in :attr:`error` and raised by :meth:`final`,
    and items after it are no longer fed. An exception raised by the source propagates
    unchanged to the loop, and the stream's error for it is kept for :meth:`final` (a
    :class:`StreamErrorEvent` for the SDK's report of an ``error`` event, else a
    :class:`SourceError`).

    The ``on_finish`` hook runs exactly once, after the source is closed: when the source
    ends or raises, at :meth:`final`, or at :meth:`close`, whichever comes first.

    Attributes:
        stream: The object being read: the source, or what it yielded when it is a context
            manager entered by ``with`` (such as the SDK's message stream, for
            ``get_final_message()``).

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
        self._iterator: Iterator[T] | None = None
        self._next: Callable[[], T] = self._begin

    def final(self) -> BetaUsage:
        """Return the final usage; call it once the stream has been read.

        It ends the accounting: reading the tap after it raises :class:`LocalUsageError`.
        Calling it again returns the same usage or raises the same error.

        Returns:
            The final usage.

        Raises:
            IncompleteStreamError: The stream was not complete (cut, or not read to its
                end); ``partial`` holds what was counted.
            StreamErrorEvent: The API sent an ``error`` event.
            SourceError: The source raised; the original is ``__cause__``.
            StreamError: The stream sent something that cannot be accepted.

        """
        self._next = self._refuse
        self._finalized = True
        return self._final()

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> SyncTap[T]:
        return self

    def __next__(self) -> T:
        try:
            item = self._next()
        except StopIteration:
            self._end()
            raise
        except UsageError:
            raise
        except Exception as exc:
            self._source_failed(exc)
            self._end()
            raise
        if self._feeding:  # inline (see TapState): this runs for every item
            try:
                self._feeder.feed(item)
            except StreamError:
                self._feeding = False  # kept by the feeder or the accumulator for final()
        return item

    def _begin(self) -> T:
        if self.stream is None:
            raise LocalUsageError(
                "tap() over a context manager must be entered first: "
                "with tap(...) as t: for item in t: ..."
            )
        self._iterator = _iterator_of(self.stream)
        self._next = self._iterator.__next__
        return self._next()

    def _refuse(self) -> T:
        raise LocalUsageError("final() ended this tap; it cannot be read further")

    def _ended(self) -> T:
        raise StopIteration

    def _end(self) -> None:
        # The source ended or failed: close it, then end the accounting (once).
        if self._concluded:
            return
        self._next = self._ended
        try:
            with contextlib.suppress(Exception):
                self._close_source()
        finally:
            self._conclude()

    # -- closing ---------------------------------------------------------------------------

    def _close_source(self) -> None:
        if self._source_closed:
            return
        self._source_closed = True
        iterator, stream = self._iterator, self.stream
        try:
            if iterator is not None and iterator is not stream:
                _close(iterator)  # the generator iter() made
        finally:
            if stream is not None and self._manager is None:
                _close(stream)

    def close(self) -> None:
        """Close the source (``close()``, or exit it if it was entered).

        The usage read so far stays readable. Calling it again does nothing.
        """
        self._exit(None, None, None)

    def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._finalized:
            self._next = self._ended
        try:
            try:
                self._close_source()
            finally:
                if self._manager is not None and self.stream is not None:
                    self._manager.__exit__(exc_type, exc, tb)
        finally:
            self._conclude()

    def __enter__(self) -> SyncTap[T]:
        if self._manager is not None and self.stream is None:
            try:
                self.stream = self._manager.__enter__()
            except Exception as exc:
                # The request failed (such as an HTTP error answer): the stream is over.
                self._source_failed(exc)
                self._closed = self._source_closed = True
                self._conclude()
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<SyncTap complete={self.complete} usage={self.usage!r}>"
