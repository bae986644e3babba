"""The bundled example streams, checked against the anthropic SDK and our strict converter.

``examples/expected/<name>.json`` holds the wire-faithful merge of ``examples/<name>.sse``:
the ``message_start`` usage, overwritten by every field each ``message_delta`` carries, with
``iterations`` replaced wholesale. The SDK's accumulator applies that same rule, so its final
usage must equal the expected file exactly. The one place the SDK is known to differ: it
keeps the ``cache_creation`` TTL split of ``message_start`` when a delta changes
``cache_creation_input_tokens`` (the split goes stale). No bundled example changes that
count (checked below), so no exception is needed; a future example that does must not be
compared field by field on ``cache_creation``.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import EXAMPLES, NAMES, example_events, expected, reference_merge, transcript

from usagetally import BetaUsage, make_converter
from usagetally.testing import sdk_final_usage


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_every_example_has_an_expected_file() -> None:
    assert NAMES == [
        "advisor",
        "compaction",
        "fallback",
        "plain",
        "prompt-caching",
        "thinking",
        "web-search",
    ]
    assert sorted(p.stem for p in (EXAMPLES / "expected").glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_transcript_is_framed_like_the_api(name: str) -> None:
    raw = transcript(name)
    assert b"\r" not in raw
    raw.decode("utf-8")
    evs = example_events(name)
    assert len(evs) < 80
    for kind, data in evs:
        assert data["type"] == kind
    kinds = [kind for kind, _ in evs]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    assert "ping" in kinds
    message = evs[0][1]["message"]
    assert {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence"} <= set(
        message
    )
    assert message["content"] == []
    assert message["stop_reason"] is None
    # Content blocks open and close in order, and deltas only touch the open block.
    open_block = None
    next_index = 0
    for kind, data in evs:
        if kind == "content_block_start":
            assert open_block is None
            assert data["index"] == next_index
            open_block = next_index
            next_index += 1
        elif kind == "content_block_delta":
            assert data["index"] == open_block
        elif kind == "content_block_stop":
            assert data["index"] == open_block
            open_block = None
    assert open_block is None


@pytest.mark.parametrize("name", NAMES)
def test_expected_is_the_wire_faithful_merge(name: str) -> None:
    assert reference_merge(example_events(name)) == expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_expected_structures_with_the_strict_converter(name: str) -> None:
    strict = make_converter(strict=True)
    usage = strict.structure(expected(name), BetaUsage)
    assert strict.unstructure(usage) == expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_no_delta_changes_cache_creation(name: str) -> None:
    # Keeps the SDK comparison exact: the SDK would keep a stale cache_creation split.
    start = example_events(name)[0][1]["message"]["usage"]
    for kind, data in example_events(name):
        if kind == "message_delta":
            value = data["usage"].get("cache_creation_input_tokens")
            assert value in (None, start["cache_creation_input_tokens"])
    split = start["cache_creation"]
    total = split["ephemeral_5m_input_tokens"] + split["ephemeral_1h_input_tokens"]
    assert total == start["cache_creation_input_tokens"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_sdk_agrees_with_expected(name: str) -> None:
    assert await sdk_final_usage(transcript(name)) == expected(name)


def entries(name: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in expected(name).get("iterations", ()) if e["type"] == kind]


def test_plain_numbers() -> None:
    usage = expected("plain")
    assert (usage["input_tokens"], usage["output_tokens"]) == (21, 42)
    assert usage["service_tier"] == "standard"
    assert usage["inference_geo"] == "us"


def test_prompt_caching_numbers() -> None:
    usage = expected("prompt-caching")
    assert usage["cache_creation_input_tokens"] == 3125
    assert usage["cache_read_input_tokens"] == 14850
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 1062,
        "ephemeral_1h_input_tokens": 2063,
    }


def test_web_search_top_level_is_the_sum_of_turns() -> None:
    usage = expected("web-search")
    start = example_events("web-search")[0][1]["message"]["usage"]
    assert start["input_tokens"] == 2679
    assert usage["input_tokens"] == 10682
    assert usage["server_tool_use"]["web_search_requests"] == 1
    turns = entries("web-search", "message")
    assert len(turns) == len(usage["iterations"]) == 2
    for field in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        assert sum(t[field] for t in turns) == usage[field]


def test_compaction_numbers() -> None:
    usage = expected("compaction")
    assert (usage["input_tokens"], usage["output_tokens"]) == (23000, 1000)
    kinds = [e["type"] for e in usage["iterations"]]
    assert kinds == ["compaction", "message"]
    billed_in = sum(e["input_tokens"] for e in usage["iterations"])
    billed_out = sum(e["output_tokens"] for e in usage["iterations"])
    assert (billed_in, billed_out) == (203000, 4500)
    assert any(
        kind == "content_block_start" and data["content_block"]["type"] == "compaction"
        for kind, data in example_events("compaction")
    )


def test_advisor_numbers_follow_the_newer_rule() -> None:
    usage = expected("advisor")
    executor = entries("advisor", "message")
    advisor = entries("advisor", "advisor_message")
    assert [(e["input_tokens"], e["output_tokens"]) for e in executor] == [(412, 89), (1348, 442)]
    assert [(e["input_tokens"], e["output_tokens"], e["model"]) for e in advisor] == [
        (823, 1612, "claude-opus-4-7")
    ]
    for field in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        assert sum(e[field] for e in executor) == usage[field]
    assert (usage["input_tokens"], usage["output_tokens"]) == (1760, 531)
    assert usage["cache_read_input_tokens"] == 412
    deltas = [data for kind, data in example_events("advisor") if kind == "message_delta"]
    assert len(deltas) == 2
    assert deltas[0]["delta"]["stop_reason"] is None
    assert deltas[0]["usage"]["iterations"] == usage["iterations"][:2]


def test_fallback_top_level_is_the_serving_attempt() -> None:
    usage = expected("fallback")
    (declined,) = entries("fallback", "message")
    (served,) = entries("fallback", "fallback_message")
    assert (declined["input_tokens"], declined["output_tokens"]) == (535, 0)
    assert (served["input_tokens"], served["output_tokens"]) == (412, 264)
    assert declined["model"] != served["model"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (412, 264)


def test_thinking_details_arrive_on_the_final_delta() -> None:
    usage = expected("thinking")
    assert usage["output_tokens_details"] == {"thinking_tokens": 846}
    assert usage["output_tokens_details"]["thinking_tokens"] <= usage["output_tokens"]
    kinds = [
        data["content_block"]["type"]
        for kind, data in example_events("thinking")
        if kind == "content_block_start"
    ]
    assert kinds == ["thinking", "text"]
