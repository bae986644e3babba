"""The public testing kit: builders, transcripts, chunkers, sources and usage assertions.

Every builder is checked by reading its stream back twice, with our accumulator and with the
anthropic SDK's own client, and comparing both final usages with the usage the builders were
asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import anthropic
import anyio
import pytest
from anthropic.types import Usage as SdkUsage
from anthropic.types.beta import BetaMessageDeltaUsage as SdkBetaMessageDeltaUsage
from anthropic.types.beta import BetaUsage as SdkBetaUsage

from usagetally import (
    BetaCacheCreation,
    BetaCompactionIterationUsage,
    BetaMessageDeltaUsage,
    BetaMessageIterationUsage,
    BetaUsage,
    IncompleteStreamError,
    SourceError,
    StreamErrorEvent,
    UsageAccumulator,
    converter,
)
from usagetally import testing as t
from usagetally._aio import accumulate
from usagetally.testing import sdk_final_usage

Events = list[dict[str, Any]]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def ours(
    data: bytes | Iterable[Mapping[str, Any]], chunks: Iterable[bytes] | None = None
) -> BetaUsage:
    """The final usage our accumulator reads from a transcript (fed in ``chunks`` if given)."""
    if not isinstance(data, bytes):
        data = t.sse_bytes(data)
    acc = UsageAccumulator()
    for chunk in [data] if chunks is None else chunks:
        acc.feed(chunk)
    return acc.finish()


def sdk(data: bytes | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The final usage the anthropic SDK's client reads from a transcript."""
    if not isinstance(data, bytes):
        data = t.sse_bytes(data)
    return anyio.run(sdk_final_usage, data)


def with_pings(events: Events) -> Events:
    out: Events = [t.ping()]
    for event in events:
        out += [event, t.ping()]
    return out


ZERO_CACHE = {
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
}
ZERO_ENTRY = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

ADVISOR_ENTRIES = [
    t.message_iteration(input_tokens=412, output_tokens=89),
    t.advisor_iteration(input_tokens=823, output_tokens=1612),
    t.message_iteration(input_tokens=1348, output_tokens=442, cache_read_input_tokens=412),
]

