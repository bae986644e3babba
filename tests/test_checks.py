"""Tests of ``_checks.py``: the consistency checks are pure functions returning findings."""

from __future__ import annotations

from typing import Any

import pytest

from usagetally import BetaMessageDeltaUsage, BetaUsage, converter
from usagetally._checks import Finding, check_delta, check_final, cumulative_counts


def usage(**fields: Any) -> BetaUsage:
    return converter.structure({"input_tokens": 10, "output_tokens": 1, **fields}, BetaUsage)


def delta(**fields: Any) -> BetaMessageDeltaUsage:
    return converter.structure({"output_tokens": 5, **fields}, BetaMessageDeltaUsage)


def entry(kind: str = "message", **counts: int) -> dict[str, Any]:
    return {"type": kind, "input_tokens": 1, "output_tokens": 1, **counts}


def test_a_consistent_delta_has_no_finding_and_gives_its_counts() -> None:
    findings, current = check_delta(usage(), delta(input_tokens=10), {"input_tokens": 10})
    assert findings == []
    assert current == {"output_tokens": 5, "input_tokens": 10}


def test_a_changed_and_a_removed_entry_are_found_in_order() -> None:
    before = usage(iterations=[entry(), entry()])
    after = delta(iterations=[entry(output_tokens=2)])
    findings, _ = check_delta(before, after, {})
    assert [f.code for f in findings] == ["iteration_changed", "iteration_removed"]
    assert findings[1].message == "iterations had 2 entries and now has 1"
    assert findings[0].message.startswith("iterations[0] was reported as {")


def test_a_count_going_down_between_deltas_is_found() -> None:
    findings, _ = check_delta(
        usage(),
        delta(server_tool_use={"web_search_requests": 1}),
        {"output_tokens": 7, "server_tool_use.web_search_requests": 2},
    )
    assert findings == [
        Finding(
            "count_decreased", "output_tokens went down from 7 to 5 between message_delta events"
        ),
        Finding(
            "count_decreased",
            "server_tool_use.web_search_requests went down from 2 to 1 "
            "between message_delta events",
        ),
    ]


def test_cumulative_counts_leave_out_what_the_delta_does_not_carry() -> None:
    assert cumulative_counts(delta()) == {"output_tokens": 5}


def test_the_final_checks_find_a_stale_split_a_mismatch_and_the_top_level() -> None:
    split = {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 1}
    stale = usage(cache_creation_input_tokens=6, cache_creation=split)
    assert [f.code for f in check_final(stale, 4)] == ["cache_split_stale"]
    assert "so 2 tokens are not in the split" in check_final(stale, 4)[0].message
    assert [f.code for f in check_final(stale, 6)] == ["cache_split_mismatch"]
    wrong_top = usage(iterations=[entry(), entry()])  # top 10/1, entries sum 2/2
    (finding,) = check_final(wrong_top, None)
    assert finding.code == "top_level_mismatch"
    assert finding.message == (
        "top level disagrees with iterations by the sum over message entries: "
        "input_tokens 10 (expected 2), output_tokens 1 (expected 2)"
    )
    assert (
        check_final(usage(input_tokens=2, output_tokens=2, iterations=[entry(), entry()]), None)
        == []
    )


def test_a_check_does_not_change_what_it_reads() -> None:
    before = usage(iterations=[entry()])
    copy = converter.unstructure(before)
    check_delta(before, delta(iterations=[]), {"output_tokens": 9})
    check_final(before, None)
    assert converter.unstructure(before) == copy


def test_the_strict_policy_raises_a_finding_as_the_sticky_error_with_the_usage_before() -> None:
    from usagetally import InconsistentUsageError, UsageAccumulator
    from usagetally import testing as kit

    acc = UsageAccumulator(policy="strict")
    acc.feed_event(kit.message_start(input_tokens=10, output_tokens=1))
    acc.feed_event(kit.message_delta(output_tokens=7, stop_reason=None))
    before = acc.usage
    with pytest.raises(InconsistentUsageError) as info:
        acc.feed_event(kit.message_delta(output_tokens=5))
    assert info.value.diagnostic.code == "count_decreased"
    assert info.value.diagnostic.event_index == 2
    assert info.value.partial == before
    assert acc.error is info.value
    with pytest.raises(InconsistentUsageError) as again:
        acc.feed_skipped("ping")
    assert again.value is info.value
    with pytest.raises(InconsistentUsageError):
        acc.finish()
