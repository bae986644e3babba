"""Tests of the billing rules of ``_figures.py`` (docs/semantics.md, section 3), on hand-built
usages whose figures are computed by hand in the comments."""

from __future__ import annotations

from typing import Any

from usagetally import (
    BetaUsage,
    CacheWrites,
    TokenCounts,
    UsageTotals,
    billed_totals,
    cache_writes,
    context_window_tokens,
    converter,
    totals_by_model,
    totals_by_type,
)
from usagetally._figures import billed_entries


def usage(**fields: Any) -> BetaUsage:
    return converter.structure(fields, BetaUsage)


def entry(kind: str, inp: int, out: int, **more: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": more.pop("write", 0),
        "cache_read_input_tokens": more.pop("read", 0),
        **more,
    }


def counts(inp: int = 0, out: int = 0, write: int = 0, read: int = 0) -> TokenCounts:
    return TokenCounts(
        input_tokens=inp,
        output_tokens=out,
        cache_creation_input_tokens=write,
        cache_read_input_tokens=read,
    )


PLAIN = usage(
    input_tokens=10, output_tokens=4, cache_creation_input_tokens=6, cache_read_input_tokens=2
)
# The compaction guide's example: top level 23000/1000, billed 180000+23000 / 3500+1000.
COMPACTION = usage(
    input_tokens=23000,
    output_tokens=1000,
    iterations=[entry("compaction", 180000, 3500), entry("message", 23000, 1000, read=50)],
)
# Advisor: the advisor's 700/30 are billed under its own model, never in the top level.
ADVISOR = usage(
    input_tokens=300,
    output_tokens=25,
    iterations=[
        entry("message", 100, 10),
        entry("advisor_message", 700, 30, model="claude-opus-4-7"),
        entry("message", 200, 15),
    ],
)
# Fallback: a declined attempt with no output (not billed), one with output (billed), then
# the serving attempt.
FALLBACK = usage(
    input_tokens=40,
    output_tokens=9,
    iterations=[
        entry("message", 40, 0),
        entry("message", 40, 2),
        entry("fallback_message", 40, 9, model="claude-sonnet-4-6", write=5),
    ],
)


def test_without_iterations_the_top_level_is_billed() -> None:
    assert billed_totals(PLAIN) == counts(10, 4, 6, 2)
    assert billed_entries(PLAIN) == [PLAIN]
    assert context_window_tokens(PLAIN) == 10 + 6 + 2
    assert totals_by_model(PLAIN, model="m") == {"m": counts(10, 4, 6, 2)}
    assert totals_by_type(PLAIN) == {"message": counts(10, 4, 6, 2)}


def test_compaction_is_billed_outside_the_top_level() -> None:
    assert billed_totals(COMPACTION) == counts(203000, 4500, 0, 50)
    # The context window is the last message entry's: 23000 + 50 read.
    assert context_window_tokens(COMPACTION) == 23050
    assert totals_by_type(COMPACTION) == {
        "compaction": counts(180000, 3500),
        "message": counts(23000, 1000, 0, 50),
    }


def test_advisor_calls_are_billed_under_their_model() -> None:
    assert billed_totals(ADVISOR) == counts(1000, 55)
    assert totals_by_model(ADVISOR, model="claude-haiku-4-5") == {
        "claude-haiku-4-5": counts(300, 25),
        "claude-opus-4-7": counts(700, 30),
    }
    # Never the advisor's entry: the last message entry's 200.
    assert context_window_tokens(ADVISOR) == 200


def test_a_declined_attempt_without_output_is_not_billed() -> None:
    assert billed_totals(FALLBACK) == counts(80, 11, 5)
    assert [e.output_tokens for e in billed_entries(FALLBACK)] == [2, 9]
    assert totals_by_model(FALLBACK, model="claude-opus-4-7") == {
        "claude-opus-4-7": counts(40, 2),
        "claude-sonnet-4-6": counts(40, 9, 5),
    }
    # totals_by_type counts every entry as sent, the declined one included.
    assert totals_by_type(FALLBACK)["message"] == counts(80, 2)
    assert context_window_tokens(FALLBACK) == 45


def test_only_attempts_before_the_serving_one_are_declined() -> None:
    # Two fallbacks: the serving attempt is the last; the empty message before it is declined.
    twice = usage(
        input_tokens=3,
        output_tokens=3,
        iterations=[
            entry("fallback_message", 1, 1, model="a"),
            entry("message", 2, 0),
            entry("fallback_message", 3, 3, model="b"),
        ],
    )
    assert billed_totals(twice) == counts(4, 4)


def test_an_unknown_entry_is_billed_with_the_counts_it_carries() -> None:
    odd = usage(
        input_tokens=5,
        output_tokens=1,
        iterations=[entry("message", 5, 1), {"type": "mystery_step", "input_tokens": 7}],
    )
    assert billed_totals(odd) == counts(12, 1)
    assert totals_by_type(odd)["mystery_step"] == counts(7)


def test_cache_writes_split_by_ttl_and_report_what_no_split_covers() -> None:
    split = {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 1}
    assert cache_writes(
        usage(input_tokens=1, output_tokens=1, cache_creation_input_tokens=8, cache_creation=split)
    ) == CacheWrites(
        ephemeral_5m_input_tokens=4, ephemeral_1h_input_tokens=1, unsplit_input_tokens=3
    )
    # A split larger than the total is not believed: all of it is unsplit.
    assert cache_writes(
        usage(input_tokens=1, output_tokens=1, cache_creation_input_tokens=3, cache_creation=split)
    ) == CacheWrites(unsplit_input_tokens=3)
    assert cache_writes(FALLBACK) == CacheWrites(unsplit_input_tokens=5)


def test_token_counts_add_and_their_sides() -> None:
    both = counts(1, 2, 3, 4) + counts(10, 20, 30, 40)
    assert both == counts(11, 22, 33, 44)
    assert both.input_side == 11 + 33 + 44
    assert both.total_tokens == 11 + 33 + 44 + 22


def test_usage_totals_add_merge_and_as_dict() -> None:
    tools = {"web_search_requests": 2, "web_fetch_requests": 1}
    first, second = UsageTotals(), UsageTotals()
    assert first.add(ADVISOR, model="claude-haiku-4-5") is None  # no prices, no cost
    second.add(
        usage(input_tokens=5, output_tokens=1, server_tool_use=tools), model="claude-haiku-4-5"
    )
    second.add(PLAIN, model=None, complete=False)
    first.merge(second)
    assert first.requests == 3
    assert first.incomplete == 1
    assert first.total == counts(1000 + 5 + 10, 55 + 1 + 4, 6, 2)
    assert first.server_tool_requests == tools
    assert first.as_dict() == {
        "requests": 3,
        "incomplete": 1,
        "by_model": {
            "claude-haiku-4-5": attrs_dict(305, 26),
            "claude-opus-4-7": attrs_dict(700, 30),
            "None": attrs_dict(10, 4, 6, 2),
        },
        "server_tool_requests": tools,
    }
    assert second.requests == 2  # merging leaves the other unchanged


def attrs_dict(inp: int, out: int, write: int = 0, read: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    }