# Each case: the events, and the final usage they must give (in wire form).
STREAMS: dict[str, tuple[Events, dict[str, Any]]] = {
    "text_stream_defaults": (
        t.text_stream(),
        {"input_tokens": 25, "output_tokens": 15, **ZERO_CACHE, "service_tier": "standard"},
    ),
    "cache_write_split": (
        t.text_stream(
            "Cached.",
            input_tokens=3,
            output_tokens=9,
            cache_creation_input_tokens=1200,
            cache_creation=t.cache_creation(200, 1000),
        ),
        {
            "input_tokens": 3,
            "output_tokens": 9,
            "cache_creation_input_tokens": 1200,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 1000},
            "service_tier": "standard",
        },
    ),
    "cache_write_auto_split": (
        t.text_stream(input_tokens=3, output_tokens=9, cache_creation_input_tokens=700),
        {
            "input_tokens": 3,
            "output_tokens": 9,
            "cache_creation_input_tokens": 700,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 700, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
        },
    ),
    "cache_read": (
        t.text_stream(input_tokens=3, output_tokens=9, cache_read_input_tokens=5000),
        {
            "input_tokens": 3,
            "output_tokens": 9,
            **ZERO_CACHE,
            "cache_read_input_tokens": 5000,
            "service_tier": "standard",
        },
    ),
    "priority_fast_geo": (
        t.text_stream(service_tier="priority", speed="fast", inference_geo="us"),
        {
            "input_tokens": 25,
            "output_tokens": 15,
            **ZERO_CACHE,
            "service_tier": "priority",
            "speed": "fast",
            "inference_geo": "us",
        },
    ),
    "thinking": (
        [
            t.message_start(input_tokens=40),
            t.thinking_block_start(0),
            t.thinking_delta("Let me think", 0),
            t.thinking_delta(" about it.", 0),
            t.signature_delta(index=0),
            t.content_block_stop(0),
            t.content_block_start(index=1),
            t.text_delta("42", 1),
            t.content_block_stop(1),
            t.message_delta(output_tokens=180, output_tokens_details=t.output_tokens_details(120)),
            t.message_stop(),
        ],
        {
            "input_tokens": 40,
            "output_tokens": 180,
            **ZERO_CACHE,
            "service_tier": "standard",
            "output_tokens_details": {"thinking_tokens": 120},
        },
    ),
    "tool_use": (
        [
            t.message_start(input_tokens=380),
            t.content_block_start(),
            t.text_delta("Checking the weather."),
            t.content_block_stop(0),
            t.tool_use_block_start("get_weather", 1),
            t.input_json_delta("", 1),
            t.input_json_delta('{"city": ', 1),
            t.input_json_delta('"Paris"}', 1),
            t.content_block_stop(1),
            t.message_delta(output_tokens=64, stop_reason="tool_use"),
            t.message_stop(),
        ],
        {"input_tokens": 380, "output_tokens": 64, **ZERO_CACHE, "service_tier": "standard"},
    ),
    "web_search_loop": (
        [
            t.message_start(input_tokens=2679),
            t.content_block_start(),
            t.text_delta("Let me search."),
            t.content_block_stop(0),
            t.tool_use_block_start("web_search", 1, server=True),
            t.input_json_delta('{"query": "weather in Paris"}', 1),
            t.content_block_stop(1),
            t.content_block_start(
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_test_1", "content": []},
                2,
            ),
            t.content_block_stop(2),
            t.content_block_start(index=3),
            t.text_delta("Sunny.", 3),
            t.content_block_stop(3),
            t.message_delta(
                output_tokens=510,
                input_tokens=10682,
                server_tool_use=t.server_tool_use(web_search_requests=1),
                iterations=[
                    t.message_iteration(input_tokens=2679, output_tokens=72),
                    t.message_iteration(input_tokens=8003, output_tokens=438),
                ],
            ),
            t.message_stop(),
        ],
        {
            "input_tokens": 10682,
            "output_tokens": 510,
            **ZERO_CACHE,
            "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
            "service_tier": "standard",
            "iterations": [
                {"type": "message", "input_tokens": 2679, "output_tokens": 72, **ZERO_ENTRY},
                {"type": "message", "input_tokens": 8003, "output_tokens": 438, **ZERO_ENTRY},
            ],
        },
    ),
    "compaction": (
        t.text_stream(
            input_tokens=23000,
            output_tokens=1000,
            iterations=[
                t.compaction_iteration(input_tokens=180000, output_tokens=3500),
                t.message_iteration(input_tokens=23000, output_tokens=1000),
            ],
        ),
        {
            "input_tokens": 23000,
            "output_tokens": 1000,
            **ZERO_CACHE,
            "service_tier": "standard",
            "iterations": [
                {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500, **ZERO_ENTRY},
                {"type": "message", "input_tokens": 23000, "output_tokens": 1000, **ZERO_ENTRY},
            ],
        },
    ),
    "pause_after_compaction": (
        [
            t.message_start(input_tokens=0, output_tokens=0),
            t.message_delta(
                output_tokens=0,
                stop_reason="compaction",
                iterations=[t.compaction_iteration(input_tokens=180000, output_tokens=3500)],
            ),
            t.message_stop(),
        ],
        {
            "input_tokens": 0,
            "output_tokens": 0,
            **ZERO_CACHE,
            "service_tier": "standard",
            "iterations": [
                {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500, **ZERO_ENTRY}
            ],
        },
    ),
    "advisor_with_midstream_delta": (
        [
            t.message_start(input_tokens=412, output_tokens=2),
            t.content_block_start(),
            t.text_delta("Let me ask."),
            t.content_block_stop(0),
            t.message_delta(output_tokens=89, stop_reason=None, iterations=ADVISOR_ENTRIES[:1]),
            t.tool_use_block_start("advisor", 1, server=True),
            t.input_json_delta("{}", 1),
            t.content_block_stop(1),
            t.message_delta(
                output_tokens=531,
                input_tokens=1760,
                cache_read_input_tokens=412,
                iterations=ADVISOR_ENTRIES,
            ),
            t.message_stop(),
        ],
        {
            "input_tokens": 1760,
            "output_tokens": 531,
            **ZERO_CACHE,
            "cache_read_input_tokens": 412,
            "service_tier": "standard",
            "iterations": [
                {"type": "message", "input_tokens": 412, "output_tokens": 89, **ZERO_ENTRY},
                {
                    "type": "advisor_message",
                    "model": "claude-opus-4-7",
                    "input_tokens": 823,
                    "output_tokens": 1612,
                    **ZERO_ENTRY,
                },
                {
                    "type": "message",
                    "input_tokens": 1348,
                    "output_tokens": 442,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 412,
                },
            ],
        },
    ),
    "fallback_redeemed": (
        [
            t.message_start(input_tokens=535, model="claude-opus-4-7"),
            t.content_block_start(),
            t.text_delta("Served by the fallback model."),
            t.content_block_stop(),
            t.message_delta(
                output_tokens=264,
                input_tokens=412,
                iterations=[
                    t.message_iteration(input_tokens=535, model="claude-opus-4-7"),
                    t.fallback_iteration(input_tokens=412, output_tokens=264),
                ],
                fallback_credit=t.fallback_credit(),
            ),
            t.message_stop(),
        ],
        {
            "input_tokens": 412,
            "output_tokens": 264,
            **ZERO_CACHE,
            "service_tier": "standard",
            "iterations": [
                {
                    "type": "message",
                    "input_tokens": 535,
                    "output_tokens": 0,
                    **ZERO_ENTRY,
                    "model": "claude-opus-4-7",
                },
                {
                    "type": "fallback_message",
                    "model": "claude-sonnet-4-6",
                    "input_tokens": 412,
                    "output_tokens": 264,
                    **ZERO_ENTRY,
                },
            ],
            "fallback_credit": {"status": {"type": "redeemed"}},
        },
    ),
    "fallback_credit_not_applied": (
        t.text_stream(
            output_tokens=3,
            fallback_credit=t.fallback_credit(
                "not_applied", reason="tool_use", remove_to_redeem=["web_search"]
            ),
        ),
        {
            "input_tokens": 25,
            "output_tokens": 3,
            **ZERO_CACHE,
            "service_tier": "standard",
            "fallback_credit": {
                "status": {
                    "type": "not_applied",
                    "reason": "tool_use",
                    "remove_to_redeem": ["web_search"],
                }
            },
        },
    ),
    "pings_everywhere": (
        with_pings(t.text_stream(output_tokens=4)),
        {"input_tokens": 25, "output_tokens": 4, **ZERO_CACHE, "service_tier": "standard"},
    ),
    "gateway_input_only_on_delta": (
        [
            t.message_start(
                input_tokens=0,
                cache_creation_input_tokens=None,
                cache_read_input_tokens=None,
                service_tier=None,
                model=None,
            ),
            t.message_delta(output_tokens=30, input_tokens=120),
            t.message_stop(),
        ],
        {"input_tokens": 120, "output_tokens": 30},
    ),
    "gateway_output_only_on_delta": (
        [
            t.message_start(
                input_tokens=120,
                cache_creation_input_tokens=None,
                cache_read_input_tokens=None,
                service_tier=None,
            ),
            t.message_delta(output_tokens=30),
            t.message_stop(),
        ],
        {"input_tokens": 120, "output_tokens": 30},
    ),
    "unknown_fields_and_iteration_type": (
        t.text_stream(
            input_tokens=10,
            output_tokens=5,
            future_field=7,
            iterations=[
                t.message_iteration(input_tokens=10, output_tokens=5),
                {"type": "future_step", "input_tokens": 3, "output_tokens": 1, "extra": 1},
            ],
        ),
        {
            "input_tokens": 10,
            "output_tokens": 5,
            **ZERO_CACHE,
            "service_tier": "standard",
            "iterations": [
                {"type": "message", "input_tokens": 10, "output_tokens": 5, **ZERO_ENTRY},
                {"type": "future_step", "input_tokens": 3, "output_tokens": 1, "extra": 1},
            ],
            "future_field": 7,
        },
    ),
}


