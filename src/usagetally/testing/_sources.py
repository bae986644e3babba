"""Sources: a transcript replayed to the code under test.

:func:`replay_source` reads it as an async iterator of bytes; :func:`anthropic_client` and
:func:`anthropic_sync_client` are real SDK clients whose network is replaced, and
:func:`sdk_final_usage` is the SDK's own reading of a transcript. Import them from
:mod:`usagetally.testing`, which re-exports them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import LocalValueError
from .._install import install_hint
from ._transcripts import sse_bytes

if TYPE_CHECKING:
    import httpx2
    from anthropic import Anthropic, AsyncAnthropic


def _event_ends(data: bytes) -> list[int]:
    """Offsets where each event of a transcript ends (after its blank line).

    A trailing event without its blank line ends at ``len(data)``.
    """
    ends = []
    offset = 0
    pending = False
    for line in data.splitlines(keepends=True):
        offset += len(line)
        if line in (b"\n", b"\r\n", b"\r"):
            if pending:
                ends.append(offset)
                pending = False
        else:
            pending = True
    if pending:
        ends.append(len(data))
    return ends


class _ReplaySource:
    """The async iterator behind :func:`replay_source` (a class, so it needs no aclose)."""

    def __init__(
        self,
        pieces: list[bytes],
        fail_after: int | None,
        delay: float,
        exc: BaseException | Callable[[str], BaseException],
        fail_at: int | None,
    ) -> None:
        self._pieces = pieces
        self._next = 0
        self._fail_after = fail_after
        self._delay = delay
        self._exc = exc
        self._fail_at = fail_at

    def __aiter__(self) -> _ReplaySource:
        return self

    async def __anext__(self) -> bytes:
        await anyio.sleep(self._delay)
        if self._fail_after is not None and self._next == self._fail_after:
            exc = self._exc
            if not isinstance(exc, BaseException):
                exc = exc(f"replay_source failed at event {self._fail_at}, as asked")
            raise exc
        if self._next >= len(self._pieces):
            raise StopAsyncIteration
        piece = self._pieces[self._next]
        self._next += 1
        return piece

    async def aclose(self) -> None:
        """Stop the replay: the next read ends the iteration."""
        self._next = len(self._pieces)
        self._fail_after = None


def replay_source(
    data_or_events: bytes | Iterable[Mapping[str, Any]],
    *,
    chunk_size: int | None = None,
    delay: float = 0,
    fail_at: int | None = None,
    exc: BaseException | Callable[[str], BaseException] = ConnectionResetError,
) -> AsyncIterator[bytes]:
    r"""Replay a transcript as an async iterator of bytes, like a response body being read.

    Works on asyncio and trio (through anyio). Each chunk is preceded by
    ``anyio.sleep(delay)``, so even with no delay every read is a checkpoint where other
    tasks run and cancellation is delivered.

    Args:
        data_or_events: The transcript as bytes, or events (encoded with :func:`sse_bytes`).
        chunk_size: Split the transcript into chunks of this many bytes; by default each
            event is one chunk.
        delay: Seconds to wait before each chunk.
        fail_at: Raise ``exc`` instead of delivering event ``fail_at`` (0 is the first
            event): every byte before that event is delivered, none of it or after. A chunk
            that would straddle the boundary is cut there. ``fail_at`` equal to the number of
            events fails after the whole transcript.
        exc: The exception to raise: an instance, or an exception class (or any callable)
            called with a message (default :class:`ConnectionResetError`, like a dropped
            connection).

    Returns:
        An async iterator of bytes (it needs no closing).

    Raises:
        LocalValueError: ``chunk_size`` is less than 1, or ``fail_at`` is not between 0 and the
            number of events.

    >>> import anyio
    >>> from usagetally.testing import message_stop, ping
    >>> async def read_all(source):
    ...     return [chunk async for chunk in source]
    >>> anyio.run(read_all, replay_source([ping(), message_stop()]))
    [b'event: ping\ndata: {"type":"ping"}\n\n',
     b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    >>> anyio.run(read_all, replay_source([ping(), message_stop()], fail_at=1))
    Traceback (most recent call last):
    ConnectionResetError: replay_source failed at event 1, as asked

    """
    if isinstance(data_or_events, (bytes, bytearray, memoryview)):
        data = bytes(data_or_events)
    else:
        data = sse_bytes(data_or_events)
    ends = _event_ends(data)
    if chunk_size is not None and chunk_size < 1:
        raise LocalValueError(f"chunk_size must be at least 1, got {chunk_size}")
    limit = len(data)
    if fail_at is not None:
        if not 0 <= fail_at <= len(ends):
            raise LocalValueError(
                f"fail_at must be between 0 and {len(ends)} (the number of events), got {fail_at}"
            )
        limit = ends[fail_at - 1] if fail_at > 0 else 0
    if chunk_size is None:
        bounds = [end for end in ends if end <= limit]
        if not bounds or bounds[-1] != limit:
            bounds.append(limit)
    else:
        bounds = [*range(chunk_size, limit, chunk_size), limit]
    pieces = []
    start = 0
    for end in bounds:
        if end > start:
            pieces.append(data[start:end])
        start = end
    return _ReplaySource(pieces, len(pieces) if fail_at is not None else None, delay, exc, fail_at)


def anthropic_client(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> AsyncAnthropic:
    r"""Build a real ``anthropic.AsyncAnthropic`` client that answers with ``transcript``.

    Only the network is replaced (by an ``httpx2.MockTransport``): request building, the SSE
    decoder and the stream accumulation are the SDK's own, so code built on the SDK is tested
    end to end. The client has ``max_retries=0``. Close it after use (``async with``).

    Args:
        transcript: The response body of every request: SSE bytes, events (encoded with
            :func:`sse_bytes`), or a function returning bytes, called once per request.
        status_code: The HTTP status of every response.
        headers: Response headers added to ``content-type: text/event-stream``.

    Returns:
        An ``AsyncAnthropic`` client that never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed (it comes with the
            ``usagetally[anthropic]`` extra).

    >>> import anyio
    >>> from usagetally.testing import text_stream
    >>> async def main():
    ...     async with anthropic_client(text_stream("Hi!", output_tokens=4)) as client:
    ...         async with client.messages.stream(
    ...             model="claude-sonnet-4-6", max_tokens=64,
    ...             messages=[{"role": "user", "content": "Hello"}],
    ...         ) as stream:
    ...             message = await stream.get_final_message()
    ...     return message.content[0].text, message.usage.output_tokens
    >>> anyio.run(main)
    ('Hi!', 4)

    """
    _require_sdk()
    import anthropic
    import httpx2

    http_client = httpx2.AsyncClient(transport=_transport(_body(transcript), status_code, headers))
    return anthropic.AsyncAnthropic(api_key="test", max_retries=0, http_client=http_client)


def anthropic_sync_client(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Anthropic:
    r"""Build a real synchronous ``anthropic.Anthropic`` client that answers with ``transcript``.

    The synchronous twin of :func:`anthropic_client`, with the same arguments, for code that
    uses ``anthropic.Anthropic``. Close it after use (``with``).

    Args:
        transcript: As :func:`anthropic_client`.
        status_code: As :func:`anthropic_client`.
        headers: As :func:`anthropic_client`.

    Returns:
        An ``Anthropic`` client that never touches the network.

    Raises:
        ImportError: The anthropic SDK is not installed.

    >>> from usagetally.testing import text_stream
    >>> with anthropic_sync_client(text_stream("Hi!", output_tokens=4)) as client:
    ...     with client.messages.stream(
    ...         model="claude-sonnet-4-6", max_tokens=64,
    ...         messages=[{"role": "user", "content": "Hello"}],
    ...     ) as stream:
    ...         message = stream.get_final_message()
    >>> message.content[0].text, message.usage.output_tokens
    ('Hi!', 4)

    """
    _require_sdk()
    import anthropic
    import httpx2

    http_client = httpx2.Client(transport=_transport(_body(transcript), status_code, headers))
    return anthropic.Anthropic(api_key="test", max_retries=0, http_client=http_client)


async def sdk_final_usage(transcript: bytes) -> dict[str, Any]:
    """Read a transcript with the SDK and return its final usage in wire form.

    Streams ``transcript`` through ``client.beta.messages.stream(...)`` on a client from
    :func:`anthropic_client` and returns
    ``(await stream.get_final_message()).usage.to_dict(mode="json", warnings=False)``: what
    the SDK's accumulator makes of the stream: a differential oracle, for a test to compare
    with usagetally's result.
    The SDK keeps the ``cache_creation`` split of ``message_start`` even when a
    ``message_delta`` changes ``cache_creation_input_tokens``.

    Args:
        transcript: SSE bytes exactly as the API sends them.

    Returns:
        The final usage as a JSON-compatible dict.

    Raises:
        ImportError: The anthropic SDK is not installed.
        anthropic.APIStatusError: The transcript holds an ``error`` event.
        Exception: Whatever the SDK raises on a stream it cannot read (such as a
            ``RuntimeError`` on events before ``message_start``).

    >>> import anyio
    >>> from usagetally.testing import text_stream
    >>> anyio.run(sdk_final_usage, sse_bytes(text_stream(output_tokens=4)))["output_tokens"]
    4

    """
    async with (
        anthropic_client(transcript) as client,
        client.beta.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=1024,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream,
    ):
        message = await stream.get_final_message()
    return message.usage.to_dict(mode="json", warnings=False)


def _require_sdk() -> None:
    try:
        import anthropic  # noqa: F401
        import httpx2  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"this needs the anthropic SDK; {install_hint('anthropic')}") from exc


def _transport(
    transcript: bytes | Callable[[], bytes], status_code: int, headers: Mapping[str, str] | None
) -> httpx2.MockTransport:
    import httpx2

    response_headers = {"content-type": "text/event-stream"}
    if headers is not None:
        response_headers.update({k.lower(): v for k, v in headers.items()})

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = transcript() if callable(transcript) else transcript
        return httpx2.Response(status_code, headers=response_headers, content=body)

    return httpx2.MockTransport(handler)


def _body(
    transcript: bytes | Iterable[Mapping[str, Any]] | Callable[[], bytes],
) -> bytes | Callable[[], bytes]:
    if isinstance(transcript, (bytes, bytearray, memoryview)):
        return bytes(transcript)
    if callable(transcript):
        return transcript
    return sse_bytes(transcript)
