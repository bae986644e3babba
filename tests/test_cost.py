"""Tests of cost: PriceTable, billed_cost, UsageTotals(prices=), the worker's and OTel's cost.

Every expected figure is computed by hand in a comment, from TABLE below (rates in USD per
million tokens, so "1000 in x $3/M" is 1000 x 3 / 1,000,000 = $0.003).
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import EXAMPLES

import usagetally
from usagetally import (
    BetaUsage,
    Cost,
    LocalUsageError,
    MissingPriceError,
    PriceTable,
    PriceTableError,
    UsageAccumulator,
    UsageTotals,
    UsageWorker,
    billed_cost,
    converter,
)

ROOT = Path(__file__).resolve().parent.parent

# "a" is the executor in most cases; "b" is another model (advisor, fallback).
TABLE: dict[str, Any] = {
    "models": {
        "model-a": {
            "input": "3",
            "output": "15",
            "cache_read": "0.30",
            "cache_write_5m": "3.75",
            "cache_write_1h": "6",
            "inference_geo": {"us": "1.1"},
            "fast": {
                "input": "18",
                "output": "90",
                "cache_read": "1.80",
                "cache_write_5m": "22.50",
                "cache_write_1h": "36",
            },
            "tiers": [
                {
                    "above_prompt_tokens": 200000,
                    "input": "6",
                    "output": "22.50",
                    "cache_read": "0.60",
                    "cache_write_5m": "7.50",
                    "cache_write_1h": "12",
                }
            ],
        },
        "model-b": {
            "input": "5",
            "output": "25",
            "cache_read": "0.50",
            "cache_write_5m": "6.25",
            "cache_write_1h": "10",
        },
        "bare": {"input": "1", "output": "2"},
    },
    "batch_multiplier": "0.5",
    "server_tools": {"web_search_requests": "0.01"},
}
PRICES = PriceTable.from_dict(TABLE)


def usage(**fields: Any) -> BetaUsage:
    fields.setdefault("input_tokens", 0)
    fields.setdefault("output_tokens", 0)
    result: BetaUsage = converter.structure(fields, BetaUsage)
    return result


def entry(kind: str, input_tokens: int, output_tokens: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": fields.pop("cache_creation_input_tokens", 0),
        "cache_read_input_tokens": fields.pop("cache_read_input_tokens", 0),
        **fields,
    }


def cost_of(u: BetaUsage, model: str | None = "model-a", prices: PriceTable = PRICES) -> Cost:
    return billed_cost(u, model=model, prices=prices)


def D(text: str) -> Decimal:
    return Decimal(text)


# --- Plain responses and categories ------------------------------------------------------------


def test_top_level_without_iterations() -> None:
    cost = cost_of(usage(input_tokens=1000, output_tokens=500))
    # 1000 in x $3/M = 0.003; 500 out x $15/M = 0.0075; total 0.0105
    assert cost.by_category["input"] == D("0.003")
    assert cost.by_category["output"] == D("0.0075")
    assert cost.total == D("0.0105")
    assert dict(cost.by_model) == {"model-a": D("0.0105")}
    assert cost.unpriced == ()
    assert cost.assumptions == ()


def test_every_category_has_a_key_in_order() -> None:
    cost = cost_of(usage(input_tokens=1))
    assert tuple(cost.by_category) == usagetally._cost.CATEGORIES
    assert cost.by_category["cache_write_1h"] == 0


def test_thinking_tokens_are_never_added_again() -> None:
    u = usage(input_tokens=86, output_tokens=1190, output_tokens_details={"thinking_tokens": 846})
    # 86 x 3 = 258; 1190 x 15 = 17850 (thinking is part of the 1190); 18108 / 1e6
    assert cost_of(u).total == D("0.018108")


def test_cache_read_and_both_write_ttls() -> None:
    u = usage(
        input_tokens=18,
        output_tokens=61,
        cache_read_input_tokens=14850,
        cache_creation_input_tokens=3125,
        cache_creation={"ephemeral_5m_input_tokens": 1062, "ephemeral_1h_input_tokens": 2063},
    )
    cost = cost_of(u)
    # 18 x 3 = 54; 61 x 15 = 915; 14850 x 0.30 = 4455; 1062 x 3.75 = 3982.5; 2063 x 6 = 12378
    assert cost.by_category["cache_read"] == D("0.004455")
    assert cost.by_category["cache_write_5m"] == D("0.0039825")
    assert cost.by_category["cache_write_1h"] == D("0.012378")
    # 54 + 915 + 4455 + 3982.5 + 12378 = 21784.5
    assert cost.total == D("0.0217845")
    assert cost.assumptions == ()


def test_unsplit_cache_writes_are_5m_and_an_assumption() -> None:
    cost = cost_of(usage(cache_creation_input_tokens=1000))
    # no split: 1000 x 3.75 = 3750 as 5-minute writes
    assert cost.by_category["cache_write_5m"] == D("0.00375")
    assert cost.total == D("0.00375")
    assert len(cost.assumptions) == 1
    assert "5-minute writes" in cost.assumptions[0]


def test_cache_writes_a_split_does_not_cover_are_5m() -> None:
    u = usage(
        cache_creation_input_tokens=1000,
        cache_creation={"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300},
    )
    cost = cost_of(u)
    # 1h: 300 x 6 = 1800; 5m: 200 + 500 uncovered = 700 x 3.75 = 2625
    assert cost.by_category["cache_write_1h"] == D("0.0018")
    assert cost.by_category["cache_write_5m"] == D("0.002625")
    assert len(cost.assumptions) == 1


def test_a_split_larger_than_the_total_covers_nothing() -> None:
    # A split claiming more than cache_creation_input_tokens cannot describe it (a delta
    # lowered the total): every token is unsplit, so priced as a 5-minute write.
    u = usage(
        cache_creation_input_tokens=100,
        cache_creation={"ephemeral_5m_input_tokens": 80, "ephemeral_1h_input_tokens": 60},
    )
    cost = cost_of(u)
    # 100 x 3.75 = 375
    assert cost.by_category["cache_write_5m"] == D("0.000375")
    assert cost.by_category["cache_write_1h"] == 0
    assert len(cost.assumptions) == 1


def test_entries_use_their_own_split_never_the_top_level_one() -> None:
    u = usage(
        cache_creation_input_tokens=1000,
        cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
        iterations=[
            entry(
                "message",
                0,
                0,
                cache_creation_input_tokens=600,
                cache_creation={"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 0},
            ),
            entry("message", 0, 0, cache_creation_input_tokens=400),
        ],
    )
    cost = cost_of(u)
    # entry 1: its own split, 600 x 3.75 = 2250; entry 2: no split of its own (the top
    # level's is not used), 400 x 3.75 = 1500 and an assumption; nothing at the 1h rate
    assert cost.by_category["cache_write_5m"] == D("0.00375")
    assert cost.by_category["cache_write_1h"] == 0
    assert len(cost.assumptions) == 1


# --- Iterations: advisor, compaction, fallback, unknown types --------------------------------


ADVISOR = usage(
    input_tokens=1760,
    output_tokens=531,
    cache_read_input_tokens=412,
    iterations=[
        entry("message", 412, 89),
        entry("advisor_message", 823, 1612, model="model-b"),
        entry("message", 1348, 442, cache_read_input_tokens=412),
    ],
)


def test_advisor_is_priced_at_its_own_model() -> None:
    cost = cost_of(ADVISOR)
    # a: (412 + 1348) x 3 = 5280; (89 + 442) x 15 = 7965; 412 x 0.30 = 123.6 -> 13368.6
    # b: 823 x 5 = 4115; 1612 x 25 = 40300 -> 44415
    assert dict(cost.by_model) == {"model-a": D("0.0133686"), "model-b": D("0.044415")}
    assert cost.total == D("0.0577836")


def test_compaction_is_priced_at_the_executor_model() -> None:
    u = usage(
        input_tokens=23000,
        output_tokens=1000,
        iterations=[entry("compaction", 180000, 3500), entry("message", 23000, 1000)],
    )
    cost = cost_of(u, model="model-b")
    # (180000 + 23000) x 5 = 1015000; (3500 + 1000) x 25 = 112500 -> 1127500
    assert dict(cost.by_model) == {"model-b": D("1.1275")}


def test_message_entry_naming_a_model_is_priced_at_it() -> None:
    u = usage(input_tokens=10, iterations=[entry("message", 1000, 0, model="model-b")])
    # 1000 x 5 = 5000 at model-b, not the executor's $3
    assert dict(cost_of(u).by_model) == {"model-b": D("0.005")}


def test_declined_fallback_attempt_is_free() -> None:
    u = usage(
        input_tokens=412,
        output_tokens=264,
        iterations=[
            entry("message", 535, 0, model="model-b"),
            entry("fallback_message", 412, 264, model="model-a"),
        ],
    )
    cost = cost_of(u, model="model-b")
    # the declined attempt (535 in, 0 out) costs nothing; a: 412 x 3 = 1236, 264 x 15 = 3960
    assert dict(cost.by_model) == {"model-a": D("0.005196")}


def test_mid_stream_fallback_attempt_with_output_is_billed() -> None:
    u = usage(
        input_tokens=412,
        output_tokens=264,
        iterations=[
            entry("message", 300, 50, model="model-b"),
            entry("fallback_message", 412, 264, model="model-a"),
        ],
    )
    cost = cost_of(u, model="model-b")
    # b: 300 x 5 = 1500, 50 x 25 = 1250 -> 2750 (it sampled); a: 5196 as above
    assert dict(cost.by_model) == {"model-b": D("0.00275"), "model-a": D("0.005196")}
    assert cost.total == D("0.007946")


def test_unknown_iteration_type_is_unpriced() -> None:
    u = usage(
        input_tokens=100,
        output_tokens=10,
        iterations=[entry("message", 100, 10), entry("future_step", 5000, 500)],
    )
    cost = cost_of(u)
    # only the message entry: 100 x 3 = 300, 10 x 15 = 150 -> 450
    assert cost.total == D("0.00045")
    assert len(cost.unpriced) == 1
    assert "'future_step'" in cost.unpriced[0]


# --- Tiers ---------------------------------------------------------------------------------------


def test_prompt_at_the_threshold_keeps_the_base_rates() -> None:
    # prompt = 190000 + 10000 cache read = 200000: not above 200000
    u = usage(input_tokens=190000, cache_read_input_tokens=10000, output_tokens=1000)
    # 190000 x 3 = 570000; 10000 x 0.30 = 3000; 1000 x 15 = 15000 -> 588000
    assert cost_of(u).total == D("0.588")


def test_prompt_over_the_threshold_prices_every_token_at_the_tier() -> None:
    # prompt = 190001 + 10000 = 200001 > 200000
    u = usage(input_tokens=190001, cache_read_input_tokens=10000, output_tokens=1000)
    # 190001 x 6 = 1140006; 10000 x 0.60 = 6000; 1000 x 22.50 = 22500 -> 1168506
    assert cost_of(u).total == D("1.168506")


def test_cache_creation_counts_in_the_prompt() -> None:
    # prompt = 100000 + 100001 (cache creation, unsplit) = 200001
    u = usage(input_tokens=100000, cache_creation_input_tokens=100001)
    # 100000 x 6 = 600000; 100001 x 7.50 = 750007.5 -> 1350007.5
    assert cost_of(u).total == D("1.3500075")


def test_tier_is_chosen_per_entry() -> None:
    u = usage(
        input_tokens=300000,
        iterations=[entry("message", 150000, 0), entry("message", 150000, 0)],
    )
    # each entry's prompt is 150000 (under 200000), though they add up to 300000:
    # 300000 x 3 = 900000
    assert cost_of(u).total == D("0.9")


def test_highest_tier_exceeded_wins() -> None:
    table = {
        "models": {
            "m": {
                "input": "1",
                "output": "1",
                "tiers": [
                    {"above_prompt_tokens": 10, "input": "2", "output": "2"},
                    {"above_prompt_tokens": 20, "input": "4", "output": "4"},
                ],
            }
        }
    }
    prices = PriceTable.from_dict(table)
    # 15 in: above 10 only, 15 x 2 = 30; 25 in: above 20, 25 x 4 = 100
    assert cost_of(usage(input_tokens=15), "m", prices).total == D("0.00003")
    assert cost_of(usage(input_tokens=25), "m", prices).total == D("0.0001")


# --- Service tier, speed, residency --------------------------------------------------------------


def test_batch_halves_token_cost_of_every_entry() -> None:
    u = usage(
        service_tier="batch",
        iterations=[
            entry("message", 1000, 500),
            entry("advisor_message", 1000, 0, model="model-b"),
        ],
    )
    cost = cost_of(u)
    # a: (3000 + 7500) x 0.5 = 5250; b: 1000 x 5 = 5000 x 0.5 = 2500
    assert dict(cost.by_model) == {"model-a": D("0.00525"), "model-b": D("0.0025")}


def test_batch_does_not_discount_the_web_search_fee() -> None:
    u = usage(
        input_tokens=1000,
        output_tokens=500,
        service_tier="batch",
        server_tool_use={"web_search_requests": 2, "web_fetch_requests": 0},
    )
    cost = cost_of(u)
    # tokens 0.0105 x 0.5 = 0.00525; 2 searches x $0.01 = 0.02, not halved
    assert cost.by_category["server_tools"] == D("0.02")
    assert cost.total == D("0.02525")


def test_batch_without_a_multiplier_in_the_table_is_an_error() -> None:
    prices = PriceTable.from_dict({"models": TABLE["models"]})
    with pytest.raises(MissingPriceError, match="batch_multiplier"):
        cost_of(usage(input_tokens=1, service_tier="batch"), prices=prices)


def test_fast_rates_apply_to_executor_entries_only() -> None:
    u = usage(
        speed="fast",
        iterations=[
            entry("message", 1000, 500, cache_read_input_tokens=1000),
            entry("compaction", 1000, 0),
            entry("advisor_message", 1000, 100, model="model-b"),
        ],
    )
    cost = cost_of(u)
    # a, fast: (1000 + 1000) x 18 = 36000; 500 x 90 = 45000; 1000 x 1.80 = 1800 -> 82800
    # b, an advisor, list rates: 1000 x 5 = 5000; 100 x 25 = 2500 -> 7500
    assert dict(cost.by_model) == {"model-a": D("0.0828"), "model-b": D("0.0075")}


def test_fast_without_fast_rates_is_an_error() -> None:
    with pytest.raises(MissingPriceError, match="fast") as info:
        cost_of(usage(input_tokens=1, speed="fast"), model="model-b")
    assert info.value.model == "model-b"


def test_fast_rates_have_their_own_tiers() -> None:
    table = {
        "models": {
            "m": {
                "input": "1",
                "output": "1",
                "fast": {
                    "input": "6",
                    "output": "6",
                    "tiers": [{"above_prompt_tokens": 100, "input": "12", "output": "9"}],
                },
            }
        }
    }
    prices = PriceTable.from_dict(table)
    u = usage(input_tokens=101, output_tokens=10, speed="fast")
    # fast and above 100: 101 x 12 = 1212; 10 x 9 = 90 -> 1302
    assert cost_of(u, "m", prices).total == D("0.001302")


def test_us_residency_multiplies_the_marked_model() -> None:
    cost = cost_of(usage(input_tokens=1000, output_tokens=500, inference_geo="us"))
    # 0.0105 x 1.1 = 0.01155
    assert cost.total == D("0.01155")
    assert cost.assumptions == ()


def test_us_residency_on_an_unmarked_model_is_an_assumption() -> None:
    cost = cost_of(usage(input_tokens=1000, inference_geo="us"), model="model-b")
    # 1000 x 5 = 0.005, no multiplier in the table for model-b
    assert cost.total == D("0.005")
    assert len(cost.assumptions) == 1
    assert "'us'" in cost.assumptions[0]


@pytest.mark.parametrize("geo", ["global", "not_available"])
def test_global_inference_has_no_multiplier_and_no_note(geo: str) -> None:
    cost = cost_of(usage(input_tokens=1000, inference_geo=geo))
    assert cost.total == D("0.003")
    assert cost.assumptions == ()


def test_residency_and_batch_stack_per_entry_model() -> None:
    u = usage(
        service_tier="batch",
        inference_geo="us",
        iterations=[entry("message", 1000, 0), entry("advisor_message", 1000, 0, model="model-b")],
    )
    cost = cost_of(u)
    # a: 1000 x 3 = 3000 x 0.5 x 1.1 = 1650; b: 5000 x 0.5 = 2500 (unmarked: an assumption)
    assert dict(cost.by_model) == {"model-a": D("0.00165"), "model-b": D("0.0025")}
    assert len(cost.assumptions) == 1


def test_priority_is_priced_at_list_rates_with_an_assumption() -> None:
    cost = cost_of(usage(input_tokens=1000, output_tokens=500, service_tier="priority"))
    assert cost.total == D("0.0105")
    assert cost.assumptions == (
        "service_tier 'priority' has no public price: priced at list rates",
    )


def test_unknown_service_tier_and_speed_are_assumptions() -> None:
    cost = cost_of(usage(input_tokens=1000, service_tier="flex", speed="warp"))
    assert cost.total == D("0.003")
    assert len(cost.assumptions) == 2


# --- Server tools --------------------------------------------------------------------------------


def test_web_search_fee_is_under_the_executor_model() -> None:
    u = usage(
        input_tokens=10682,
        output_tokens=510,
        server_tool_use={"web_search_requests": 3, "web_fetch_requests": 2},
    )
    cost = cost_of(u, model="model-b")
    # 10682 x 5 = 53410; 510 x 25 = 12750 -> 66160; 3 x $0.01 = 0.03; fetches are free
    assert cost.by_category["server_tools"] == D("0.03")
    assert dict(cost.by_model) == {"model-b": D("0.09616")}
    assert cost.total == D("0.09616")


def test_web_search_without_a_fee_is_an_error() -> None:
    prices = PriceTable.from_dict({"models": TABLE["models"]})
    u = usage(input_tokens=1, server_tool_use={"web_search_requests": 1, "web_fetch_requests": 0})
    with pytest.raises(MissingPriceError, match="web_search_requests"):
        cost_of(u, prices=prices)


def test_no_web_search_needs_no_fee() -> None:
    prices = PriceTable.from_dict({"models": TABLE["models"]})
    u = usage(
        input_tokens=1000, server_tool_use={"web_search_requests": 0, "web_fetch_requests": 1}
    )
    assert cost_of(u, prices=prices).total == D("0.003")


def test_code_execution_is_listed_unpriced() -> None:
    # Today's usage has no code-execution count; a count the API may add is recognised.
    u = usage(
        input_tokens=1000,
        server_tool_use={
            "web_search_requests": 0,
            "web_fetch_requests": 0,
            "code_execution_requests": 2,
        },
    )
    cost = cost_of(u)
    assert cost.total == D("0.003")
    assert cost.unpriced == (
        "code execution container hours (billed by the hour; usage does not carry them)",
    )


def test_unknown_server_tool_count_is_unpriced_unless_the_table_has_its_fee() -> None:
    u = usage(server_tool_use={"web_search_requests": 0, "web_fetch_requests": 0, "x_requests": 4})
    assert len(cost_of(u).unpriced) == 1
    prices = PriceTable.from_dict({**TABLE, "server_tools": {"x_requests": "0.25"}})
    # 4 x $0.25 = $1
    assert cost_of(u, prices=prices).total == D("1.00")


# --- Models the table does not have --------------------------------------------------------------


def test_unknown_model_is_an_error_never_zero() -> None:
    with pytest.raises(MissingPriceError, match="'claude-nope'") as info:
        cost_of(usage(input_tokens=1), model="claude-nope")
    assert info.value.model == "claude-nope"
    assert isinstance(info.value, usagetally.UsageError)


def test_unknown_advisor_model_is_an_error() -> None:
    u = usage(iterations=[entry("message", 1, 0), entry("advisor_message", 1, 0, model="ghost")])
    with pytest.raises(MissingPriceError, match="'ghost'"):
        cost_of(u)


def test_unknown_executor_is_an_error() -> None:
    with pytest.raises(MissingPriceError, match="executor"):
        cost_of(usage(input_tokens=1), model=None)


def test_entries_naming_their_models_need_no_executor() -> None:
    u = usage(iterations=[entry("fallback_message", 1000, 0, model="model-b")])
    assert cost_of(u, model=None).total == D("0.005")


def test_a_snapshot_date_is_priced_as_the_model_and_stated() -> None:
    cost = cost_of(usage(input_tokens=1000), model="model-a-20250929")
    assert dict(cost.by_model) == {"model-a-20250929": D("0.003")}
    assert cost.assumptions == (
        "'model-a-20250929' is priced as 'model-a' (the name without its snapshot date)",
    )


def test_missing_cache_rate_is_an_error_only_when_needed() -> None:
    assert cost_of(usage(input_tokens=1000, output_tokens=1), model="bare").total == D("0.001002")
    with pytest.raises(MissingPriceError, match="cache_read"):
        cost_of(usage(cache_read_input_tokens=1), model="bare")


# --- Exactness -----------------------------------------------------------------------------------


def test_figures_are_exact_decimals() -> None:
    # 0.1 and 0.2 have no exact binary float: 1e6 tokens x $0.1/M + 1e6 x $0.2/M
    table = {"models": {"m": {"input": "0.1", "output": "0.2"}}}
    cost = cost_of(usage(input_tokens=10**6, output_tokens=10**6), "m", PriceTable.from_dict(table))
    assert cost.total == D("0.3")
    values = [cost.total, *cost.by_model.values(), *cost.by_category.values()]
    assert all(type(value) is Decimal for value in values)


def test_tiny_rates_and_huge_counts_stay_exact() -> None:
    table = {"models": {"m": {"input": "0.000000000123456789", "output": "123456789.987654321"}}}
    u = usage(input_tokens=987654321987, output_tokens=3)
    cost = cost_of(u, "m", PriceTable.from_dict(table))
    # exact products, checked with integers: scale by 10^18 and 10^9
    assert cost.by_category["input"] * 10**24 == 987654321987 * 123456789
    assert cost.by_category["output"] * 10**15 == 3 * 123456789987654321


def test_costs_add_exactly_and_keep_notes_once() -> None:
    one = cost_of(usage(cache_creation_input_tokens=1))
    total = sum([one] * 10, Cost.zero())
    # 1 x 3.75 = 0.00000375, ten times = 0.0000375
    assert total.total == D("0.0000375")
    assert total.assumptions == one.assumptions


def test_float_rates_are_refused() -> None:
    with pytest.raises(PriceTableError, match="float") as info:
        PriceTable.from_dict({"models": {"m": {"input": 3.0, "output": "15"}}})
    assert info.value.path == 'models["m"].input'


def test_as_dict_is_plain_exact_data() -> None:
    cost = cost_of(usage(input_tokens=1, output_tokens=0))
    data = cost.as_dict()
    assert data["total"] == "0.000003"  # not "3E-6"
    assert json.loads(json.dumps(data)) == data


# --- Bad tables ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({}, "models"),
        ({"models": []}, "models"),
        ({"models": {}, "extra": 1}, "extra"),
        ({"models": {"m": {"output": "1"}}}, 'models["m"].input'),
        ({"models": {"m": {"input": "1", "output": "-1"}}}, 'models["m"].output'),
        ({"models": {"m": {"input": "NaN", "output": "1"}}}, 'models["m"].input'),
        ({"models": {"m": {"input": "three", "output": "1"}}}, 'models["m"].input'),
        ({"models": {"m": {"input": True, "output": "1"}}}, 'models["m"].input'),
        ({"models": {"m": {"input": "1e99", "output": "1"}}}, 'models["m"].input'),
        (
            {"models": {"m": {"input": "1", "output": "1", "cache_write": "1"}}},
            'models["m"].cache_write',
        ),
        ({"models": {"m": {"input": "1", "output": "1", "tiers": {}}}}, 'models["m"].tiers'),
        (
            {
                "models": {
                    "m": {"input": "1", "output": "1", "tiers": [{"input": "1", "output": "1"}]}
                }
            },
            'models["m"].tiers[0].above_prompt_tokens',
        ),
        (
            {
                "models": {
                    "m": {
                        "input": "1",
                        "output": "1",
                        "tiers": [
                            {"above_prompt_tokens": 5, "input": "1", "output": "1"},
                            {"above_prompt_tokens": 5, "input": "2", "output": "2"},
                        ],
                    }
                }
            },
            'models["m"].tiers[1].above_prompt_tokens',
        ),
        (
            {
                "models": {
                    "m": {
                        "input": "1",
                        "output": "1",
                        "tiers": [{"above_prompt_tokens": 1, "input": "1"}],
                    }
                }
            },
            'models["m"].tiers[0].output',
        ),
        (
            {"models": {"m": {"input": "1", "output": "1", "fast": {"input": "x", "output": "1"}}}},
            'models["m"].fast.input',
        ),
        (
            {"models": {"m": {"input": "1", "output": "1", "inference_geo": {"us": 1.1}}}},
            'models["m"].inference_geo["us"]',
        ),
        ({"models": {}, "batch_multiplier": 0.5}, "batch_multiplier"),
        (
            {"models": {}, "server_tools": {"web_search_requests": None}},
            'server_tools["web_search_requests"]',
        ),
        ({"models": {}, "sources": "one"}, "sources"),
        ({"models": {}, "as_of": 20261201}, "as_of"),
    ],
)
def test_bad_table_names_the_path(table: dict[str, Any], path: str) -> None:
    with pytest.raises(PriceTableError) as info:
        PriceTable.from_dict(table)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)


def test_table_round_trips_through_as_dict() -> None:
    again = PriceTable.from_dict(PRICES.as_dict())
    assert again == PRICES
    assert again.as_dict() == PRICES.as_dict()
    assert PRICES.models == ("model-a", "model-b", "bare")
    assert PRICES.batch_multiplier == D("0.5")


def test_load_reads_json_numbers_as_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"models": {"m": {"input": 0.30, "output": 15}}}', encoding="utf-8")
    table = PriceTable.load(path)
    assert table.as_dict()["models"]["m"] == {"input": "0.30", "output": "15"}


def test_load_names_the_file_and_path(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"models": {"m": {"input": "1", "output": "x"}}}', encoding="utf-8")
    with pytest.raises(PriceTableError) as info:
        PriceTable.load(path)
    assert info.value.source == str(path)
    assert str(info.value) == f"{path}: models[\"m\"].output: expected a decimal string, got 'x'"


def test_load_refuses_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"models": ', encoding="utf-8")
    with pytest.raises(PriceTableError, match="not valid JSON"):
        PriceTable.load(path)


def test_load_refuses_another_suffix(tmp_path: Path) -> None:
    with pytest.raises(LocalUsageError, match=r"\.json or \.toml"):
        PriceTable.load(tmp_path / "t.yaml")


TOML = (
    'batch_multiplier = "0.5"\n[models.m]\ninput = 0.30\noutput = "15"\n'
    '[[models.m.tiers]]\nabove_prompt_tokens = 10\ninput = "1"\noutput = "2"\n'
)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_load_reads_toml(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TOML, encoding="utf-8")
    table = PriceTable.load(path)
    assert table.as_dict()["models"]["m"]["input"] == "0.30"
    # 11 in > 10: 11 x $1/M
    assert cost_of(usage(input_tokens=11), "m", table).total == D("0.000011")


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="Python 3.10 only: it has no tomllib")
def test_load_toml_on_python_3_10_says_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(TOML, encoding="utf-8")
    with pytest.raises(LocalUsageError, match=r"Python 3\.11"):
        PriceTable.load(path)


# --- The example table and streams ---------------------------------------------------------------


def _example(name: str) -> tuple[BetaUsage, str | None]:
    acc = UsageAccumulator()
    acc.feed((EXAMPLES / f"{name}.sse").read_bytes())
    return acc.finish(), acc.model


EXAMPLE_PRICES = PriceTable.load(EXAMPLES / "prices.json")


@pytest.mark.parametrize(
    ("name", "total"),
    [
        # sonnet-4-6, US: (21 x 3 + 42 x 15) = 693 x 1.1 = 762.3
        ("plain", "0.0007623"),
        # sonnet-4-6: 54 + 915 + 4455 + 3982.5 + 12378 = 21784.5
        ("prompt-caching", "0.0217845"),
        # opus-4-7: 10682 x 5 + 510 x 25 = 66160; one search $0.01
        ("web-search", "0.07616"),
        # opus-4-7: 203000 x 5 + 4500 x 25 = 1127500
        ("compaction", "1.1275"),
        # sonnet-4-6 13368.6 + opus-4-7 44415
        ("advisor", "0.0577836"),
        # sonnet-4-6 serving: 412 x 3 + 264 x 15 = 5196; the declined opus attempt is free
        ("fallback", "0.005196"),
        # sonnet-4-6: 86 x 3 + 1190 x 15 = 18108
        ("thinking", "0.018108"),
    ],
)
def test_example_streams_with_the_example_table(name: str, total: str) -> None:
    u, model = _example(name)
    cost = billed_cost(u, model=model, prices=EXAMPLE_PRICES)
    assert cost.total == D(total)
    assert cost.unpriced == ()
    assert cost.assumptions == ()


def test_example_table_is_dated_and_sourced() -> None:
    assert EXAMPLE_PRICES.as_of
    assert EXAMPLE_PRICES.sources
    assert {"claude-sonnet-4-6", "claude-opus-4-7"} <= set(EXAMPLE_PRICES.models)


# --- UsageTotals, the worker, OpenTelemetry ------------------------------------------------------


def test_totals_price_each_request_as_it_is_added() -> None:
    totals = UsageTotals(prices=PRICES)
    one = usage(input_tokens=150000)
    # each request's prompt is 150000, under the tier: 150000 x 3 = 0.45, twice
    assert totals.add(one, model="model-a") == cost_of(one)
    totals.add(one, model="model-a")
    assert totals.cost is not None
    assert totals.cost.total == D("0.9")
    # the summed counts (300000) would be over the tier: 300000 x 6 = 1.8, which is wrong
    assert totals.total.input_tokens == 300000
    assert totals.as_dict()["cost"]["total"] == "0.900000"


def test_totals_without_prices_have_no_cost() -> None:
    totals = UsageTotals()
    assert totals.add(usage(input_tokens=1), model="model-a") is None
    assert totals.cost is None
    assert "cost" not in totals.as_dict()


def test_totals_keep_tokens_of_a_request_they_cannot_price() -> None:
    totals = UsageTotals(prices=PRICES)
    totals.add(usage(input_tokens=1000), model="model-a")
    assert totals.add(usage(input_tokens=7), model="ghost") is None
    totals.add(usage(input_tokens=9), model="ghost")
    assert totals.unpriced_requests == 2
    assert totals.by_model["ghost"].input_tokens == 16
    assert totals.cost is not None
    assert totals.cost.total == D("0.003")
    assert totals.cost.unpriced == (
        "requests the table could not price: model 'ghost' is not in the price table",
    )


def test_totals_merge_costs() -> None:
    first, second = UsageTotals(prices=PRICES), UsageTotals(prices=PRICES)
    first.add(usage(input_tokens=1000), model="model-a")
    second.add(usage(input_tokens=1000), model="model-b")
    second.add(usage(input_tokens=1), model="ghost")
    first.merge(second)
    assert first.cost is not None
    # 1000 x 3 + 1000 x 5 = 8000
    assert dict(first.cost.by_model) == {"model-a": D("0.003"), "model-b": D("0.005")}
    assert first.unpriced_requests == 1


def test_worker_results_and_totals_carry_the_cost() -> None:
    async def main() -> tuple[list[Any], Any]:
        seen: list[Any] = []
        async with UsageWorker(prices=EXAMPLE_PRICES, on_result=seen.append) as worker:
            for name in ("advisor", "web-search"):
                async with worker.open(name) as sink:
                    await sink.send((EXAMPLES / f"{name}.sse").read_bytes())
        return seen, worker.totals

    results, totals = anyio.run(main)
    by_key = {result.key: result.cost.total for result in results}
    assert by_key == {"advisor": D("0.0577836"), "web-search": D("0.07616")}
    # 0.0577836 + 0.07616
    assert totals.cost.total == D("0.1339436")


def test_worker_without_prices_has_no_cost() -> None:
    async def main() -> Any:
        seen: list[Any] = []
        async with UsageWorker(on_result=seen.append) as worker, worker.open("plain") as sink:
            await sink.send((EXAMPLES / "plain.sse").read_bytes())
        return seen[0], worker.totals

    result, totals = anyio.run(main)
    assert result.cost is None
    assert totals.cost is None


def test_otel_cost_counter_per_model() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from usagetally.otel import UsageMetrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = UsageMetrics(provider.get_meter("test"), prices=EXAMPLE_PRICES)
    advisor, model = _example("advisor")
    metrics.record(advisor, model=model)
    metrics.record(advisor, model="ghost")  # the executor entries cannot be priced
    points: dict[tuple[str, str], float] = {}
    units = {}
    data = reader.get_metrics_data()
    assert data is not None
    for metric in data.resource_metrics[0].scope_metrics[0].metrics:
        units[metric.name] = metric.unit
        for point in metric.data.data_points:
            label = str((point.attributes or {}).get("gen_ai.response.model", ""))
            points[(metric.name, label)] = point.value if hasattr(point, "value") else 0
    provider.shutdown()
    assert units["usagetally.cost"] == "USD"
    # the exact Decimal, turned into the nearest float only at the counter
    assert points[("usagetally.cost", "claude-sonnet-4-6")] == float(D("0.0133686"))
    assert points[("usagetally.cost", "claude-opus-4-7")] == float(D("0.044415"))
    assert points[("usagetally.unpriced_streams", "")] == 1


def test_otel_hook_takes_prices_or_metrics_not_both() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider

    from usagetally.otel import UsageMetrics, otel_hook

    provider = MeterProvider()
    metrics = UsageMetrics(provider.get_meter("test"))
    with pytest.raises(LocalUsageError, match="prices"):
        otel_hook(metrics=metrics, prices=PRICES)
    provider.shutdown()
