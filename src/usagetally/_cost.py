"""What a response cost: a price table, and the rules that apply it to a final usage.

Rules (``docs/cost.md`` gives each with its source):

- The entries priced are exactly those ``_figures.billed_entries`` returns, so billed tokens
  and cost never disagree: the iterations, or the top level when there are none; before a
  ``fallback_message``, declined ``message`` attempts that produced no output are free.
- Each entry is priced at its own model: ``advisor_message.model``,
  ``fallback_message.model``, ``message.model`` when sent, else the executor model (the one
  ``message_start`` names); ``compaction`` entries at the executor model. Entries of an
  unknown type are listed as unpriced, never guessed.
- Categories: input, output (thinking tokens are part of it and never added again), cache
  read, 5-minute and 1-hour cache writes. The 5m/1h split is the entry's own
  ``cache_creation`` (the top level's only without iterations), read by
  ``_figures.CacheWrites.of``; the tokens it reports unsplit (no split, or one that cannot
  describe the total) are priced as 5-minute writes (the API's default TTL), an assumption.
- Prompt-length tiers, per entry: the prompt is the entry's input + cache creation + cache
  read; a tier applies when the prompt is strictly greater than its ``above_prompt_tokens``,
  and of those the one with the highest threshold wins; its rates then apply to every token
  of the entry.
- ``speed: "fast"``: the model's fast rates (with their own tiers) apply to executor entries
  (``message`` and ``compaction`` entries, or the top level); advisor and fallback entries
  keep their list rates. ``service_tier: "batch"``: token cost x the table's
  ``batch_multiplier``; ``"priority"``: list rates, an assumption. ``inference_geo``: token
  cost x the model's multiplier for that geography when the table has one; a geography other
  than ``"global"`` or ``"not_available"`` that the table does not price is an assumption.
- Server tools: a fee per request from the table's ``server_tools`` (web search); web fetch
  is free unless the table says otherwise; code execution is billed by container hours,
  which usage does not carry: listed as unpriced. Fees are billed under the executor model
  and are not multiplied by the batch or residency multipliers (those apply to tokens).
- What the table lacks (a model, a rate the usage needs, the batch multiplier, the web
  search fee) raises :class:`MissingPriceError`: never a cost of $0.
- Money is ``decimal.Decimal``, computed in a context of this module that traps any inexact
  result: every figure is exact. Floats are refused in tables.
"""

from __future__ import annotations

import decimal
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from . import _figures
from ._errors import (
    LocalUsageError,
    LocalValueError,
    MissingPriceError,
    PriceTableError,
    check_argument_type,
)
from ._models import BetaUsage, IterationUsage
from ._wire import ITERATION_TYPES

__all__ = ["CATEGORIES", "Cost", "PriceTable", "billed_cost"]

CATEGORIES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "server_tools")
"""The keys of :attr:`Cost.by_category`, in this order."""

_RATES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
_REQUIRED_RATES = ("input", "output")
_MILLION_EXPONENT = -6  # rates are per million tokens: scaleb(-6) divides exactly
_EXECUTOR_TYPES = frozenset({"message", "compaction"})
_UNPRICED_GEOS = frozenset({"global", "not_available"})
_SNAPSHOT = re.compile(r"(.+)-\d{8}")

# Exact arithmetic: enough precision for any product of the values a table may hold (their
# exponents are bounded below), and a trap on anything inexact, so a rounding can never go
# unnoticed.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
_MAX_DIGITS = 40  # significant digits a table value may have
_MAX_EXPONENT = 30  # and how far its decimal point may move either way


# --- The table -------------------------------------------------------------------------------