# -- builders read back by both readers ---------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_stream_read_back_by_our_accumulator(name: str) -> None:
    events, expected = STREAMS[name]
    t.assert_usage(ours(events), expected)


@pytest.mark.parametrize("name", STREAMS)
def test_stream_read_back_by_the_sdk(name: str) -> None:
    events, expected = STREAMS[name]
    t.assert_usage(sdk(events), expected)


@pytest.mark.parametrize("name", STREAMS)
def test_sdk_and_accumulator_agree_on_the_sdk_client_too(name: str) -> None:
    events, _ = STREAMS[name]

    async def read() -> Any:
        async with (
            t.anthropic_client(events) as client,
            client.beta.messages.stream(
                model="claude-sonnet-4-6",
                max_tokens=64,
                messages=[{"role": "user", "content": "Hi"}],
            ) as stream,
        ):
            message = await stream.get_final_message()
        return message.usage

    t.assert_usage(anyio.run(read), ours(events))


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("line_ending", ["\r\n", "\r"])
def test_line_endings_read_the_same(name: str, line_ending: str) -> None:
    events, expected = STREAMS[name]
    data = t.sse_bytes(events, line_ending=line_ending)
    t.assert_usage(ours(data), expected)
    t.assert_usage(sdk(data), expected)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("seed", range(3))
def test_random_chunks_read_the_same(name: str, seed: int) -> None:
    events, expected = STREAMS[name]
    data = t.sse_bytes(events)
    t.assert_usage(ours(data, t.random_chunks(data, seed, max_size=7)), expected)


