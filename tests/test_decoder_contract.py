"""The decoder's driving interface, as the accumulator uses it (SSEDecoder's docstrings).

``feed_located`` returns events with their index and offset and pauses after a type of
``pause_after`` or beyond ``pause_bytes``; ``paused`` says so; ``resume`` reads on with the
``keep`` then in force; ``pass_over`` changes no result. Every figure here is compared with
the same stream read by a decoder that keeps everything and never pauses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from usagetally import LocalUsageError, SSEDecoder

KEPT = {"message_start", "message_delta", "message_stop", "error", "message"}
PASSED = ("content_block_delta", "ping", "content_block_start", "content_block_stop")


def sse(name: str | None, data: object) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {name}\n" if name is not None else ""
    return f"{head}data: {text}\n\n".encode()


def stream() -> list[bytes]:
    events = [sse("message_start", {"type": "message_start", "message": {}})]
    events += [sse("ping", {"type": "ping"})]
    events += [
        sse("content_block_delta", {"type": "content_block_delta", "i": i}) for i in range(5)
    ]
    events += [sse("content_block_delta", {"type": "message_delta", "retyped": True})]
    events += [sse("message_delta", {"type": "message_delta"})]
    events += [sse("message_stop", {"type": "message_stop"})]
    events += [sse("ping", {"type": "ping"}), sse(None, {"type": "content_block_delta"})]
    return events


def paused(decoder: SSEDecoder) -> bool:
    return decoder.paused  # read afresh each time (a type checker would keep it narrowed)


def everything(chunks: list[bytes]) -> list[tuple[int, int, str, str]]:
    decoder = SSEDecoder()
    out = []
    for chunk in chunks:
        out += [(i, o, e.event, e.data) for i, o, e in decoder.feed_located(chunk)]
    return out


def driven(chunks: list[bytes], **options: Any) -> list[tuple[int, int, str, str]]:
    # As the accumulator drives it: read, widen keep after message_stop, resume while paused.
    decoder = SSEDecoder(
        keep=KEPT, check_type=True, unchecked=("ping",), pass_over=PASSED, **options
    )
    out: list[tuple[int, int, str, str]] = []
    stopped = False
    for chunk in chunks:
        got = decoder.feed_located(chunk)
        while True:
            for i, o, e in got:
                out.append((i, o, e.event, e.data))
                stopped = stopped or e.event == "message_stop"
            if stopped:
                decoder.keep = None
            if not decoder.paused:
                break
            got = decoder.resume()
    assert not decoder.paused
    assert decoder.resume() == []
    return out


@pytest.mark.parametrize("how", ["one chunk", "chunk per event", "bytes"])
@pytest.mark.parametrize(
    "options",
    # (Without a pause, the keep in force when an event's blank line arrives decides: a
    # ping after message_stop in the same read would not be returned.)
    [{"pause_after": {"message_stop", "message"}}, {"pause_bytes": 0}],
    ids=["pause after", "pause bytes"],
)
def test_the_driven_decoder_returns_exactly_the_events_the_caller_needs(
    how: str, options: dict[str, Any]
) -> None:
    events = stream()
    data = b"".join(events)
    chunks = {
        "one chunk": [data],
        "chunk per event": events,
        "bytes": [data[i : i + 1] for i in range(len(data))],
    }[how]
    every = everything([data])
    stop = next(k for k, e in enumerate(every) if e[2] == "message_stop")
    # Kept by type, the retyped delta (its data says message_delta), and everything after
    # message_stop; the passed-over ones are counted in the indices all the same.
    wanted = [
        e
        for k, e in enumerate(every)
        if e[2] in KEPT or k > stop or json.loads(e[3])["type"] != e[2]
    ]
    assert driven(chunks, **options) == wanted
    assert [e[0] for e in every] == list(range(len(events)))


def test_a_read_pauses_after_a_pause_after_type_and_resumes_where_it_stopped() -> None:
    data = b"".join(stream())
    decoder = SSEDecoder(keep=KEPT, pause_after={"message_start", "message_delta"})
    first = decoder.feed_located(data)
    assert [e.event for _, _, e in first] == ["message_start"]
    assert paused(decoder)
    second = decoder.resume()
    assert [e.event for _, _, e in second] == ["message_delta"]
    assert paused(decoder)
    decoder.keep = None  # applies from the next read
    rest = decoder.resume()
    assert [e.event for _, _, e in rest] == ["message_stop", "ping", "message"]
    assert not paused(decoder)
    assert decoder.events_dispatched == len(stream())


def test_a_chunk_fed_while_paused_is_read_after_the_held_rest() -> None:
    events = stream()
    decoder = SSEDecoder(keep=KEPT, pause_after={"message_start"})
    got = decoder.feed_located(b"".join(events[:4]))
    assert decoder.paused
    got += decoder.feed_located(b"".join(events[4:]))
    assert [(i, o) for i, o, _ in got] == [
        (i, o) for i, o, *_ in everything([b"".join(events)]) if i in {0, 8, 9, 11}
    ]


def test_bad_driving_options_are_refused() -> None:
    with pytest.raises(TypeError):
        SSEDecoder(pause_after="message_stop")
    with pytest.raises(TypeError):
        SSEDecoder(pass_over="ping")
    with pytest.raises(LocalUsageError):
        SSEDecoder(pause_bytes=-1)
    decoder = SSEDecoder(keep=KEPT)
    with pytest.raises(TypeError):
        decoder.keep = "ping"


def test_pass_over_changes_no_result() -> None:
    data = b"".join(stream())
    for chunks in ([data], stream()):
        plain = SSEDecoder(keep=KEPT, check_type=True, unchecked=("ping",))
        seeded = SSEDecoder(keep=KEPT, check_type=True, unchecked=("ping",), pass_over=PASSED)
        a = [x for c in chunks for x in plain.feed_located(c)]
        b = [x for c in chunks for x in seeded.feed_located(c)]
        assert a == b
        assert plain.events_dispatched == seeded.events_dispatched == len(stream())
