"""A price table from pydantic's ``genai-prices`` (the ``usagetally[prices]`` extra).

``genai-prices`` keeps maintained prices for many providers and bundles them in the package,
so building a table reads no network. It needs Python 3.11 or later, and so does this
module; ``import usagetally`` never imports it.

How its Anthropic data maps onto a :class:`usagetally.PriceTable`:

- Per-million-token prices: ``input_mtok`` is ``input``, ``output_mtok`` ``output``,
  ``cache_read_mtok`` ``cache_read``, ``cache_write_mtok`` ``cache_write_5m``,
  ``cache_write_1h_mtok`` ``cache_write_1h``. Prices that change on a date are taken as of
  ``at``.
- Tiered prices (a rate for all tokens once the prompt exceeds a threshold, "strictly
  greater" in both libraries) become ``tiers``.
- The ``{"speed": "fast"}`` price variant becomes ``fast``; the ``{"processing": "batch"}``
  variants must all be one multiple of the list prices, which becomes ``batch_multiplier``
  (Anthropic's is 0.5). Variants on other conditions are not read.
- ``web_searches_kcount`` (USD per 1,000 searches) becomes the per-request fee of
  ``server_tools.web_search_requests``; the models must agree on it.
- ``genai-prices`` has no data-residency multiplier: pass ``inference_geo`` to add one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

try:
    import genai_prices
    from genai_prices.data import providers as _providers
    from genai_prices.types import ModelPrice, TieredPrices
except ImportError as exc:
    raise ImportError(
        "usagetally.prices needs genai-prices (Python 3.11 or later); install it with: "
        "pip install 'usagetally[prices]'"
    ) from exc

from ._cost import PriceTable
from ._errors import LocalUsageError, MissingPriceError

__all__ = ["from_genai_prices"]

_KEYS = (
    ("input_mtok", "input"),
    ("output_mtok", "output"),
    ("cache_read_mtok", "cache_read"),
    ("cache_write_mtok", "cache_write_5m"),
    ("cache_write_1h_mtok", "cache_write_1h"),
)
_FAST = {"speed": "fast"}
_BATCH = {"processing": "batch"}


def _price(prices: ModelPrice, key: str) -> Decimal | TieredPrices | None:
    value: Decimal | TieredPrices | None = getattr(prices, key, None)
    return value


def _at(value: Decimal | TieredPrices, threshold: int | None) -> Decimal:
    """Return the rate for a prompt just above ``threshold`` (None: the base rate)."""
    if isinstance(value, Decimal):
        return value
    rate = value.base
    for tier in value.tiers:
        if threshold is not None and tier.start <= threshold:
            rate = tier.price
    return rate


def _card(prices: ModelPrice) -> dict[str, Any] | None:
    values = {ours: _price(prices, theirs) for theirs, ours in _KEYS}
    present = {ours: value for ours, value in values.items() if value is not None}
    if "input" not in present or "output" not in present:
        return None
    thresholds = sorted(
        {
            tier.start
            for value in present.values()
            if isinstance(value, TieredPrices)
            for tier in value.tiers
        }
    )
    card: dict[str, Any] = {ours: str(_at(value, None)) for ours, value in present.items()}
    if thresholds:
        card["tiers"] = [
            {
                "above_prompt_tokens": threshold,
                **{ours: str(_at(value, threshold)) for ours, value in present.items()},
            }
            for threshold in thresholds
        ]
    return card


def _merged(standard: ModelPrice, override: ModelPrice) -> ModelPrice:
    # A variant gives only the prices it changes, as genai-prices resolves them.
    merged = ModelPrice(**{theirs: _price(standard, theirs) for theirs, _ in _KEYS})
    for theirs, _ in _KEYS:
        value = _price(override, theirs)
        if value is not None:
            setattr(merged, theirs, value)
    return merged


def _batch_ratios(standard: ModelPrice, batch: ModelPrice) -> set[Decimal]:
    ratios = set()
    for theirs, _ in _KEYS:
        listed, discounted = _price(standard, theirs), _price(batch, theirs)
        if listed is None or discounted is None:
            continue
        thresholds = [None] + (
            [tier.start for tier in listed.tiers] if isinstance(listed, TieredPrices) else []
        )
        for threshold in thresholds:
            base = _at(listed, threshold)
            if base:
                ratios.add(_at(discounted, threshold) / base)
    return ratios


def _active(variant: Any, at: datetime) -> bool:
    return variant.constraint is None or bool(variant.constraint.active(at))


def from_genai_prices(
    *,
    at: datetime | None = None,
    models: Iterable[str] = (),
    inference_geo: Mapping[str, Mapping[str, str | Decimal]] | None = None,
) -> PriceTable:
    """Build a price table of Anthropic's models from the data ``genai-prices`` bundles.

    Args:
        at: The time the prices are taken at (prices that change on a date); None for now.
        models: More model names to add, as the API sends them (such as
            ``claude-sonnet-4-20250514``), each priced as the ``genai-prices`` model that
            matches it. Names with a snapshot date whose stem is a ``genai-prices`` model id
            need not be listed: the table finds those itself.
        inference_geo: Residency multipliers to add, per model id: such as
            ``{"claude-sonnet-4-6": {"us": "1.1"}}``.

    Returns:
        The table, with ``as_of`` the date of ``at`` and ``sources`` naming the
        ``genai-prices`` version and Anthropic's pricing pages it cites.

    Raises:
        MissingPriceError: A name of ``models`` matches no ``genai-prices`` Anthropic model.
        LocalUsageError: A model of ``inference_geo`` is not in the table; or the data
            cannot be expressed in a table (batch prices that are not one multiple of the
            list prices, models that disagree on the web search fee).
        PriceTableError: A value of ``inference_geo`` is not a decimal.

    """
    when = at if at is not None else datetime.now(timezone.utc)
    provider = next(p for p in _providers if p.id == "anthropic")
    table: dict[str, Any] = {}
    batch_ratios: set[Decimal] = set()
    search_fees: set[Decimal] = set()
    cards: dict[str, dict[str, Any]] = {}
    for info in provider.models:
        standard = info.get_prices(when)
        card = _card(standard)
        if card is None:
            continue
        for variant in info.price_variants or ():
            if not _active(variant, when):
                continue
            if variant.when == _FAST:
                fast = _card(_merged(standard, variant.prices))
                if fast is not None:
                    card["fast"] = fast
            elif variant.when == _BATCH:
                batch_ratios |= _batch_ratios(standard, variant.prices)
        fee = getattr(standard, "web_searches_kcount", None)
        if isinstance(fee, Decimal):
            search_fees.add(fee / 1000)
        cards[info.id] = card
    for name in models:
        match = next((info for info in provider.models if info.is_match(name)), None)
        if match is None or match.id not in cards:
            raise MissingPriceError(
                f"genai-prices has no Anthropic model matching {name!r}", model=name
            )
        cards.setdefault(name, cards[match.id])
    for name, geos in (inference_geo or {}).items():
        if name not in cards:
            raise LocalUsageError(f"inference_geo names {name!r}, which is not in the table")
        cards[name] = {**cards[name], "inference_geo": dict(geos)}
    if len(batch_ratios) > 1:
        raise LocalUsageError(
            "genai-prices' batch prices are not one multiple of the list prices: "
            + ", ".join(sorted(str(r) for r in batch_ratios))
        )
    if len(search_fees) > 1:
        raise LocalUsageError("genai-prices' Anthropic models disagree on the web search fee")
    table["as_of"] = when.date().isoformat()
    table["sources"] = [
        f"genai-prices {genai_prices.__version__} (bundled data)",
        *(provider.pricing_urls or []),
    ]
    table["models"] = cards
    if batch_ratios:
        table["batch_multiplier"] = str(batch_ratios.pop())
    if search_fees:
        table["server_tools"] = {"web_search_requests": str(search_fees.pop())}
    return PriceTable.from_dict(table, source="genai-prices")