def test_every_two_way_split_and_every_byte_read_the_same() -> None:
    events, expected = STREAMS["advisor_with_midstream_delta"]
    data = t.sse_bytes(events, line_ending="\r\n")
    t.assert_usage(ours(data, t.chunks_fixed(data, 1)), expected)
    for head, tail in t.all_two_way_splits(data):
        assert ours(data, [head, tail]) == ours(data)


def test_unknown_delta_field_is_kept_by_us_and_dropped_by_the_sdk() -> None:
    events = [
        t.message_start(input_tokens=10),
        t.message_delta(output_tokens=5, future=3),
        t.message_stop(),
    ]
    assert ours(events).unknown_fields == {"future": 3}
    assert t.usage_diff(ours(events), sdk(events)) == ["future: expected <absent>, got 3"]
    t.assert_usage(ours(events), sdk(events), ignore=["future"])


def test_error_event_fails_both_readers() -> None:
    events = [t.message_start(input_tokens=10), t.ping(), t.error_event()]
    with pytest.raises(StreamErrorEvent) as caught:
        ours(events)
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.error_message == "Overloaded"
    assert caught.value.event_index == 2
    t.assert_usage(caught.value.partial, t.message_start(input_tokens=10)["message"]["usage"])
    with pytest.raises(anthropic.APIStatusError) as sdk_caught:
        sdk(events)
    assert sdk_caught.value.body == t.error_event()


def test_error_event_of_another_type() -> None:
    assert t.error_event("api_error", "Internal server error") == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal server error"},
    }


# -- builders, field by field -------------------------------------------------------------


def test_message_start_is_the_wire_shape() -> None:
    assert t.message_start() == {
        "type": "message_start",
        "message": {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 1,
                "service_tier": "standard",
            },
        },
    }


def test_none_leaves_fields_out() -> None:
    event = t.message_start(
        cache_creation_input_tokens=None,
        cache_read_input_tokens=None,
        service_tier=None,
        model=None,
        speed=None,
    )
    assert event["message"]["usage"] == {"input_tokens": 25, "output_tokens": 1}
    assert "model" not in event["message"]
    assert t.message_delta(output_tokens=None)["usage"] == {}
    assert t.message_iteration(cache_creation_input_tokens=None, cache_read_input_tokens=None) == {
        "type": "message",
        "input_tokens": 0,
        "output_tokens": 0,
    }
    assert "model" not in t.advisor_iteration(model=None)


def test_cache_creation_argument() -> None:
    usage = t.message_start(cache_creation_input_tokens=90, cache_creation=None)["message"]["usage"]
    assert "cache_creation" not in usage
    usage = t.message_start(
        cache_creation_input_tokens=90,
        cache_creation=BetaCacheCreation(
            ephemeral_5m_input_tokens=30, ephemeral_1h_input_tokens=60
        ),
    )["message"]["usage"]
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 30,
        "ephemeral_1h_input_tokens": 60,
    }
    assert t.message_iteration(cache_creation_input_tokens=8, cache_creation="auto")[
        "cache_creation"
    ] == {
        "ephemeral_5m_input_tokens": 8,
        "ephemeral_1h_input_tokens": 0,
    }
    with pytest.raises(ValueError, match="cache_creation must be a mapping, None or 'auto'"):
        t.message_start(cache_creation="manual")  # type: ignore[arg-type]


def test_models_given_to_builders_are_written_in_wire_form() -> None:
    entry = BetaMessageIterationUsage(
        input_tokens=5, output_tokens=2, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    delta = t.message_delta(output_tokens=2, iterations=(entry,))
    assert delta["usage"]["iterations"] == [
        {"type": "message", "input_tokens": 5, "output_tokens": 2, **ZERO_ENTRY}
    ]


def test_message_delta_shape() -> None:
    assert t.message_delta(
        output_tokens=7, stop_reason="max_tokens", stop_sequence=None, input_tokens=3
    ) == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 7, "input_tokens": 3},
    }


def test_content_block_builders() -> None:
    assert t.tool_use_block_start() == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_test_0",
            "name": "get_weather",
            "input": {},
        },
    }
    assert t.tool_use_block_start("f", 2, tool_id="toolu_x")["content_block"]["id"] == "toolu_x"
    assert t.content_block_delta({"type": "citations_delta", "citation": {"x": 1}}) == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "citations_delta", "citation": {"x": 1}},
    }
    assert t.text_delta("é", 3) == {
        "type": "content_block_delta",
        "index": 3,
        "delta": {"type": "text_delta", "text": "é"},
    }


