"""A background worker that accumulates the usage of many concurrent streams.

Design: one dispatcher task and one bounded memory object stream shared by every sink.

- A sink's ``send`` puts ``(stream, item)`` on the shared stream; the dispatcher takes the
  items in order and feeds each stream's :class:`UsageAccumulator`. Every piece of worker
  state (accumulators, results, totals) is changed by the dispatcher alone, so nothing needs
  a lock and nothing can be counted twice. One task and one buffer serve a thousand streams as
  well as one; a task per stream would cost a task, a stream pair and a buffer each, for no
  gain (the work is CPU-bound and runs on one thread either way).
- Backpressure: the shared buffer holds ``max_buffer`` items; ``send`` waits when it is full.
- A sink's ``close`` puts an end marker after its items; the dispatcher finishes the stream
  when it comes to it. So results, totals and the ``on_result`` callback are all produced
  by the dispatcher, in order.
- Shutdown (leaving ``async with``, normally, by an exception or by cancellation) accepts
  no new items, then everything queued is drained, then every stream still open is finished
  with what it was fed (a stream that was complete is complete; any other is incomplete,
  its partial usage kept). The dispatcher runs shielded from cancellation and never waits on
  anything but the shared stream, whose last sender is the worker itself, so it always ends
  promptly; no item it has taken can be lost to a cancellation.
- An item is counted if and only if its ``send`` returned. A ``send`` that cannot be accepted
  (after shutdown) raises :class:`LocalUsageError`; nothing is dropped silently. A ``send``
  that has to wait for room waits shielded from cancellation (the dispatcher makes room
  soon), because an item taken while its sender was being cancelled would otherwise be
  counted although its ``send`` raised.
- Threads: memory streams are not thread-safe, so the ``*_from_thread`` methods hop to the
  event loop with anyio's from-thread machinery and the token captured when the worker
  started (``anyio.lowlevel.current_token()``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._accumulator import Policy, UsageAccumulator
from ._cost import Cost, PriceTable
from ._errors import (
    LocalTypeError,
    LocalUsageError,
    LocalValueError,
    StreamError,
    UsageDiagnostic,
    UsageError,
)
from ._feeding import Feeder, UsageHook, logger, run_hook
from ._figures import UsageTotals
from ._models import BetaUsage

__all__ = ["StreamResult", "UsageSink", "UsageWorker"]

_END: Final = object()  # a sink's end marker
_STOP: Final = object()  # the worker's own end marker, after every accepted item


@attrs.frozen(kw_only=True)
class StreamResult:
    """How one stream ended, as handed to ``on_result``.

    Attributes:
        key: The key the stream was opened with.
        usage: The final usage when :attr:`complete`, else the partial usage counted before
            the stream failed or was cut (None if it never had ``message_start``).
        complete: Whether a final usage was obtained.
        error: Why the stream is incomplete (an :class:`IncompleteStreamError` for a stream
            cut short, a :class:`StreamErrorEvent` for an ``error`` event, a
            :class:`SourceError` for a source that raised), or None.
        model: The model the stream is counted under in the totals.
        cost: What the stream cost, when the worker was given prices and the table could
            price it (see :meth:`UsageTotals.add`); else None.
        diagnostics: The stream's consistency diagnostics (under the ``"warn"`` policy), in
            order.
        hook_error: The exception the worker's ``on_finish`` hook raised for this stream, or
            None. It is also logged on the ``usagetally`` logger.

    """

    key: Hashable
    usage: BetaUsage | None
    complete: bool
    error: StreamError | None
    model: str | None
    cost: Cost | None = None
    diagnostics: tuple[UsageDiagnostic, ...] = ()
    hook_error: Exception | None = None


class _Failed:
    """A sink's end marker for a stream whose source raised ``exc``."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _end_marker(error: BaseException | None) -> object:
    # usagetally's own errors (a LocalUsageError from a refused send) and cancellations
    # say nothing about the stream: it just ends.
    if isinstance(error, Exception) and not isinstance(error, UsageError):
        return _Failed(error)
    return _END


def _outcome(result: StreamResult) -> BetaUsage:
    if result.error is not None:
        raise result.error
    assert result.usage is not None
    return result.usage