@attrs.frozen
class _Rates:
    """One set of rates, USD per million tokens (None: the table has no such rate)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write_5m: Decimal | None
    cache_write_1h: Decimal | None


@attrs.frozen
class _RateCard:
    """Rates and the prompt-length tiers above them (thresholds increasing)."""

    base: _Rates
    tiers: tuple[tuple[int, _Rates], ...]

    def for_prompt(self, prompt: int) -> _Rates:
        chosen = self.base
        for threshold, rates in self.tiers:
            if prompt > threshold:
                chosen = rates
        return chosen


@attrs.frozen
class _ModelPrices:
    standard: _RateCard
    fast: _RateCard | None
    inference_geo: Mapping[str, Decimal]


def _key_path(parent: str, key: str) -> str:
    return f"{parent}[{json.dumps(key)}]"


def _field_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        if isinstance(value, float):
            raise PriceTableError(
                path, f"expected a decimal string, got the float {value!r} (a float is not exact)"
            )
        raise PriceTableError(path, f"expected a decimal string, got {value!r}")
    try:
        number = Decimal(value)
    except decimal.InvalidOperation:
        raise PriceTableError(path, f"expected a decimal string, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise PriceTableError(path, f"expected a finite non-negative decimal, got {value!r}")
    digits = number.as_tuple().digits
    if number and (len(digits) > _MAX_DIGITS or abs(number.adjusted()) > _MAX_EXPONENT):
        raise PriceTableError(path, f"{value!r} is out of range for a price")
    return number


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PriceTableError(path, f"expected a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise PriceTableError(path, f"expected string keys, got {key!r}")
    return value


def _only(value: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    known = set(allowed)
    for key in value:
        if key not in known:
            raise PriceTableError(
                _field_path(path, key), f"unknown key (expected one of: {', '.join(sorted(known))})"
            )


def _rates(value: Mapping[str, Any], path: str) -> _Rates:
    for key in _REQUIRED_RATES:
        if key not in value:
            raise PriceTableError(_field_path(path, key), "missing (input and output are required)")
    found = {
        key: _decimal(value[key], _field_path(path, key)) if key in value else None
        for key in _RATES
    }
    return _Rates(**found)  # type: ignore[arg-type]  # input and output checked above


def _card(value: Mapping[str, Any], path: str, extra: Iterable[str] = ()) -> _RateCard:
    _only(value, (*_RATES, "tiers", *extra), path)
    base = _rates(value, path)
    tiers: list[tuple[int, _Rates]] = []
    raw_tiers = value.get("tiers", [])
    tiers_path = _field_path(path, "tiers")
    if isinstance(raw_tiers, (str, bytes)) or not isinstance(raw_tiers, (list, tuple)):
        raise PriceTableError(tiers_path, f"expected a list, got {type(raw_tiers).__name__}")
    for index, raw in enumerate(raw_tiers):
        tier_path = f"{tiers_path}[{index}]"
        tier = _mapping(raw, tier_path)
        _only(tier, (*_RATES, "above_prompt_tokens"), tier_path)
        threshold_path = _field_path(tier_path, "above_prompt_tokens")
        threshold = tier.get("above_prompt_tokens")
        if type(threshold) is not int or threshold < 0:
            raise PriceTableError(
                threshold_path, f"expected a non-negative integer, got {threshold!r}"
            )
        if tiers and threshold <= tiers[-1][0]:
            raise PriceTableError(threshold_path, "tier thresholds must increase")
        tiers.append((threshold, _rates(tier, tier_path)))
    return _RateCard(base=base, tiers=tuple(tiers))


def _model(value: Mapping[str, Any], path: str) -> _ModelPrices:
    standard = _card(value, path, extra=("fast", "inference_geo"))
    fast = None
    if "fast" in value:
        fast_path = _field_path(path, "fast")
        fast = _card(_mapping(value["fast"], fast_path), fast_path)
    geo: dict[str, Decimal] = {}
    if "inference_geo" in value:
        geo_path = _field_path(path, "inference_geo")
        for name, multiplier in _mapping(value["inference_geo"], geo_path).items():
            geo[name] = _decimal(multiplier, _key_path(geo_path, name))
    return _ModelPrices(standard=standard, fast=fast, inference_geo=MappingProxyType(geo))


def _rates_dict(rates: _Rates) -> dict[str, str]:
    return {key: str(getattr(rates, key)) for key in _RATES if getattr(rates, key) is not None}


def _card_dict(card: _RateCard) -> dict[str, Any]:
    data: dict[str, Any] = _rates_dict(card.base)
    if card.tiers:
        data["tiers"] = [
            {"above_prompt_tokens": threshold, **_rates_dict(rates)}
            for threshold, rates in card.tiers
        ]
    return data


class PriceTable:
    """Prices per model, read from a mapping or a JSON or TOML file, and checked whole.

    The shape (rates in USD per million tokens, as decimal strings; fees in USD per request)::

        {
          "as_of": "2026-11-30",                 # optional: when the prices were read
          "sources": ["https://..."],            # optional: where from
          "models": {
            "claude-sonnet-4-6": {
              "input": "3", "output": "15",      # required
              "cache_read": "0.30", "cache_write_5m": "3.75", "cache_write_1h": "6",
              "inference_geo": {"us": "1.1"},    # multiplier of token cost per geography
              "fast": {"input": ..., "output": ..., ..., "tiers": [...]},
              "tiers": [{"above_prompt_tokens": 200000, "input": ..., "output": ..., ...}]
            }
          },
          "batch_multiplier": "0.5",
          "server_tools": {"web_search_requests": "0.01"}
        }

    Cache rates are optional: one that an entry needs and the table lacks raises
    :class:`MissingPriceError`, it is never taken as 0 or derived from the input rate. Unknown
    keys are refused (a misspelt rate would otherwise go unpriced). A model the API names
    with a snapshot date (``claude-sonnet-4-5-20250929``) that the table lacks is priced at
    the entry without the date (``claude-sonnet-4-5``), and the cost says so in its
    assumptions.

    Build one with :meth:`from_dict` or :meth:`load`; ``usagetally.prices.from_genai_prices``
    builds one from the ``genai-prices`` package.

    >>> table = PriceTable.from_dict({"models": {"claude-sonnet-4-6": {"input": "3",
    ...     "output": "15", "tiers": [{"above_prompt_tokens": 2.5e5, "input": "6",
    ...     "output": "22.50"}]}}})
    Traceback (most recent call last):
    usagetally._errors.PriceTableError: models["claude-sonnet-4-6"].tiers[0].above_prompt_tokens: \
