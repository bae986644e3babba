"""Time structuring one BetaUsage: usagetally's converter against the anthropic SDK's model.

Run: ``.venv/bin/python benchmarks/bench_structure.py [--fast | --rigorous] [pyperf options]``

The payload is a ``message_delta``-sized BetaUsage with four iterations (compaction, message,
advisor_message, message), each with its cache split, plus the top-level cache split, server
tool counts and thinking details. Both sides parse the same dict in the same process:

- ``usagetally.converter.structure(payload, usagetally.BetaUsage)`` (validating: strict ints,
  paths in errors, unknown fields kept);
- ``anthropic.types.beta.BetaUsage.model_validate(payload)`` (pydantic v2 validation).

pyperf runs each in its worker processes and this script prints both medians and their ratio.
"""

from __future__ import annotations

from typing import Any

import pyperf
from anthropic.types.beta import BetaUsage as SdkBetaUsage

import usagetally


def _iteration(kind: str, input_tokens: int, output_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 2048,
        "cache_read_input_tokens": 30000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 48},
        **extra,
    }


PAYLOAD: dict[str, Any] = {
    "input_tokens": 1760,
    "output_tokens": 531,
    "cache_creation_input_tokens": 4096,
    "cache_read_input_tokens": 60000,
    "cache_creation": {"ephemeral_5m_input_tokens": 4000, "ephemeral_1h_input_tokens": 96},
    "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
    "service_tier": "standard",
    "speed": "standard",
    "inference_geo": "us",
    "iterations": [
        _iteration("compaction", 180000, 3500),
        _iteration("message", 412, 89, model="claude-sonnet-4-6"),
        _iteration("advisor_message", 823, 1612, model="claude-opus-4-7"),
        _iteration("message", 1348, 442),
    ],
    "output_tokens_details": {"thinking_tokens": 120},
}


def structure_usagetally() -> usagetally.BetaUsage:
    return usagetally.converter.structure(PAYLOAD, usagetally.BetaUsage)


def structure_sdk() -> SdkBetaUsage:
    return SdkBetaUsage.model_validate(PAYLOAD)


def check_same_result() -> None:
    """Both sides must read the whole payload, or the timing compares different work."""
    ours = usagetally.converter.unstructure(structure_usagetally())
    theirs = structure_sdk().model_dump(exclude_none=True)
    if ours != PAYLOAD or theirs != PAYLOAD:
        raise SystemExit("the two parsers disagree on the payload; fix the benchmark first")


def _format(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us"


def main() -> None:
    check_same_result()
    runner = pyperf.Runner()
    ours = runner.bench_func("usagetally converter.structure(BetaUsage)", structure_usagetally)
    theirs = runner.bench_func("anthropic BetaUsage.model_validate", structure_sdk)
    if ours is None or theirs is None:
        return  # a pyperf worker process: the parent prints the summary
    ours_median: float = ours.median()
    theirs_median: float = theirs.median()
    print()
    print("BetaUsage with 4 iterations (cache splits everywhere), structure from a dict:")
    print(f"  usagetally converter.structure   median {_format(ours_median)}")
    print(f"  anthropic model_validate         median {_format(theirs_median)}")
    print(f"  ratio usagetally / anthropic     {ours_median / theirs_median:.2f}")


if __name__ == "__main__":
    main()
