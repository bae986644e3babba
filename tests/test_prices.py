"""Tests of usagetally.prices (the genai-prices extra, Python 3.11+) and of docs/cost.md's
comparison with genai-prices, which these tests measure."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from support import EXAMPLES

from usagetally import MissingPriceError, PriceTable, UsageAccumulator, billed_cost, converter

ROOT = Path(__file__).resolve().parent.parent

# genai-prices, and so the extra, needs Python 3.11 or later: on 3.10 there is nothing to test.
genai_prices = pytest.importorskip("genai_prices")

from usagetally.prices import from_genai_prices  # noqa: E402  (after the skip)

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_rates_of_a_current_model() -> None:
    table = from_genai_prices(at=AT).as_dict()
    assert table["models"]["claude-sonnet-4-6"] == {
        "input": "3",
        "output": "15",
        "cache_read": "0.3",
        "cache_write_5m": "3.75",
        "cache_write_1h": "6",
    }
    assert table["batch_multiplier"] == "0.5"
    # $10 per 1,000 searches
    assert table["server_tools"] == {"web_search_requests": "0.01"}
    assert table["as_of"] == "2026-12-01"
    assert table["sources"][0] == f"genai-prices {genai_prices.__version__} (bundled data)"


def test_tiered_prices_become_tiers() -> None:
    model = from_genai_prices(at=AT).as_dict()["models"]["claude-sonnet-4-5"]
    assert model["tiers"] == [
        {
            "above_prompt_tokens": 200000,
            "input": "6",
            "output": "22.5",
            "cache_read": "0.6",
            "cache_write_5m": "7.5",
            "cache_write_1h": "12",
        }
    ]


def test_fast_variant_becomes_fast_rates() -> None:
    model = from_genai_prices(at=AT).as_dict()["models"]["claude-opus-4-8"]
    assert model["fast"]["input"] == "10"
    assert model["fast"]["output"] == "50"


def test_prices_are_taken_at_a_date() -> None:
    # genai-prices dropped the 200k tier of claude-sonnet-4-6 from 2026-03-13 on.
    before = from_genai_prices(at=datetime(2026, 3, 1, tzinfo=timezone.utc)).as_dict()
    assert before["models"]["claude-sonnet-4-6"]["tiers"][0]["above_prompt_tokens"] == 200000
    assert "tiers" not in from_genai_prices(at=AT).as_dict()["models"]["claude-sonnet-4-6"]


def test_more_names_and_residency() -> None:
    table = from_genai_prices(
        at=AT,
        models=["claude-sonnet-4-20250514"],
        inference_geo={"claude-sonnet-4-6": {"us": "1.1"}},
    )
    data = table.as_dict()["models"]
    assert data["claude-sonnet-4-20250514"]["input"] == "3"
    assert data["claude-sonnet-4-6"]["inference_geo"] == {"us": "1.1"}
    with pytest.raises(MissingPriceError):
        from_genai_prices(at=AT, models=["gpt-4o"])


def test_example_table_agrees_with_genai_prices() -> None:
    # examples/prices.json is no guess: apart from the residency multiplier, which
    # genai-prices does not have, every value is genai-prices' as of the table's date.
    example = PriceTable.load(EXAMPLES / "prices.json")
    assert example.as_of is not None
    at = datetime.fromisoformat(example.as_of).replace(tzinfo=timezone.utc)
    reference = from_genai_prices(at=at).as_dict()
    data = example.as_dict()
    for name, model in data["models"].items():
        assert {k: v for k, v in model.items() if k != "inference_geo"} == reference["models"][name]
    assert data["batch_multiplier"] == reference["batch_multiplier"]
    assert data["server_tools"] == reference["server_tools"]


def test_import_usagetally_does_not_import_genai_prices() -> None:
    code = "import sys, usagetally; print('genai_prices' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


# --- docs/cost.md: the comparison with genai-prices -------------------------------------------

# (example, usagetally's total, genai-prices' calc_price on the same response)
COMPARISON = [
    ("plain", "0.0007623", "0.000693"),  # no residency multiplier
    ("prompt-caching", "0.0217845", "0.0217845"),
    ("web-search", "0.07616", "0.07616"),
    ("compaction", "1.1275", "0.14"),  # top level only: the compaction call is left out
    ("advisor", "0.0577836", "0.0133686"),  # top level only: the advisor call is left out
    ("fallback", "0.005196", "0.00866"),  # the serving attempt at the requested model
    ("thinking", "0.018108", "0.018108"),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), COMPARISON)
def test_comparison_in_the_docs_holds(name: str, ours: str, theirs: str) -> None:
    acc = UsageAccumulator()
    acc.feed((EXAMPLES / f"{name}.sse").read_bytes())
    usage = acc.finish()
    assert acc.model is not None
    prices = PriceTable.load(EXAMPLES / "prices.json")
    assert billed_cost(usage, model=acc.model, prices=prices).total == Decimal(ours)
    response = {"type": "message", "model": acc.model, "usage": converter.unstructure(usage)}
    extracted = genai_prices.extract_usage(response, provider_id="anthropic")
    calc = genai_prices.calc_price(
        extracted.usage, acc.model, provider_id="anthropic", genai_request_timestamp=AT
    )
    assert calc.total_price == Decimal(theirs)