expected a non-negative integer, got 250000.0

    """

    __slots__ = ("_batch", "_models", "_server_tools", "as_of", "sources")

    def __init__(
        self,
        models: Mapping[str, _ModelPrices],
        *,
        batch_multiplier: Decimal | None,
        server_tools: Mapping[str, Decimal],
        as_of: str | None,
        sources: tuple[str, ...],
    ) -> None:
        self._models = dict(models)
        self._batch = batch_multiplier
        self._server_tools = dict(server_tools)
        self.as_of = as_of
        self.sources = sources

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> PriceTable:
        """Build a table from a mapping of the documented shape.

        Args:
            data: The table. Rates are decimal strings, ``Decimal`` or integers; a float is
                refused, as it may already have lost the exact value.
            source: Where the mapping came from (such as a file name), named in errors.

        Returns:
            The table.

        Raises:
            PriceTableError: A value is wrong; the error names its JSON path.

        """
        try:
            return cls._parse(data)
        except PriceTableError as exc:
            if source is None:
                raise
            raise PriceTableError(exc.path, exc.problem, source=source) from None

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> PriceTable:
        table = _mapping(data, "")
        _only(table, ("models", "batch_multiplier", "server_tools", "as_of", "sources"), "")
        if "models" not in table:
            raise PriceTableError("models", "missing")
        models = {
            name: _model(_mapping(value, _key_path("models", name)), _key_path("models", name))
            for name, value in _mapping(table["models"], "models").items()
        }
        batch = None
        if "batch_multiplier" in table:
            batch = _decimal(table["batch_multiplier"], "batch_multiplier")
        tools = {
            name: _decimal(fee, _key_path("server_tools", name))
            for name, fee in _mapping(table.get("server_tools", {}), "server_tools").items()
        }
        as_of = table.get("as_of")
        if as_of is not None and not isinstance(as_of, str):
            raise PriceTableError("as_of", f"expected a string, got {as_of!r}")
        sources = table.get("sources", [])
        if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
            raise PriceTableError("sources", f"expected a list of strings, got {sources!r}")
        for index, item in enumerate(sources):
            if not isinstance(item, str):
                raise PriceTableError(f"sources[{index}]", f"expected a string, got {item!r}")
        return cls(
            models,
            batch_multiplier=batch,
            server_tools=tools,
            as_of=as_of,
            sources=tuple(sources),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PriceTable:
        """Read a table from a JSON (``.json``) or TOML (``.toml``) file.

        Numbers in the file are read as exact decimals (JSON's ``0.30`` is
        ``Decimal("0.30")``), so a file may write rates as numbers or as strings.

        Args:
            path: The file.

        Returns:
            The table.

        Raises:
            PriceTableError: The file is not valid JSON or TOML, or a value is wrong (the
                error names the file and the value's JSON path).
            LocalUsageError: The file's suffix is neither ``.json`` nor ``.toml``, or it is
                TOML on Python 3.10, which has no TOML reader in its standard library (use
                JSON there).
            OSError: The file cannot be read.

        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise LocalValueError(f"{file}: a price table is a .json or .toml file")
        data: Any
        if suffix == ".json":
            text = file.read_text(encoding="utf-8")
            try:
                data = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise PriceTableError("", f"not valid JSON: {exc}", source=str(file)) from None
        elif sys.version_info >= (3, 11):
            import tomllib

            text = file.read_text(encoding="utf-8")
            try:
                data = tomllib.loads(text, parse_float=Decimal)
            except tomllib.TOMLDecodeError as exc:
                raise PriceTableError("", f"not valid TOML: {exc}", source=str(file)) from None
        else:
            raise LocalUsageError(
                f"{file}: reading a TOML price table needs Python 3.11 or later (tomllib); "
                "use a JSON table"
            )
        return cls.from_dict(data, source=str(file))

    @property
    def models(self) -> tuple[str, ...]:
        """The names of the models the table prices, in the table's order."""
        return tuple(self._models)

    @property
    def batch_multiplier(self) -> Decimal | None:
        """What token cost is multiplied by for ``service_tier: "batch"`` (None: not priced)."""
        return self._batch

    @property
    def server_tools(self) -> Mapping[str, Decimal]:
        """The fee per request of each server-tool count (a copy)."""
        return dict(self._server_tools)

    def as_dict(self) -> dict[str, Any]:
        """Return the table in its documented shape, with decimal strings (JSON-ready).

        ``PriceTable.from_dict(table.as_dict())`` is equal to ``table``.
        """
        models: dict[str, Any] = {}
        for name, prices in self._models.items():
            entry = _card_dict(prices.standard)
            if prices.fast is not None:
                entry["fast"] = _card_dict(prices.fast)
            if prices.inference_geo:
                entry["inference_geo"] = {k: str(v) for k, v in prices.inference_geo.items()}
            models[name] = entry
        data: dict[str, Any] = {}
        if self.as_of is not None:
            data["as_of"] = self.as_of
        if self.sources:
            data["sources"] = list(self.sources)
        data["models"] = models
        if self._batch is not None:
            data["batch_multiplier"] = str(self._batch)
        if self._server_tools:
            data["server_tools"] = {k: str(v) for k, v in self._server_tools.items()}
        return data

    def _lookup(self, model: str) -> tuple[_ModelPrices, str | None]:
        """Return a model's prices and, when found under another name, the assumption made."""
        prices = self._models.get(model)
        if prices is not None:
            return prices, None
        dated = _SNAPSHOT.fullmatch(model)
        if dated is not None and dated.group(1) in self._models:
            alias = dated.group(1)
            note = f"{model!r} is priced as {alias!r} (the name without its snapshot date)"
            return self._models[alias], note
        raise MissingPriceError(f"model {model!r} is not in the price table", model=model)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceTable):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable-free but compared by content

    def __repr__(self) -> str:
        as_of = f" as of {self.as_of}" if self.as_of else ""
        return f"<PriceTable of {len(self._models)} models{as_of}>"