def test_usage_shape_builders() -> None:
    assert t.server_tool_use(web_fetch_requests=2, code_execution_requests=1) == {
        "web_search_requests": 0,
        "web_fetch_requests": 2,
        "code_execution_requests": 1,
    }
    assert t.compaction_iteration(input_tokens=1) == {
        "type": "compaction",
        "input_tokens": 1,
        "output_tokens": 0,
        **ZERO_ENTRY,
    }
    assert t.fallback_iteration(model="m", output_tokens=3)["model"] == "m"
    assert t.fallback_credit("not_applied", reason="r") == {
        "status": {"type": "not_applied", "reason": "r"}
    }


def test_text_stream_shapes() -> None:
    assert [e["type"] for e in t.text_stream([])] == [
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    ]
    one = t.text_stream("a whole string is one chunk")
    assert [e["delta"]["text"] for e in one if e["type"] == "content_block_delta"] == [
        "a whole string is one chunk"
    ]
    events = t.text_stream(output_tokens=5, speed="fast", iterations=[], stop_reason="max_tokens")
    assert events[0]["message"]["usage"]["speed"] == "fast"
    assert events[0]["message"]["usage"]["output_tokens"] == 1
    assert events[-2]["usage"] == {"output_tokens": 5, "iterations": []}
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


# -- transcripts and chunkers -------------------------------------------------------------


def test_sse_bytes_is_compact_utf8_with_event_names() -> None:
    data = t.sse_bytes([t.text_delta("naïve ✓"), {"data": "untyped"}])
    assert (
        data
        == (
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"naïve ✓"}}\n\n'
            'data: {"data":"untyped"}\n\n'
        ).encode()
    )
    assert t.sse_bytes([]) == b""


def test_sse_bytes_refuses_other_line_endings() -> None:
    with pytest.raises(ValueError, match="line_ending must be"):
        t.sse_bytes([t.ping()], line_ending="\n\r")


def test_chunkers() -> None:
    data = bytes(range(50))
    assert b"".join(t.chunks_fixed(data, 7)) == data
    assert [len(c) for c in t.chunks_fixed(data, 7)] == [7] * 7 + [1]
    assert t.chunks_fixed(b"", 3) == []
    with pytest.raises(ValueError, match="size must be at least 1, got 0"):
        t.chunks_fixed(data, 0)
    splits = list(t.all_two_way_splits(data))
    assert len(splits) == 51
    assert all(head + tail == data for head, tail in splits)
    chunks = t.random_chunks(data, "seed", max_size=5)
    assert b"".join(chunks) == data
    assert all(1 <= len(c) <= 5 for c in chunks)
    assert chunks == t.random_chunks(data, "seed", max_size=5)
    assert chunks != t.random_chunks(data, "other seed", max_size=5)
    assert t.random_chunks(b"", 1) == []
    with pytest.raises(ValueError, match="max_size must be at least 1, got 0"):
        t.random_chunks(data, 1, max_size=0)


# -- replay_source ------------------------------------------------------------------------


async def collect(source: Any) -> list[bytes]:
    return [chunk async for chunk in source]


@pytest.mark.anyio
async def test_replay_source_yields_one_event_per_chunk() -> None:
    events = t.text_stream(output_tokens=3)
    chunks = await collect(t.replay_source(events))
    assert chunks == [t.sse_bytes([e]) for e in events]


@pytest.mark.anyio
async def test_replay_source_of_bytes_finds_the_events() -> None:
    events = [t.ping(), t.message_stop()]
    data = t.sse_bytes(events, line_ending="\r\n") + b"event: partial"
    chunks = await collect(t.replay_source(data))
    assert chunks == [
        t.sse_bytes([events[0]], line_ending="\r\n"),
        t.sse_bytes([events[1]], line_ending="\r\n"),
        b"event: partial",
    ]
    assert await collect(t.replay_source(b"")) == []


@pytest.mark.anyio
async def test_replay_source_with_chunk_size() -> None:
    data = t.sse_bytes(t.text_stream())
    chunks = await collect(t.replay_source(data, chunk_size=10))
    assert b"".join(chunks) == data
    assert {len(c) for c in chunks[:-1]} == {10}


@pytest.mark.anyio
async def test_replay_source_fails_at_an_event_with_a_cut_chunk() -> None:
    events = t.text_stream(output_tokens=3)
    data = t.sse_bytes(events)
    before = len(t.sse_bytes(events[:2]))
    received: list[bytes] = []
    with pytest.raises(ConnectionResetError, match="replay_source failed at event 2, as asked"):
        async for chunk in t.replay_source(data, chunk_size=100, fail_at=2):
            received.append(chunk)
    assert b"".join(received) == data[:before]
    assert all(len(c) <= 100 for c in received)


