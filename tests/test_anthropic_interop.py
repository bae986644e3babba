"""Interop with the anthropic SDK: usage conversions both ways, and the test client."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anthropic
import pytest
from anthropic.types import Usage as SdkUsage
from anthropic.types.beta import BetaUsage as SdkBetaUsage
from support import NAMES, expected, transcript

from usagetally import (
    BetaMessageIterationUsage,
    BetaUsage,
    UnknownFallbackCreditStatus,
    UnknownIterationUsage,
    UsageValidationError,
    converter,
    make_converter,
)
from usagetally._anthropic import from_sdk_usage, to_sdk_usage
from usagetally.testing import anthropic_client, anthropic_sync_client, sdk_final_usage

MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sdk_wire(obj: SdkBetaUsage) -> dict[str, Any]:
    return obj.to_dict(mode="json", warnings=False)


# Payloads with what a later API may send and this version does not know.
UNKNOWN_PAYLOADS: dict[str, dict[str, Any]] = {
    "everything": {
        "input_tokens": 5,
        "output_tokens": 7,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 1,
            "ephemeral_1h_input_tokens": 0,
            "ephemeral_24h_input_tokens": 4,
        },
        "server_tool_use": {
            "web_search_requests": 1,
            "web_fetch_requests": 2,
            "code_execution_requests": 3,
        },
        "service_tier": "flex",
        "speed": "fast",
        "inference_geo": "eu",
        "iterations": [
            {
                "type": "message",
                "input_tokens": 1,
                "output_tokens": 2,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "latency_ms": 12,
            },
            {
                "type": "tool_search",
                "input_tokens": 3,
                "output_tokens": 4,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "model": "claude-haiku-4-5",
                "note": "new",
            },
            {"type": "bare_future_step"},
        ],
        "output_tokens_details": {"thinking_tokens": 3, "tool_tokens": 1},
        "fallback_credit": {
            "status": {"type": "not_applied", "reason": "expired", "remove_to_redeem": ["tools"]}
        },
        "brand_new": {"nested": [1, 2, {"deep": None}]},
    },
    "unknown_fallback_credit_status": {
        "input_tokens": 5,
        "output_tokens": 7,
        "fallback_credit": {"status": {"type": "deferred", "until": "later"}, "extra": 1},
    },
    "only_an_unknown_iteration": {
        "input_tokens": 0,
        "output_tokens": 0,
        "iterations": [{"type": "prefetch", "input_tokens": 9, "pages": 3}],
    },
    "redeemed_credit": {
        "input_tokens": 5,
        "output_tokens": 7,
        "fallback_credit": {"status": {"type": "redeemed"}},
    },
}


# --- conversions -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_on_expected(name: str) -> None:
    usage = converter.structure(expected(name), BetaUsage)
    sdk = to_sdk_usage(usage)
    assert isinstance(sdk, SdkBetaUsage)
    assert sdk_wire(sdk) == expected(name)
    assert from_sdk_usage(sdk) == usage


@pytest.mark.parametrize("name", NAMES)
def test_expected_validates_as_the_sdk_type(name: str) -> None:
    # Known payloads take the validating path: the SDK's pydantic model accepts them as is.
    sdk = SdkBetaUsage.model_validate(expected(name))
    assert sdk == to_sdk_usage(converter.structure(expected(name), BetaUsage))
    assert from_sdk_usage(sdk) == converter.structure(expected(name), BetaUsage)


@pytest.mark.parametrize("name", sorted(UNKNOWN_PAYLOADS))
def test_round_trip_keeps_unknown_fields_and_types(name: str) -> None:
    payload = UNKNOWN_PAYLOADS[name]
    usage = converter.structure(payload, BetaUsage)
    sdk = to_sdk_usage(usage)
    assert isinstance(sdk, SdkBetaUsage)
    assert sdk_wire(sdk) == payload
    back = from_sdk_usage(sdk)
    assert back == usage
    assert converter.unstructure(back) == payload


def test_unknown_iteration_types_survive_as_known_sdk_classes() -> None:
    usage = converter.structure(UNKNOWN_PAYLOADS["everything"], BetaUsage)
    assert usage.iterations is not None
    assert isinstance(usage.iterations[0], BetaMessageIterationUsage)
    assert all(isinstance(e, UnknownIterationUsage) for e in usage.iterations[1:])
    sdk = to_sdk_usage(usage)
    assert sdk.iterations is not None
    # The SDK has no class for an unknown type: it uses a known one and keeps the type sent.
    assert [e.type for e in sdk.iterations] == ["message", "tool_search", "bare_future_step"]
    tier: str | None = sdk.service_tier
    assert tier == "flex"


def test_unknown_fallback_credit_status_survives() -> None:
    payload = UNKNOWN_PAYLOADS["unknown_fallback_credit_status"]
    usage = converter.structure(payload, BetaUsage)
    assert usage.fallback_credit is not None
    assert isinstance(usage.fallback_credit.status, UnknownFallbackCreditStatus)
    sdk = to_sdk_usage(usage)
    assert sdk.fallback_credit is not None
    status_type: str = sdk.fallback_credit.status.type
    assert status_type == "deferred"
    assert from_sdk_usage(sdk) == usage


def test_sdk_serializer_warns_on_unknown_iteration_types() -> None:
    # Why from_sdk_usage passes warnings=False: under -W error the default would raise.
    sdk = to_sdk_usage(converter.structure(UNKNOWN_PAYLOADS["everything"], BetaUsage))
    with pytest.warns(UserWarning, match="serializer warnings"):
        sdk.to_dict()


def test_from_sdk_usage_with_a_strict_converter_refuses_unknowns() -> None:
    sdk = to_sdk_usage(converter.structure(UNKNOWN_PAYLOADS["everything"], BetaUsage))
    with pytest.raises(UsageValidationError) as info:
        from_sdk_usage(sdk, converter=make_converter(strict=True))
    assert info.value.path == "cache_creation.ephemeral_24h_input_tokens"


def test_from_sdk_usage_with_a_strict_converter_accepts_known_payloads() -> None:
    sdk = SdkBetaUsage.model_validate(expected("advisor"))
    usage = from_sdk_usage(sdk, converter=make_converter(strict=True))
    assert converter.unstructure(usage) == expected("advisor")


def test_from_sdk_usage_reports_bad_values_with_their_path() -> None:
    sdk = SdkBetaUsage.model_construct(
        input_tokens=1,
        output_tokens=2,
        iterations=[
            {
                "type": "message",
                "input_tokens": -1,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            }
        ],
    )
    with pytest.raises(UsageValidationError) as info:
        from_sdk_usage(sdk)
    assert info.value.path == "iterations[0].input_tokens"


def test_from_sdk_usage_drops_explicit_nulls() -> None:
    sdk = SdkBetaUsage.model_validate(
        {"input_tokens": 3, "output_tokens": 4, "cache_creation": None, "server_tool_use": None}
    )
    assert from_sdk_usage(sdk) == BetaUsage(input_tokens=3, output_tokens=4)


def test_from_sdk_usage_reads_the_non_beta_usage() -> None:
    sdk = SdkUsage.model_validate(
        {
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 5,
            "service_tier": "priority",
        }
    )
    usage = from_sdk_usage(sdk)
    assert usage == BetaUsage(
        input_tokens=10,
        output_tokens=20,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=5,
        service_tier="priority",
    )


def test_to_sdk_usage_uses_the_given_converter() -> None:
    usage = BetaUsage(input_tokens=1, output_tokens=2, service_tier="standard")
    sdk = to_sdk_usage(usage, converter=make_converter(strict=True))
    assert sdk_wire(sdk) == {"input_tokens": 1, "output_tokens": 2, "service_tier": "standard"}


# --- the test client ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_client_drives_messages_stream(name: str) -> None:
    async with (
        anthropic_client(transcript(name)) as client,
        client.beta.messages.stream(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert message.stop_reason == "end_turn"
    assert sdk_wire(message.usage) == expected(name)
    assert from_sdk_usage(message.usage) == converter.structure(expected(name), BetaUsage)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_client_drives_create_with_stream_true(name: str) -> None:
    async with anthropic_client(transcript(name)) as client:
        stream = await client.beta.messages.create(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, stream=True
        )
        kinds = []
        usage: dict[str, Any] = {}
        async for event in stream:
            kinds.append(event.type)
            # The overwrite-if-present merge, applied to the SDK's raw events.
            if event.type == "message_start":
                usage = sdk_wire(event.message.usage)
            elif event.type == "message_delta":
                delta = event.usage.to_dict(mode="json", warnings=False, exclude_none=True)
                usage.update(delta)
    raw_kinds = [
        line[len(b"event: ") :].decode()
        for line in transcript(name).split(b"\n")
        if line.startswith(b"event: ")
    ]
    assert kinds == [k for k in raw_kinds if k != "ping"]  # the SDK drops ping events
    assert usage == expected(name)


@pytest.mark.anyio
async def test_client_sends_status_and_headers() -> None:
    async with (
        anthropic_client(transcript("plain"), headers={"Request-Id": "req_0123"}) as client,
        client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES
        ) as stream,
    ):
        await stream.get_final_message()
        assert stream.request_id == "req_0123"
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"] == "text/event-stream"


@pytest.mark.anyio
async def test_client_error_status_raises_the_sdk_error() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    async with anthropic_client(
        body, status_code=529, headers={"content-type": "application/json"}
    ) as client:
        with pytest.raises(anthropic.OverloadedError) as info:
            await client.beta.messages.create(
                model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, stream=True
            )
    assert info.value.status_code == 529


@pytest.mark.anyio
async def test_client_calls_a_transcript_function_per_request() -> None:
    answers = [transcript("plain"), transcript("thinking")]
    calls: list[int] = []

    def next_answer() -> bytes:
        calls.append(len(calls))
        return answers[len(calls) - 1]

    outputs = []
    async with anthropic_client(next_answer) as client:
        for _ in answers:
            async with client.beta.messages.stream(
                model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES
            ) as stream:
                message = await stream.get_final_message()
            outputs.append(message.usage.output_tokens)
    assert calls == [0, 1]
    assert outputs == [expected("plain")["output_tokens"], expected("thinking")["output_tokens"]]


@pytest.mark.anyio
async def test_sdk_raises_a_status_error_on_a_mid_stream_error_event() -> None:
    head = transcript("plain").split(b"event: content_block_stop")[0]
    cut = head + (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        await sdk_final_usage(cut)
    # Surprising but true: the SDK reports the HTTP status (200), not an OverloadedError.
    assert type(info.value) is anthropic.APIStatusError
    assert info.value.status_code == 200


@pytest.mark.anyio
async def test_sdk_reports_a_truncated_stream_silently() -> None:
    # What usagetally exists to fix: a stream cut before message_delta gives the
    # message_start placeholder as if it were the final output count.
    cut = transcript("plain").split(b"event: message_delta")[0]
    usage = await sdk_final_usage(cut)
    assert usage["output_tokens"] == 1
    assert usage["input_tokens"] == expected("plain")["input_tokens"]


@pytest.mark.anyio
async def test_sdk_relabels_the_model_after_a_fallback() -> None:
    async with (
        anthropic_client(transcript("fallback")) as client,
        client.beta.messages.stream(
            model="claude-opus-4-7", max_tokens=1024, messages=MESSAGES
        ) as stream,
    ):
        message = await stream.get_final_message()
    served = [e for e in expected("fallback")["iterations"] if e["type"] == "fallback_message"]
    assert message.model == served[0]["model"] == "claude-sonnet-4-6"


# --- without the SDK ---------------------------------------------------------------------


def test_package_imports_without_the_sdk() -> None:
    code = (
        "import sys\n"
        "sys.modules['anthropic'] = None\n"
        "sys.modules['httpx2'] = None\n"
        "import usagetally, usagetally.testing as m\n"
        "try:\n"
        "    m.anthropic_client(b'')\n"
        "except ImportError as exc:\n"
        "    assert \"pip install 'anthropic>=2.12'\" in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("blocked", ["anthropic", "httpx2"])
def test_functions_raise_import_error_without_the_sdk(
    monkeypatch: pytest.MonkeyPatch, blocked: str
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)
    usage = BetaUsage(input_tokens=1, output_tokens=2)
    hint = r"pip install 'anthropic>=2\.12'"
    with pytest.raises(ImportError, match=hint):
        to_sdk_usage(usage)
    with pytest.raises(ImportError, match=hint):
        anthropic_client(b"")
    with pytest.raises(ImportError, match=hint):
        anthropic_sync_client(b"")
