"""Transcripts and chunkers: events as the bytes the API sends, split as a network might.

Import them from :mod:`usagetally.testing`, which re-exports them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._errors import LocalValueError
from ._builders import wire_form

_LINE_ENDINGS = ("\n", "\r\n", "\r")


def sse_bytes(events: Iterable[Mapping[str, Any]], line_ending: str = "\n") -> bytes:
    r"""Encode events as the ``text/event-stream`` body the API sends.

    Each event becomes an ``event:`` line naming its ``type`` (left out when it has none), a
    ``data:`` line with its compact JSON (UTF-8, not ASCII-escaped) and a blank line.

    Args:
        events: The events, such as those from the builders.
        line_ending: ``"\n"`` (default), ``"\r\n"`` or ``"\r"``; all three are valid SSE.

    Returns:
        The transcript.

    Raises:
        LocalValueError: ``line_ending`` is not one of the three.

    >>> from usagetally.testing import message_stop, ping
    >>> sse_bytes([ping(), message_stop()])
    b'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    >>> sse_bytes([ping()], line_ending="\r\n")
    b'event: ping\r\ndata: {"type":"ping"}\r\n\r\n'

    """
    if line_ending not in _LINE_ENDINGS:
        raise LocalValueError(f"line_ending must be '\\n', '\\r\\n' or '\\r', got {line_ending!r}")
    return b"".join(_encode_event(event, line_ending) for event in events)


def _encode_event(event: Mapping[str, Any], line_ending: str) -> bytes:
    data = json.dumps(wire_form(event), separators=(",", ":"), ensure_ascii=False)
    kind = event.get("type")
    head = f"event: {kind}{line_ending}" if isinstance(kind, str) else ""
    return f"{head}data: {data}{line_ending}{line_ending}".encode()


def chunks_fixed(data: bytes, size: int) -> list[bytes]:
    """Split bytes into chunks of ``size`` bytes (the last one may be shorter).

    Args:
        data: The bytes to split.
        size: The chunk size, at least 1 (``1`` feeds byte by byte).

    Returns:
        The chunks, in order; an empty list for empty ``data``.

    Raises:
        LocalValueError: ``size`` is less than 1.

    >>> chunks_fixed(b"abcdefg", 3)
    [b'abc', b'def', b'g']

    """
    if size < 1:
        raise LocalValueError(f"size must be at least 1, got {size}")
    return [data[i : i + size] for i in range(0, len(data), size)]


def all_two_way_splits(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield every split of bytes in two: at each offset from 0 to ``len(data)``.

    Feeding both halves of each split to a fresh decoder must always give the same result;
    this is the classic way to find buffering bugs at a boundary.

    Args:
        data: The bytes to split.

    Yields:
        ``(data[:i], data[i:])`` for every ``i``, ``len(data) + 1`` pairs in all.

    >>> list(all_two_way_splits(b"ab"))
    [(b'', b'ab'), (b'a', b'b'), (b'ab', b'')]

    """
    for i in range(len(data) + 1):
        yield data[:i], data[i:]


def random_chunks(data: bytes, seed: int | str, max_size: int = 32) -> list[bytes]:
    r"""Split bytes into chunks of random sizes, reproducibly.

    Args:
        data: The bytes to split.
        seed: The seed of the random sizes: the same seed gives the same chunks.
        max_size: The largest chunk size (each is from 1 to ``max_size`` bytes).

    Returns:
        The chunks, in order; joined they give back ``data``.

    Raises:
        LocalValueError: ``max_size`` is less than 1.

    >>> chunks = random_chunks(b"event: ping\n\n", seed=7, max_size=4)
    >>> b"".join(chunks), all(1 <= len(c) <= 4 for c in chunks)
    (b'event: ping\n\n', True)
    >>> chunks == random_chunks(b"event: ping\n\n", seed=7, max_size=4)
    True

    """
    if max_size < 1:
        raise LocalValueError(f"max_size must be at least 1, got {max_size}")
    rng = random.Random(seed)
    chunks = []
    offset = 0
    while offset < len(data):
        size = rng.randint(1, max_size)
        chunks.append(data[offset : offset + size])
        offset += size
    return chunks