@pytest.mark.anyio
async def test_replay_source_failure_bounds_and_instances() -> None:
    events = [t.ping(), t.ping()]
    with pytest.raises(ConnectionResetError):
        await collect(t.replay_source(events, fail_at=0))
    boom = OSError("boom")
    received: list[bytes] = []
    with pytest.raises(OSError, match="boom") as caught:
        async for chunk in t.replay_source(events, fail_at=2, exc=boom):
            received.append(chunk)
    assert caught.value is boom
    assert received == [t.sse_bytes([t.ping()])] * 2
    with pytest.raises(ValueError, match="fail_at must be between 0 and 2"):
        t.replay_source(events, fail_at=3)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        t.replay_source(events, chunk_size=0)


@pytest.mark.anyio
async def test_replay_source_delay_checkpoints_and_cancels() -> None:
    events = [t.ping(), t.ping(), t.ping()]
    start = anyio.current_time()
    assert len(await collect(t.replay_source(events, delay=0.01))) == 3
    assert anyio.current_time() - start >= 0.03
    received: list[bytes] = []
    with anyio.move_on_after(0.01) as scope:
        async for chunk in t.replay_source(events, delay=60):
            received.append(chunk)
    assert scope.cancelled_caught
    assert received == []
    source = t.replay_source(events)
    assert await source.__anext__() == t.sse_bytes([t.ping()])
    await source.aclose()  # type: ignore[attr-defined]
    assert await collect(source) == []


@pytest.mark.anyio
async def test_replay_source_feeds_accumulate() -> None:
    events, expected = STREAMS["compaction"]
    t.assert_usage(await accumulate(t.replay_source(events, chunk_size=13)), expected)


@pytest.mark.anyio
async def test_replay_source_failure_keeps_the_partial_usage() -> None:
    events = t.text_stream(input_tokens=77, output_tokens=3)
    with pytest.raises(SourceError) as caught:
        await accumulate(t.replay_source(events, fail_at=len(events) - 2))
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    t.assert_usage(caught.value.partial, events[0]["message"]["usage"])


@pytest.mark.anyio
async def test_replay_source_cut_before_message_delta_is_incomplete() -> None:
    events = t.text_stream(output_tokens=3)
    data = t.sse_bytes(events[:-2])
    with pytest.raises(IncompleteStreamError):
        await accumulate(t.replay_source(data))


# -- anthropic_client ---------------------------------------------------------------------


def test_anthropic_client_takes_bytes_events_or_a_function() -> None:
    events = t.text_stream(["Hel", "lo"], output_tokens=2)
    bodies = iter([t.sse_bytes(events), t.sse_bytes(t.text_stream("Bye", output_tokens=9))])

    async def ask(client: anthropic.AsyncAnthropic) -> tuple[str, int]:
        async with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            message = await stream.get_final_message()
        block = message.content[0]
        assert block.type == "text"
        return block.text, message.usage.output_tokens

    async def main() -> list[tuple[str, int]]:
        results = []
        for transcript in (events, t.sse_bytes(events)):
            async with t.anthropic_client(transcript) as client:
                assert isinstance(client, anthropic.AsyncAnthropic)
                results.append(await ask(client))
        async with t.anthropic_client(lambda: next(bodies)) as client:
            results += [await ask(client), await ask(client)]
        return results

    assert anyio.run(main) == [("Hello", 2), ("Hello", 2), ("Hello", 2), ("Bye", 9)]


def test_anthropic_client_error_status() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'

    async def main() -> None:
        async with t.anthropic_client(
            body, status_code=529, headers={"content-type": "application/json"}
        ) as client:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=8,
                messages=[{"role": "user", "content": "Hi"}],
            )

    with pytest.raises(anthropic.APIStatusError) as caught:
        anyio.run(main)
    assert caught.value.status_code == 529


def test_anthropic_client_without_the_sdk_names_an_install_that_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # usagetally is on no package index: the hint names the extra's own requirement.
    monkeypatch.setitem(sys.modules, "anthropic", None)
    for make in (t.anthropic_client, t.anthropic_sync_client):
        with pytest.raises(ImportError, match=r"pip install 'anthropic>=2\.12' \(usagetally's"):
            make(t.text_stream())


# -- usage_diff and assert_usage ----------------------------------------------------------


def entry(kind: str = "message", **counts: Any) -> dict[str, Any]:
    return {"type": kind, "input_tokens": 0, "output_tokens": 0, **ZERO_ENTRY, **counts}