def _unexpected(feeder: Feeder, exc: Exception) -> StreamError:
    error = StreamError(
        f"accumulating raised {type(exc).__name__}: {exc}",
        event_index=feeder.acc.events_seen,
        partial=feeder.acc.usage,
    )
    error.__cause__ = exc
    return error


class _Stream:
    """The worker's record of one stream (changed by the dispatcher, or by a send it lets)."""

    __slots__ = ("done", "feeder", "key", "model", "queued", "result", "sent", "take")

    def __init__(self, key: Hashable, model: str | None, feeder: Feeder) -> None:
        self.key = key
        self.model = model
        self.feeder = feeder
        self.result: StreamResult | None = None
        self.done: anyio.Event | None = None  # made when someone waits for the result
        # This stream's messages sent into the buffer and not yet handled by the dispatcher.
        # While it is 0, UsageSink.send handles the stream's next item itself (see there).
        self.queued = 0
        self.sent = 0  # calls of UsageSink.send
        # The accumulator's feed, once the stream is known to be bytes (its first item) and
        # while it is unfinished and has not failed: what a send calls for a bytes item.
        self.take: Callable[[bytes], Any] | None = None


class UsageSink:
    """Where one stream's bytes or events are sent; made by :meth:`UsageWorker.open`.

    Items are bytes (the raw ``text/event-stream`` body, split anywhere) or events (mappings,
    anthropic SDK events, server-sent events): one kind per stream, as for
    :func:`usagetally.accumulate`. ``bytearray`` and ``memoryview`` items are copied when
    sent. Use a sink from one task or one thread at a time.

    It is an async context manager that closes it on exit (``async with worker.open(key)``),
    and a context manager that closes it from a plain thread (``with
    worker.open_from_thread(key)``). When the block ends by an exception (the source
    raised), that exception is recorded as the stream's error, as :meth:`close` with
    ``error`` does; it still propagates.

    Attributes:
        key: The stream's key.

    """

    __slots__ = ("_closed", "_record", "_worker", "key")

    def __init__(self, worker: UsageWorker, record: _Stream) -> None:
        self._worker = worker
        self._record = record
        self._closed = False
        self.key = record.key

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _message(self, item: Any) -> tuple[_Stream, Any]:
        if self._closed:
            raise LocalUsageError(f"the sink of stream {self.key!r} is closed")
        if self._worker._stopping:
            raise LocalUsageError("the worker is shutting down and accepts no more items")
        if isinstance(item, (bytearray, memoryview)):
            item = bytes(item)
        return (self._record, item)

    async def send(self, item: Any) -> None:
        """Send the stream's next item, waiting while the worker's buffer is full.

        The item is counted if and only if this returns. While none of this stream's items
        waits in the worker's buffer, the item is taken at once, in the calling task, without
        entering the scheduler; otherwise it joins the buffer. Cancellation is taken only
        before the item is offered, and checked on the stream's first item and then on every
        32nd; a send that has to wait for room then waits, shielded, until the worker takes
        the item (the worker never waits for anything but items, so that is soon) or
        refuses it by stopping.

        Args:
            item: Bytes or an event.

        Raises:
            LocalUsageError: The sink is closed or the worker has stopped; the item was not
                taken.

        """
        record = self._record
        # The scheduler is not entered per item: a round trip costs more than the item
        # (issue 16). The task yields when the buffer is full, and wherever its source
        # awaits; cancellation is checked on the first item and then every 32nd (the check
        # alone costs about a third of an item), so a loop of sends still ends when cancelled.
        sent = record.sent = record.sent + 1
        if sent & 31 == 1:
            await anyio.lowlevel.checkpoint_if_cancelled()
        worker = self._worker
        if not record.queued and worker._taking and not self._closed:
            take = record.take
            if take is not None and item.__class__ is bytes:
                worker._events += 1
                try:
                    take(item)
                except StreamError:
                    pass  # kept; the stream's result will carry it
                except Exception as exc:  # such as a logging handler that raised
                    record.take = None
                    record.feeder.fail(_unexpected(record.feeder, exc))
                return
            # Nothing of this stream waits in the buffer: this item is the stream's next in
            # every order (streams are independent), so it is taken here and now, as the
            # dispatcher would take it, without a round trip through the buffer and the
            # scheduler. Closing a stream (and so its callbacks) still goes through the
            # dispatcher. A closed sink or a stopping worker takes the general path below,
            # whose checks (those of _message) refuse the item.
            if item.__class__ is not bytes and isinstance(item, (bytearray, memoryview)):
                item = bytes(item)
            if record.result is None:  # what _take does, inlined: this is per item
                worker._events += 1
                feeder = record.feeder
                # (A failed accumulator raises its own error again, which is kept, and
                # Feeder.fail records nothing over it: no need to ask it first.)
                if feeder.error is None:
                    try:
                        feeder.feed(item)
                    except StreamError:
                        pass  # kept; the stream's result will carry it
                    except Exception as exc:  # such as a logging handler that raised
                        feeder.fail(_unexpected(feeder, exc))
                    else:
                        if feeder.kind == "bytes":
                            record.take = feeder.acc.feed  # what Feeder.feed does for bytes
            return
        message = self._message(item)
        send = worker._send
        record.queued += 1
        try:
            try:
                send.send_nowait(message)
            except anyio.WouldBlock:
                # Shielded: a send cancelled while it waits could have had its item taken
                # all the same. Once offered, the item is taken soon (the dispatcher only
                # ever waits for items), or refused if the worker stops.
                with anyio.CancelScope(shield=True):
                    await send.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            record.queued -= 1
            raise LocalUsageError("the worker has stopped; the item was not taken") from None

    def send_nowait(self, item: Any) -> None:
        """Send the stream's next item if the worker's buffer has room.

        Args:
            item: Bytes or an event.

        Raises:
            anyio.WouldBlock: The buffer is full; the item was not taken.
            LocalUsageError: The sink is closed or the worker has stopped.

        """
        message = self._message(item)
        record = self._record
        record.queued += 1
        try:
            self._worker._send.send_nowait(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            record.queued -= 1
            raise LocalUsageError("the worker has stopped; the item was not taken") from None
        except anyio.WouldBlock:
            record.queued -= 1
            raise

    async def close(self, error: BaseException | None = None) -> None:
        """End the stream: the worker finishes it after the items sent before.

        When none of the stream's items waits in the buffer and the worker has no
        ``on_result`` or ``on_finish`` callback, the stream is finished here, in the calling
        task, as the worker would finish it next (its result and the totals are there when
        this returns); callbacks always run in the worker's task. Calling it again does
        nothing. When the worker has already stopped, the stream was
        finished by the shutdown and this does nothing either.

        Args:
            error: The exception that ended the stream's source, if it failed (such as the
                anthropic SDK's ``APIStatusError`` or a dropped connection). It becomes the
                stream's error unless the stream already had one: a
                :class:`StreamErrorEvent` with the error's type when it is the SDK's report of
                an ``error`` event, else a :class:`SourceError` whose ``__cause__`` is
                ``error``. usagetally's own errors and cancellations are not recorded.

        """
        if self._closed:
            return
        self._closed = True
        if self._worker._stopping:
            return  # the shutdown finishes every open stream
        worker = self._worker
        record = self._record
        message = (record, _end_marker(error))
        if not record.queued and worker._taking and worker._on_finish is None is worker._on_result:
            # As for an item in send(): nothing of this stream waits in the buffer, so the
            # dispatcher would finish it next. Without callbacks (which run in the worker's
            # task) finishing it here is the same, without the round trip.
            worker._handle(message)
            return
        record.queued += 1
        try:
            try:
                worker._send.send_nowait(message)
            except anyio.WouldBlock:
                with anyio.CancelScope(shield=True):  # as in send()
                    await worker._send.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            record.queued -= 1  # the worker stopped meanwhile and finished the stream

    def send_from_thread(self, item: Any) -> None:
        """Send the next item from a thread that is not the event loop's.

        Blocks the thread while the worker's buffer is full.

        Args:
            item: Bytes or an event.

        Raises:
            LocalUsageError: As :meth:`send`, or this is the event loop's thread (where it
                would deadlock).
            anyio.RunFinishedError: The event loop has ended.

        """
        token = self._worker._from_thread()
        if self._worker._state != "running":
            raise LocalUsageError("the worker has stopped; the item was not taken")
        if isinstance(item, (bytearray, memoryview)):
            item = bytes(item)  # copied in this thread, before the caller can change it
        try:
            anyio.from_thread.run_sync(self.send_nowait, item, token=token)
        except anyio.WouldBlock:
            anyio.from_thread.run(self.send, item, token=token)

    def close_from_thread(self, error: BaseException | None = None) -> None:
        """:meth:`close` from a thread that is not the event loop's.

        Args:
            error: As :meth:`close`.

        Raises:
            LocalUsageError: This is the event loop's thread (where it would deadlock).
            anyio.RunFinishedError: The event loop has ended.

        """
        token = self._worker._from_thread()
        if self._closed or self._worker._state != "running":
            self._closed = True  # the shutdown finished the stream
            return
        anyio.from_thread.run(self.close, error, token=token)

    async def __aenter__(self) -> UsageSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(exc)

    def __enter__(self) -> UsageSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_from_thread(exc)

    def __repr__(self) -> str:
        return f"<UsageSink key={self.key!r} closed={self._closed}>"


class UsageWorker:
    """A background service that accumulates the usage of many concurrent streams.

    ``async with UsageWorker() as worker:`` starts it in a task group of its own. Open a
    sink per stream with :meth:`open`, feed it from tasks (:meth:`UsageSink.send`) or plain
    threads (:meth:`UsageSink.send_from_thread`), close it at the end of the stream, and read
    the result with :meth:`result`, the ``on_result`` callback, or the running
    :attr:`totals`.

    Synchronous programs use ``with UsageWorker() as worker:`` instead: the worker then runs
    in a thread of its own, with an asyncio event loop of its own, and every other thread
    feeds it through the thread-safe calls (:meth:`open_from_thread`,
    :meth:`UsageSink.send_from_thread`, :meth:`UsageSink.close_from_thread`, or ``with
    worker.open_from_thread(key) as sink:``) and reads it through
    :meth:`result_from_thread` and :meth:`totals_from_thread`; after the block, everything
    is readable from any thread. ``on_result`` and ``on_finish`` then run in the worker's
    thread.

    Leaving the ``async with`` block (normally, by an exception or by cancellation) drains
    every item already sent and finishes every stream still open with what it was fed: its
    partial usage is kept and it is marked incomplete unless it was complete. Nothing sent is
    lost or counted twice.

    The worker's own methods and properties (:meth:`open`, :meth:`result`, :meth:`partial`,
    :attr:`totals`, ...) belong to the event loop's thread while the worker runs (from
    another thread they raise :class:`LocalUsageError`); from other threads use the
    ``*_from_thread`` methods.

    Args:
        max_buffer: How many items may wait in the shared buffer before ``send`` waits
            (0: every ``send`` waits for the dispatcher).
        on_result: Called with a :class:`StreamResult` as each stream finishes, in the
            worker's task. It must not block. An exception it raises does not stop the
            worker: it is logged on the ``usagetally`` logger, and the first one is raised
            when the ``async with`` block exits.
        on_finish: Called as ``on_finish(usage, model, complete)`` as each stream finishes,
            before ``on_result`` (see :data:`UsageHook`; ``usagetally.otel.otel_hook``
            makes one), in the worker's task. An exception it raises is recorded on that
            stream's :class:`StreamResult` (``hook_error``), logged, and handled as one of
            ``on_result``.
        policy: What to do with consistency diagnostics (see :class:`UsageAccumulator`).
        strict_types: Refuse unknown usage fields and iteration types.
        max_event_size: Largest event, in bytes, accepted from a byte stream.
        keep_results: Keep every finished stream's result for :meth:`result`,
            :meth:`partial` and :attr:`incomplete_keys`. Pass False for a long-running
            worker that reads results through ``on_result`` and :attr:`totals` only, so
            that memory stays bounded; a finished key can then be opened again.
        prices: A price table: each stream is priced as it finishes (``StreamResult.cost``)
            and :attr:`totals` adds the costs up (``totals.cost``).

    Raises:
        LocalTypeError: ``max_buffer`` is not an int.
        LocalValueError: ``max_buffer`` is negative.

    """

    def __init__(
        self,
        *,
        max_buffer: int = 256,
        on_result: Callable[[StreamResult], object] | None = None,
        on_finish: UsageHook | None = None,
        policy: Policy = "warn",
        strict_types: bool = False,
        max_event_size: int | None = None,
        keep_results: bool = True,
        prices: PriceTable | None = None,
    ) -> None:
        if type(max_buffer) is not int:
            raise LocalTypeError(f"max_buffer must be an int, got {max_buffer!r}")
        if max_buffer < 0:
            raise LocalValueError(f"max_buffer must be at least 0, got {max_buffer}")
        UsageAccumulator(policy=policy)  # checks the policy now rather than at each open()
        self._max_buffer = max_buffer
        self._on_result = on_result
        self._on_finish = on_finish
        self._options: dict[str, Any] = {
            "policy": policy,
            "strict_types": strict_types,
            "max_event_size": max_event_size,
        }
        self._keep = keep_results
        self._streams: dict[Hashable, _Stream] = {}
        self._incomplete: dict[Hashable, None] = {}  # an ordered set
        self._prices = prices
        self._totals = UsageTotals(prices=prices)
        self._callback_error: BaseException | None = None
        self._state = "new"  # new, running, stopped
        self._stopping = False
        self._taking = False  # running and not stopping: a send may take its item itself
        self._events = 0
        self._token: anyio.lowlevel.EventLoopToken
        self._loop_thread: int | None = None
        self._send: MemoryObjectSendStream[Any]
        self._receive: MemoryObjectReceiveStream[Any]
        self._tg: TaskGroup
        self._in_thread: tuple[Any, Any] | None = None  # the portal and the wrapped worker

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> UsageWorker:
        if self._state != "new":
            raise LocalUsageError("a UsageWorker runs once; make a new one")
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._send, self._receive = anyio.create_memory_object_stream[Any](self._max_buffer)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._dispatch, name="usagetally.UsageWorker")
        self._state = "running"
        self._taking = True
        return self

    def __enter__(self) -> UsageWorker:
        """Start the worker in a thread of its own, for synchronous programs."""
        if self._state != "new":
            raise LocalUsageError("a UsageWorker runs once; make a new one")
        portal_cm = anyio.from_thread.start_blocking_portal()
        portal = portal_cm.__enter__()
        try:
            running = portal.wrap_async_context_manager(self)
            running.__enter__()
        except BaseException as exc:
            portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._in_thread = (portal_cm, running)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._in_thread is None:
            raise LocalUsageError("this UsageWorker was not started with `with`")
        portal_cm, running = self._in_thread
        try:
            suppress: bool | None = running.__exit__(exc_type, exc, tb)
        finally:
            portal_cm.__exit__(None, None, None)
        return suppress

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._stopping = True
        self._taking = False
        try:
            with anyio.CancelScope(shield=True):
                # Queued behind every accepted item (the buffer and waiting senders are FIFO).
                await self._send.send(_STOP)
        except anyio.BrokenResourceError:
            pass  # the dispatcher ended early; its own exception is raised below
        finally:
            self._send.close()
        try:
            suppress = await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._state = "stopped"
        if self._callback_error is not None and exc is None:
            raise self._callback_error
        return suppress

    async def _dispatch(self) -> None:
        receive = self._receive
        with anyio.CancelScope(shield=True), receive:
            try:
                while True:
                    try:
                        message = receive.receive_nowait()
                    except anyio.WouldBlock:
                        message = await receive.receive()
                    if message is _STOP:
                        break
                    message[0].queued -= 1
                    self._handle(message)
            except anyio.EndOfStream:
                pass
            finally:
                # Take what was accepted after _STOP (a sender that passed its check just
                # before shutdown); no await, so nothing can come in between. Closing the
                # receiving end then refuses every later send.
                while True:
                    try:
                        message = receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    if message is not _STOP:
                        message[0].queued -= 1
                        self._handle(message)
                receive.close()
                for record in list(self._streams.values()):
                    if record.result is None:
                        self._finish(record)

    def _handle(self, message: tuple[_Stream, Any]) -> None:
        record, item = message
        if record.result is not None:
            return  # a finished stream (only possible when a sink was misused)
        if item is _END:
            self._finish(record)
            return
        feeder = record.feeder
        if item.__class__ is _Failed:
            if feeder.failure is None:
                feeder.fail_from(item.exc)
            self._finish(record)
            return
        self._take(record, item)

    def _take(self, record: _Stream, item: Any) -> None:
        # One item of an unfinished stream.
        self._events += 1
        feeder = record.feeder
        if feeder.error is None and feeder.acc.error is None:
            try:
                feeder.feed(item)
            except StreamError:
                pass  # kept; the stream's result will carry it
            except Exception as exc:  # such as a logging handler that raised
                record.take = None  # a send feeds it no more either
                feeder.fail(_unexpected(feeder, exc))

    def _finish(self, record: _Stream) -> None:
        record.take = None
        try:
            usage: BetaUsage | None = record.feeder.finish()
            error = None
        except StreamError as exc:
            usage, error = exc.partial, exc
        except Exception as exc:  # such as a logging handler that raised
            error = record.feeder.fail(_unexpected(record.feeder, exc))
            usage = error.partial
        model = record.model if record.model is not None else record.feeder.acc.model
        complete = error is None
        hook_error = None
        if self._on_finish is not None:
            hook_error = run_hook(self._on_finish, usage, model, complete)
            if hook_error is not None and self._callback_error is None:
                self._callback_error = hook_error
        cost = None
        if usage is not None:
            cost = self._totals.add(usage, model=model, complete=complete)
        result = StreamResult(
            key=record.key,
            usage=usage,
            complete=complete,
            error=error,
            model=model,
            cost=cost,
            diagnostics=tuple(record.feeder.acc.diagnostics),
            hook_error=hook_error,
        )
        record.result = result
        if self._keep:
            if not complete:
                self._incomplete[record.key] = None
        else:
            del self._streams[record.key]
        if record.done is not None:
            record.done.set()
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception as exc:
                # It does not stop the worker; the first failure is raised at exit.
                logger.error(
                    "the on_result callback raised %s: %s (stream %r)",
                    type(exc).__name__,
                    exc,
                    record.key,
                    exc_info=exc,
                )
                if self._callback_error is None:
                    self._callback_error = exc

    def _in_loop(self, what: str) -> None:
        """Refuse a call that belongs to the event loop's thread, made from another one."""
        if self._state == "running" and threading.get_ident() != self._loop_thread:
            raise LocalUsageError(
                f"{what} belongs to the worker's event loop thread; from another thread use "
                "the *_from_thread methods (or read it after the worker has stopped)"
            )

    def _from_thread(self) -> anyio.lowlevel.EventLoopToken:
        """Return the event loop's token, for a call from another thread."""
        if self._loop_thread is None:
            raise LocalUsageError("the worker has not started")
        if threading.get_ident() == self._loop_thread:
            # from_thread would wait for the loop, which is this thread: a deadlock.
            raise LocalUsageError(
                "a *_from_thread method was called in the event loop's thread; "
                "await the plain method instead"
            )
        return self._token

    # -- streams ---------------------------------------------------------------------------

    def open(self, key: Hashable, *, model: str | None = None) -> UsageSink:
        """Open a stream and return its sink.

        Call it in the event loop's thread (from another thread use
        :meth:`open_from_thread`).

        Args:
            key: The stream's key, unique in this worker (any hashable value).
            model: The model to count the stream under in :attr:`totals`; by default the
                one ``message_start`` names.

        Returns:
            The stream's sink.

        Raises:
            LocalUsageError: The key is already in use, or the worker is not running.

        """
        if self._state != "running" or self._stopping:
            raise LocalUsageError("the worker is not running: open streams inside async with")
        self._in_loop("open()")
        if key in self._streams:
            raise LocalUsageError(f"a stream with key {key!r} was already opened")
        record = _Stream(key, model, Feeder(UsageAccumulator(**self._options)))
        self._streams[key] = record
        return UsageSink(self, record)

    def open_from_thread(self, key: Hashable, *, model: str | None = None) -> UsageSink:
        """:meth:`open` from a thread that is not the event loop's.

        Args:
            key: As :meth:`open`.
            model: As :meth:`open`.

        Returns:
            The stream's sink.

        Raises:
            LocalUsageError: As :meth:`open`, or this is the event loop's thread.

        """

        def open_() -> UsageSink:
            return self.open(key, model=model)

        token = self._from_thread()
        if self._state != "running":
            raise LocalUsageError("the worker has stopped: open streams while it runs")
        return anyio.from_thread.run_sync(open_, token=token)

    def result_from_thread(self, key: Hashable) -> BetaUsage:
        """:meth:`result` from a thread that is not the event loop's: wait for the stream.

        Blocks the thread until the stream is finished. Once the worker has stopped, it
        can be called from any thread.

        Args:
            key: The stream's key.

        Returns:
            The final usage.

        Raises:
            StreamError: As :meth:`result`.
            KeyError: As :meth:`result`.
            LocalUsageError: This is the event loop's thread, or the worker has not started.

        """
        if self._state == "stopped":
            record = self._record(key)
            assert record.result is not None  # the shutdown finished every stream
            return _outcome(record.result)
        token = self._from_thread()
        if self._state != "running":
            raise LocalUsageError("the worker has not started")
        return anyio.from_thread.run(self.result, key, token=token)

    def totals_from_thread(self) -> UsageTotals:
        """:attr:`totals` from a thread that is not the event loop's.

        Returns:
            A copy of the running totals.

        Raises:
            LocalUsageError: This is the event loop's thread, or the worker has not started.

        """
        if self._state == "stopped":
            return self.totals
        token = self._from_thread()

        def totals() -> UsageTotals:
            return self.totals

        return anyio.from_thread.run_sync(totals, token=token)

    async def result(self, key: Hashable) -> BetaUsage:
        """Wait until a stream is finished and return its final usage.

        Args:
            key: The stream's key.

        Returns:
            The final usage.

        Raises:
            StreamError: The stream is incomplete or failed: an
                :class:`IncompleteStreamError` for a stream cut short (or still open when
                the worker stopped), else the error it sent; ``partial`` holds its usage.
            KeyError: No stream has this key (or it was finished and not kept).

        """
        record = self._record(key)
        if record.result is None:
            if record.done is None:
                record.done = anyio.Event()
            await record.done.wait()
        result = record.result
        assert result is not None
        return _outcome(result)

    def partial(self, key: Hashable) -> BetaUsage | None:
        """Return a stream's usage as counted so far, final or not.

        Args:
            key: The stream's key.

        Returns:
            The usage of the items processed so far (its final usage once finished), or
            None before ``message_start``.

        Raises:
            KeyError: No stream has this key (or it was finished and not kept).

        """
        self._in_loop("partial()")
        record = self._record(key)
        if record.result is not None:
            return record.result.usage
        return record.feeder.acc.usage

    def _record(self, key: Hashable) -> _Stream:
        try:
            return self._streams[key]
        except KeyError:
            raise KeyError(f"no stream with key {key!r} in this worker") from None

    # -- figures ---------------------------------------------------------------------------

    @property
    def totals(self) -> UsageTotals:
        """Billed tokens summed over every finished stream, per model (a copy).

        Incomplete streams are added with their partial usage and counted in
        ``totals.incomplete``; a stream that failed before ``message_start`` adds nothing.
        Streams still open are not in it. With prices, ``totals.cost`` is their cost.
        """
        self._in_loop("totals")
        totals = UsageTotals(prices=self._prices)
        totals.merge(self._totals)
        return totals

    @property
    def incomplete_keys(self) -> list[Hashable]:
        """The keys of the finished streams that are incomplete, in the order they ended."""
        return list(self._incomplete)

    @property
    def events_processed(self) -> int:
        """How many items (chunks or events) the worker has fed to accumulators."""
        return self._events

    def __repr__(self) -> str:
        open_ = sum(1 for r in self._streams.values() if r.result is None)
        return f"<UsageWorker {self._state} open={open_} totals={self._totals!r}>"
