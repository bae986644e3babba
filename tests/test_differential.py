"""Differential check: our final usage against the anthropic SDK's, field for field.

The SDK (``client.beta.messages.stream(...)`` over ``httpx2.MockTransport``, through
``usagetally.testing.sdk_final_usage``) reads the same bytes. Where the two differ, the
difference must be one of the documented ones, asserted explicitly:

- A top-level usage field this version does not know, sent on a ``message_delta``: the
  overwrite rule keeps it, the SDK copies only the fields it knows from a delta.
- An unknown field sent as ``null`` on ``message_start``: null means absent for us, the SDK
  keeps the key (only in the catalogue; the generator sends no nulls there).

Each disagreement found is also a named case of the catalogue (``sdk_differs_*`` in
``tests/bad_inputs/``), replayed here against the SDK.

Excluded, because the SDK cannot read them (SSE framing, not usage semantics): events without
an ``event:`` line (the SDK drops them), a leading BOM before an event (the SDK keeps it, so
the first field name is wrong) and invalid UTF-8 (the SDK raises ``UnicodeDecodeError``).
``valid_streams(sdk_readable=True)`` never generates them; the catalogue cases that have
them are listed below (``SDK_UNREADABLE``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from stream_strategies import Stream, valid_streams

from usagetally import UsageAccumulator, converter
from usagetally.testing import sdk_final_usage

BATCH = 8  # streams read by the SDK on one event loop
BATCHES = 40  # batches in the gate: 320 streams
CATALOGUE = Path(__file__).resolve().parent / "bad_inputs"
CASES: list[dict[str, Any]] = json.loads((CATALOGUE / "manifest.json").read_text("utf-8"))["cases"]
# Catalogue successes the SDK cannot read, and why.
SDK_UNREADABLE = {
    "gateway_without_event_lines": "no event: lines; the SDK drops such events",
    "invalid_utf8_in_delta_string": "invalid UTF-8; the SDK raises UnicodeDecodeError",
    "invalid_utf8_in_inference_geo": "invalid UTF-8; the SDK raises UnicodeDecodeError",
    "invalid_utf8_encoded_surrogate_in_start": "invalid UTF-8; the SDK raises",
    "invalid_utf8_in_passed_over_event": "invalid UTF-8; the SDK raises UnicodeDecodeError",
    "invalid_utf8_in_unnamed_delta": "no event: lines and invalid UTF-8",
    "invalid_utf8_in_event_name": "invalid UTF-8; the SDK raises UnicodeDecodeError",
    # Not framing, but the same kind of limit: the SDK decodes every event, so broken JSON
    # in a content block (which usage never needs) makes it raise.
    "malformed_json_named_content_block_passes": "the SDK raises on broken content-block JSON",
}


def ours(data: bytes) -> dict[str, Any]:
    acc = UsageAccumulator(policy="strict")
    acc.feed(data)
    result: dict[str, Any] = converter.unstructure(acc.finish())
    return result


def sdk_batch(transcripts: list[bytes]) -> list[dict[str, Any]]:
    async def read_all() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(sdk_final_usage(t) for t in transcripts)))

    return asyncio.run(read_all())


_ABSENT = object()


def differing(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """The top-level keys whose values differ (a key with null differs from no key)."""
    return {key for key in a.keys() | b.keys() if a.get(key, _ABSENT) != b.get(key, _ABSENT)}


@settings(
    max_examples=BATCHES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(valid_streams(sdk_readable=True), min_size=BATCH, max_size=BATCH))
def test_generated_streams_agree_with_the_sdk_but_for_the_documented_repairs(
    streams: list[Stream],
) -> None:
    transcripts = [stream.to_bytes() for stream in streams]
    sdk_results = sdk_batch(transcripts)
    for stream, data, sdk in zip(streams, transcripts, sdk_results, strict=True):
        assert stream.sdk_readable
        mine = ours(data)
        assert mine == stream.expected
        assert stream.expected is not None
        allowed = set(stream.delta_unknown)
        if stream.stale:
            # A split left stale by a delta: kept as sent, by both.
            assert mine["cache_creation"] == sdk["cache_creation"] == stream.start_split
            event("stale cache split")
        for key in stream.delta_unknown:
            # An unknown field on a delta: kept by the overwrite rule, dropped by the SDK.
            assert mine[key] == stream.expected[key]
            assert sdk.get(key) != mine[key]
            event("unknown field on a delta")
        assert differing(mine, sdk) == allowed, (mine, sdk)
        assert sdk == stream.sdk_expected
        event(f"kind {stream.kind}")


@pytest.mark.parametrize(
    "case", [c for c in CASES if "sdk_usage" in c], ids=lambda c: str(c["name"])
)
def test_each_disagreement_found_is_a_regression_case(case: dict[str, Any]) -> None:
    data = (CATALOGUE / case["file"]).read_bytes()
    (sdk,) = sdk_batch([data])
    mine = ours(data)
    assert mine == case["usage"]
    assert sdk == case["sdk_usage"]
    assert differing(mine, sdk)


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES
        if c["error"] is None and "sdk_usage" not in c and c["name"] not in SDK_UNREADABLE
    ],
    ids=lambda c: str(c["name"]),
)
def test_catalogue_successes_agree_with_the_sdk(case: dict[str, Any]) -> None:
    data = (CATALOGUE / case["file"]).read_bytes()
    options = case.get("options", {})
    assert options == {}
    (sdk,) = sdk_batch([data])
    assert ours(data) == sdk == case["usage"]


@pytest.mark.parametrize("name", sorted(SDK_UNREADABLE))
def test_what_the_sdk_cannot_read_we_still_read(name: str) -> None:
    """The SDK is no oracle for these: we give the expected usage, the SDK raises or errs."""
    (case,) = [c for c in CASES if c["name"] == name]
    data = (CATALOGUE / case["file"]).read_bytes()
    assert ours(data) == case["usage"]
    try:
        (sdk,) = sdk_batch([data])
    except Exception:  # the SDK's own failure (even an AssertionError inside it), as listed
        pass
    else:
        assert sdk != case["usage"], "the SDK reads it now: move it out of SDK_UNREADABLE"