def usage_with(iterations: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"input_tokens": 100, "output_tokens": 900, "iterations": iterations, **fields}


def test_changed_count_inside_iterations() -> None:
    expected = usage_with([entry(output_tokens=450), entry(output_tokens=450)])
    actual = usage_with([entry(output_tokens=450), entry(output_tokens=451)])
    with pytest.raises(AssertionError) as caught:
        t.assert_usage(actual, expected)
    assert str(caught.value) == (
        "usage differs from expected:\n  iterations[1].output_tokens: expected 450, got 451"
    )


def test_missing_and_extra_fields() -> None:
    expected = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 12}
    actual = {"input_tokens": 10, "output_tokens": 5, "speed": "fast"}
    assert t.usage_diff(actual, expected) == [
        "cache_read_input_tokens: expected 12, got <absent>",
        "speed: expected <absent>, got 'fast'",
    ]


def test_missing_nested_object_is_shown_whole() -> None:
    expected = {"input_tokens": 1, "output_tokens": 1, "cache_creation": t.cache_creation(5, 0)}
    assert t.usage_diff({"input_tokens": 1, "output_tokens": 1}, expected) == [
        "cache_creation: expected {'ephemeral_5m_input_tokens': 5, "
        "'ephemeral_1h_input_tokens': 0}, got <absent>"
    ]


def test_list_lengths_then_common_prefix() -> None:
    expected = usage_with([entry("compaction", input_tokens=9), entry(), entry()])
    actual = usage_with([entry("compaction", input_tokens=8), entry()])
    with pytest.raises(AssertionError) as caught:
        t.assert_usage(actual, expected)
    assert str(caught.value) == (
        "usage differs from expected:\n"
        "  iterations: expected 3 entries, got 2\n"
        "  iterations[0].input_tokens: expected 9, got 8"
    )
    assert t.usage_diff(usage_with([]), usage_with([entry()])) == [
        "iterations: expected 1 entry, got 0"
    ]


def test_lines_come_in_wire_order_whatever_the_dict_order() -> None:
    expected = {
        "speed": "fast",
        "iterations": [entry(model="a")],
        "cache_read_input_tokens": 1,
        "output_tokens": 2,
        "input_tokens": 3,
        "zz_unknown": 1,
        "aa_unknown": 2,
    }
    actual = {"aa_unknown": 3, "input_tokens": 4, "iterations": [entry(model="b", input_tokens=1)]}
    assert t.usage_diff(actual, expected) == [
        "input_tokens: expected 3, got 4",
        "output_tokens: expected 2, got <absent>",
        "cache_read_input_tokens: expected 1, got <absent>",
        "speed: expected 'fast', got <absent>",
        "iterations[0].input_tokens: expected 0, got 1",
        "iterations[0].model: expected 'a', got 'b'",
        "zz_unknown: expected 1, got <absent>",
        "aa_unknown: expected 2, got 3",
    ]


def test_entries_are_ordered_by_their_type() -> None:
    expected = usage_with([entry("advisor_message", model="m", output_tokens=1)])
    actual = usage_with([entry("advisor_message", model="n", output_tokens=2)])
    assert t.usage_diff(actual, expected) == [
        "iterations[0].model: expected 'm', got 'n'",
        "iterations[0].output_tokens: expected 1, got 2",
    ]
    assert t.usage_diff(usage_with([entry("message")]), usage_with([entry("compaction")])) == [
        "iterations[0].type: expected 'compaction', got 'message'"
    ]


def test_delta_usage_is_ordered_as_a_delta() -> None:
    actual = BetaMessageDeltaUsage(output_tokens=1, input_tokens=2)
    expected = BetaMessageDeltaUsage(output_tokens=3, input_tokens=4)
    assert t.usage_diff(actual, expected) == [
        "output_tokens: expected 3, got 1",
        "input_tokens: expected 4, got 2",
    ]


def test_ignore_paths() -> None:
    expected = usage_with(
        [entry(output_tokens=1, model="a"), entry(output_tokens=2, model="b")],
        cache_creation=t.cache_creation(1, 2),
        speed="fast",
    )
    actual = usage_with(
        [entry(output_tokens=9, model="x"), entry(output_tokens=8, model="y")],
        cache_creation=t.cache_creation(3, 4),
        speed="standard",
    )
    assert t.usage_diff(
        actual,
        expected,
        ignore=["cache_creation", "iterations[1].output_tokens", "iterations[*].model", "speed"],
    ) == ["iterations[0].output_tokens: expected 1, got 9"]
    assert t.usage_diff(actual, expected, ignore=("iterations", "cache_creation", "speed")) == []
    assert t.usage_diff(actual, expected, ignore="iterations") == [
        "cache_creation.ephemeral_5m_input_tokens: expected 1, got 3",
        "cache_creation.ephemeral_1h_input_tokens: expected 2, got 4",
        "speed: expected 'fast', got 'standard'",
    ]
    # A prefix path skips what is under it, not the fields whose names start with it.
    assert t.usage_diff(
        {"input_tokens": 1, "output_tokens": 1},
        {"input_tokens": 2, "output_tokens": 1},
        ignore=["input"],
    ) == ["input_tokens: expected 2, got 1"]
    t.assert_usage(actual, expected, ignore={"iterations", "cache_creation", "speed"})