# --- The result ------------------------------------------------------------------------------


def _frozen_mapping(value: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    return MappingProxyType(dict(value))


def _mapping_field() -> Any:
    return attrs.field(converter=_frozen_mapping, hash=False, repr=lambda v: repr(dict(v)))


def _merge_notes(first: tuple[str, ...], second: Iterable[str]) -> tuple[str, ...]:
    notes = dict.fromkeys(first)
    notes.update(dict.fromkeys(second))
    return tuple(notes)


@attrs.frozen(kw_only=True)
class Cost:
    """What one response (or, added up, many) cost, in USD, exactly.

    ``total`` is the sum of ``by_model`` and also of ``by_category``. Costs add with ``+``
    (notes are kept once each, in order of first appearance).

    Attributes:
        total: The cost of everything priced.
        by_model: Cost per billed model, in order of first appearance; server-tool fees are
            under the executor model.
        by_category: Cost per category, with every key of :data:`CATEGORIES`: ``input``,
            ``output``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h`` and
            ``server_tools``.
        unpriced: What had no price and is not in ``total``, such as code-execution container
            hours or entries of an unknown iteration type. When it is not empty, ``total`` is
            less than the bill.
        assumptions: The assumptions the figures rest on, such as cache creation tokens
            without a 5m/1h split priced as 5-minute writes, or priority tier priced at list
            rates.

    """

    total: Decimal
    by_model: Mapping[str, Decimal] = _mapping_field()
    by_category: Mapping[str, Decimal] = _mapping_field()
    unpriced: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    @classmethod
    def zero(cls) -> Cost:
        """Return the cost of nothing: every figure 0, no note."""
        return cls(total=Decimal(0), by_model={}, by_category=dict.fromkeys(CATEGORIES, Decimal(0)))

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        with decimal.localcontext(_EXACT):
            by_model = dict(self.by_model)
            for name, amount in other.by_model.items():
                by_model[name] = by_model.get(name, Decimal(0)) + amount
            return Cost(
                total=self.total + other.total,
                by_model=by_model,
                by_category={
                    key: self.by_category.get(key, Decimal(0)) + other.by_category.get(key, 0)
                    for key in CATEGORIES
                },
                unpriced=_merge_notes(self.unpriced, other.unpriced),
                assumptions=_merge_notes(self.assumptions, other.assumptions),
            )

    def as_dict(self) -> dict[str, Any]:
        """Return the cost as plain data, amounts as decimal strings (JSON-ready, exact)."""
        return {
            "total": f"{self.total:f}",
            "by_model": {name: f"{amount:f}" for name, amount in self.by_model.items()},
            "by_category": {key: f"{amount:f}" for key, amount in self.by_category.items()},
            "unpriced": list(self.unpriced),
            "assumptions": list(self.assumptions),
        }


# --- Pricing ---------------------------------------------------------------------------------


class _Bill:
    """The running figures of one response (in the exact context)."""

    def __init__(self) -> None:
        self.by_model: dict[str, Decimal] = {}
        self.by_category = dict.fromkeys(CATEGORIES, Decimal(0))
        self.unpriced: dict[str, None] = {}
        self.assumptions: dict[str, None] = {}

    def charge(self, model: str, category: str, amount: Decimal) -> None:
        self.by_model[model] = self.by_model.get(model, Decimal(0)) + amount
        self.by_category[category] += amount

    def cost(self) -> Cost:
        return Cost(
            total=sum(self.by_category.values(), Decimal(0)),
            by_model=self.by_model,
            by_category=self.by_category,
            unpriced=tuple(self.unpriced),
            assumptions=tuple(self.assumptions),
        )


def _entry_model(entry: Any, kind: str, executor: str | None) -> str | None:
    if kind == "compaction":
        return executor
    named: str | None = getattr(entry, "model", None)
    return named if named is not None else executor


_UNSPLIT = (
    "cache creation tokens no 5m/1h split covers are priced as 5-minute writes "
    "(the API's default TTL)"
)


def _cache_split(entry: BetaUsage | IterationUsage, bill: _Bill) -> tuple[int, int]:
    """Return (5-minute, 1-hour) cache write tokens; what no split covers counts as 5m."""
    writes = _figures.CacheWrites.of(entry)  # the entry's own split, as _figures reads it
    if writes.unsplit_input_tokens:
        bill.assumptions[_UNSPLIT] = None
    return (
        writes.ephemeral_5m_input_tokens + writes.unsplit_input_tokens,
        writes.ephemeral_1h_input_tokens,
    )


def _service_multiplier(usage: BetaUsage, prices: PriceTable, bill: _Bill) -> Decimal:
    tier = usage.service_tier
    if tier is None or tier == "standard":
        return Decimal(1)
    if tier == "batch":
        if prices.batch_multiplier is None:
            raise MissingPriceError("the price table has no batch_multiplier for a batch response")
        return prices.batch_multiplier
    if tier == "priority":
        bill.assumptions["service_tier 'priority' has no public price: priced at list rates"] = None
    else:
        bill.assumptions[f"service_tier {tier!r} is not known: priced at list rates"] = None
    return Decimal(1)


def _wants_fast(usage: BetaUsage, bill: _Bill) -> bool:
    speed = usage.speed
    if speed is None or speed == "standard":
        return False
    if speed == "fast":
        return True
    bill.assumptions[f"speed {speed!r} is not known: priced at standard rates"] = None
    return False


def _geo_multiplier(usage: BetaUsage, name: str, prices: _ModelPrices, bill: _Bill) -> Decimal:
    geo = usage.inference_geo
    if geo is None:
        return Decimal(1)
    multiplier = prices.inference_geo.get(geo)
    if multiplier is not None:
        return multiplier
    if geo not in _UNPRICED_GEOS:
        bill.assumptions[
            f"inference_geo {geo!r} has no multiplier for {name!r} in the table: priced without one"
        ] = None
    return Decimal(1)


def _server_tools(usage: BetaUsage, executor: str | None, prices: PriceTable, bill: _Bill) -> None:
    tools = usage.server_tool_use
    if tools is None:
        return
    counts = [
        ("web_search_requests", tools.web_search_requests),
        ("web_fetch_requests", tools.web_fetch_requests),
        *tools.unknown_fields.items(),
    ]
    for name, count in counts:
        if type(count) is not int or count <= 0:
            continue
        fee = prices._server_tools.get(name)
        if fee is not None:
            if executor is None:
                raise MissingPriceError(
                    f"{name} has a fee, but the executor model it is billed under is not known"
                )
            bill.charge(executor, "server_tools", count * fee)
        elif name == "web_fetch_requests":
            continue  # web fetch has no fee: its tokens are priced as tokens
        elif name == "web_search_requests":
            raise MissingPriceError("the price table has no fee for web_search_requests")
        elif "code_execution" in name:
            bill.unpriced[
                "code execution container hours (billed by the hour; usage does not carry them)"
            ] = None
        else:
            bill.unpriced[f"server tool count {name!r} (the table has no fee for it)"] = None


def billed_cost(usage: BetaUsage, *, model: str | None, prices: PriceTable) -> Cost:
    """Return what a response cost, by Anthropic's pricing rules and a price table.

    The rules are those of ``docs/cost.md`` ("What did it cost"): every billed entry at its
    own model's rates, prompt-length tiers per entry, fast, batch, priority and residency
    applied as the usage reports them, server-tool fees added. Tokens the table cannot price
    raise an error; what no table can price (container hours, unknown iteration types) is
    listed in :attr:`Cost.unpriced`; every assumption made is in :attr:`Cost.assumptions`.

    Args:
        usage: A final usage (a failed stream's partial usage prices what it counted, but
            its ``output_tokens`` may be a placeholder).
        model: The executor model, the one ``message_start`` names
            (:attr:`UsageAccumulator.model`); entries that name their own model use theirs.
        prices: The price table.

    Returns:
        The cost, exact.

    Raises:
        MissingPriceError: The table has no price for something the usage needs: a model
            (an unknown model is never priced at $0), or the executor model is None where
            one is needed; a rate of the model that tokens need (a cache rate, fast rates);
            the batch multiplier; the web search fee.

    >>> from usagetally import converter
    >>> table = PriceTable.from_dict({"models": {
    ...     "claude-sonnet-4-6": {"input": "3", "output": "15"},
    ...     "claude-opus-4-7": {"input": "5", "output": "25"}}})
    >>> usage = converter.structure({"input_tokens": 1760, "output_tokens": 531,
    ...     "iterations": [
    ...         {"type": "message", "input_tokens": 412, "output_tokens": 89},
    ...         {"type": "advisor_message", "model": "claude-opus-4-7",
    ...          "input_tokens": 823, "output_tokens": 1612},
    ...         {"type": "message", "input_tokens": 1348, "output_tokens": 442}]},
    ...     BetaUsage)
    >>> cost = billed_cost(usage, model="claude-sonnet-4-6", prices=table)
    >>> dict(cost.by_model)
    {'claude-sonnet-4-6': Decimal('0.013245'), 'claude-opus-4-7': Decimal('0.044415')}
    >>> cost.total
    Decimal('0.057660')

    """
    check_argument_type(usage, BetaUsage, "billed_cost(usage)")
    check_argument_type(prices, PriceTable, "billed_cost(prices)")
    bill = _Bill()
    with decimal.localcontext(_EXACT):
        service = _service_multiplier(usage, prices, bill)
        fast = _wants_fast(usage, bill)
        for entry in _figures.billed_entries(usage):
            kind = "message" if isinstance(entry, BetaUsage) else entry.type
            if kind not in ITERATION_TYPES:
                bill.unpriced[
                    f"iteration entries of type {kind!r} (their tokens have no known price)"
                ] = None
                continue
            name = _entry_model(entry, kind, model)
            if name is None:
                raise MissingPriceError(
                    f"a {kind!r} entry is billed at the executor model, which is not known "
                    "(pass model=)"
                )
            model_prices, alias = prices._lookup(name)
            if alias is not None:
                bill.assumptions[alias] = None
            card = model_prices.standard
            if fast and kind in _EXECUTOR_TYPES:
                if model_prices.fast is None:
                    raise MissingPriceError(
                        f"model {name!r} has no fast rates in the price table", model=name
                    )
                card = model_prices.fast
            counts = _figures.TokenCounts.of(entry)
            rates = card.for_prompt(counts.input_side)
            five, hour = _cache_split(entry, bill)
            multiplier = service * _geo_multiplier(usage, name, model_prices, bill)
            for category, tokens in (
                ("input", counts.input_tokens),
                ("output", counts.output_tokens),
                ("cache_read", counts.cache_read_input_tokens),
                ("cache_write_5m", five),
                ("cache_write_1h", hour),
            ):
                if not tokens:
                    continue
                rate: Decimal | None = getattr(rates, category)
                if rate is None:
                    raise MissingPriceError(
                        f"model {name!r} has no {category} rate in the price table", model=name
                    )
                bill.charge(name, category, (tokens * rate).scaleb(_MILLION_EXPONENT) * multiplier)
        _server_tools(usage, model, prices, bill)
        return bill.cost()