@pytest.mark.parametrize("path", ["", "iterations.1", "iterations[x]", "a..b", ".a", "a[1"])
def test_malformed_ignore_paths(path: str) -> None:
    with pytest.raises(ValueError, match="ignore paths look like"):
        t.usage_diff({}, {}, ignore=[path])


def test_none_equals_absent_at_every_level() -> None:
    t.assert_usage(
        {"input_tokens": 1, "output_tokens": 2, "speed": None, "iterations": [entry(model=None)]},
        {"input_tokens": 1, "output_tokens": 2, "iterations": [entry()]},
    )


def test_a_bool_is_not_a_count() -> None:
    assert t.usage_diff(
        {"input_tokens": True, "output_tokens": 1}, {"input_tokens": 1, "output_tokens": 1}
    ) == ["input_tokens: expected 1, got True"]


def our_usage(output: int) -> BetaUsage:
    return converter.structure(
        usage_with([entry("compaction", output_tokens=output)], service_tier="standard"),
        BetaUsage,
    )


def sdk_usage(output: int) -> SdkBetaUsage:
    return SdkBetaUsage.model_validate(
        usage_with([entry("compaction", output_tokens=output)], service_tier="standard")
    )


def dict_usage(output: int) -> dict[str, Any]:
    return usage_with(
        [entry("compaction", output_tokens=output)], service_tier="standard", speed=None
    )


MAKERS = {"ours": our_usage, "sdk": sdk_usage, "dict": dict_usage}


@pytest.mark.parametrize("actual_kind", MAKERS)
@pytest.mark.parametrize("expected_kind", MAKERS)
def test_sdk_model_our_model_and_dict_on_either_side(actual_kind: str, expected_kind: str) -> None:
    make_actual, make_expected = MAKERS[actual_kind], MAKERS[expected_kind]
    t.assert_usage(make_actual(7), make_expected(7))
    with pytest.raises(AssertionError) as caught:
        t.assert_usage(make_actual(7), make_expected(8))
    assert str(caught.value) == (
        "usage differs from expected:\n  iterations[0].output_tokens: expected 8, got 7"
    )


def test_non_beta_sdk_usage_and_iteration_entries() -> None:
    t.assert_usage(
        SdkUsage(input_tokens=1, output_tokens=2), BetaUsage(input_tokens=1, output_tokens=2)
    )
    compaction = BetaCompactionIterationUsage(
        input_tokens=1, output_tokens=2, cache_creation_input_tokens=0, cache_read_input_tokens=0
    )
    assert t.usage_diff(compaction, entry("compaction", input_tokens=1, output_tokens=3)) == [
        "output_tokens: expected 3, got 2"
    ]
    delta = SdkBetaMessageDeltaUsage(output_tokens=3, input_tokens=None)
    assert t.usage_diff(delta, BetaMessageDeltaUsage(output_tokens=4)) == [
        "output_tokens: expected 4, got 3"
    ]


def test_sides_that_are_not_usages() -> None:
    with pytest.raises(
        TypeError,
        match="actual must be a usagetally model, an anthropic SDK model or a dict, got NoneType",
    ):
        t.assert_usage(None, {})
    with pytest.raises(TypeError, match="expected must be"):
        t.usage_diff({}, 3)


# -- the module itself --------------------------------------------------------------------


def test_all_lists_every_public_name_sorted() -> None:
    public = {
        name
        for name, value in vars(t).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == t.__name__
    }
    assert public <= set(t.__all__)
    assert t.__all__ == sorted(t.__all__)
    assert all(hasattr(t, name) for name in t.__all__)


@pytest.mark.parametrize("name", [n for n in t.__all__ if callable(getattr(t, n)) and n != "Event"])
def test_every_function_has_a_docstring_with_an_example(name: str) -> None:
    doc = getattr(t, name).__doc__
    assert doc is not None
    assert ">>> " in doc
    assert "Returns:" in doc or "Yields:" in doc or "Raises:" in doc
