"""Figures derived from a final usage, which no SDK gives, and totals across requests.

Rules (docs/semantics.md, section 3), by the entries ``iterations`` holds:

- Compaction and server-tool loops: the top level is the sum over ``message`` entries;
  ``compaction`` entries are outside it but billed. Billed = the sum over all entries.
- Advisor: ``advisor_message`` entries are billed at the advisor model's rates and never in
  the top level. Two documented rules for the top level are accepted: every field the sum over
  ``message`` entries (newer), or output the sum and input and cache read the first
  ``message`` entry (older).
- Fallback: the top level is the serving attempt, the last ``fallback_message`` entry.
  Declined ``message`` attempts before it that produced no output cost nothing, so they are
  left out of billed totals (one that produced output is kept: it was sampled).
- Entries of an unknown type are counted in billed totals with the counts they carry; when
  one is present the top level is not checked (its rule is unknown).
- Cache writes by TTL: each billed entry's own ``cache_creation`` split (the top-level split
  without iterations); tokens no split covers are reported as unsplit, never guessed.
- The context window is the last ``message`` (or ``fallback_message``) entry's input, cache
  read and cache creation; never a ``compaction`` or ``advisor_message`` entry.

Adding usage across requests (:class:`UsageTotals`) is a different operation from merging
within a stream: it adds billed totals, per model, and with a price table each request's
cost, priced as it is added (tiers, speed, batch and residency belong to one request and
cannot be applied to summed counts). This module is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import MissingPriceError, check_argument_type
from ._models import BetaUsage, IterationUsage
from ._wire import ITERATION_TYPES, serving_index

if TYPE_CHECKING:
    from . import _cost

__all__ = [
    "CacheWrites",
    "TokenCounts",
    "UsageTotals",
    "billed_entries",
    "billed_totals",
    "cache_writes",
    "context_window_tokens",
    "totals_by_model",
    "totals_by_type",
]


@attrs.frozen(kw_only=True)
class TokenCounts:
    """Four token counts, added field by field.

    Attributes:
        input_tokens: Input tokens not read from or written to the cache.
        output_tokens: Output tokens.
        cache_creation_input_tokens: Tokens written to the prompt cache.
        cache_read_input_tokens: Tokens read from the prompt cache.

    >>> TokenCounts(input_tokens=3, output_tokens=1) + TokenCounts(input_tokens=2)
    TokenCounts(input_tokens=5, output_tokens=1, cache_creation_input_tokens=0, \
cache_read_input_tokens=0)

    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def of(cls, item: BetaUsage | IterationUsage) -> TokenCounts:
        """Return the counts of a usage or an iteration entry (absent counts are 0).

        Args:
            item: A :class:`BetaUsage` or one of its iteration entries.

        Returns:
            Its four counts.

        """
        return cls(
            input_tokens=item.input_tokens or 0,
            output_tokens=item.output_tokens or 0,
            cache_creation_input_tokens=item.cache_creation_input_tokens or 0,
            cache_read_input_tokens=item.cache_read_input_tokens or 0,
        )

    @property
    def input_side(self) -> int:
        """All input tokens: uncached input, cache reads and cache writes."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total_tokens(self) -> int:
        """All tokens: :attr:`input_side` plus output."""
        return self.input_side + self.output_tokens

    def __add__(self, other: TokenCounts) -> TokenCounts:
        if not isinstance(other, TokenCounts):
            return NotImplemented
        return TokenCounts(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=(
                self.cache_creation_input_tokens + other.cache_creation_input_tokens
            ),
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


def _sum(items: Iterable[BetaUsage | IterationUsage]) -> TokenCounts:
    return _sum_counts(TokenCounts.of(item) for item in items)


def _declined(entry: IterationUsage) -> bool:
    role = ITERATION_TYPES.get(entry.type)
    return role is not None and role.declinable and not entry.output_tokens


def _billed_entries(iterations: Sequence[IterationUsage]) -> list[IterationUsage]:
    # Before the serving attempt (_wire.serving_index), a declined attempt costs nothing.
    serving = serving_index(iterations)
    if serving is None:
        return list(iterations)
    return [entry for i, entry in enumerate(iterations) if not (i < serving and _declined(entry))]


def billed_entries(usage: BetaUsage) -> list[BetaUsage | IterationUsage]:
    """Return the entries a response is billed for, by the rules of its iterations.

    This is the contract between billed totals and cost (``_cost.py`` prices exactly these
    entries, so tokens and dollars never disagree): without iterations, the usage itself;
    with them, every entry (compaction, advisor calls and entries of unknown type included)
    except, before a ``fallback_message``, declined ``message`` attempts that produced no
    output.

    Args:
        usage: A final usage.

    Returns:
        ``[usage]`` without iterations, else the billed iteration entries in order.

    """
    if not usage.iterations:
        return [usage]
    return list(_billed_entries(usage.iterations))


def billed_totals(usage: BetaUsage) -> TokenCounts:
    """Return the tokens billed for a response, by the rules of its iterations.

    Without iterations it is the top level. With them it is the sum over every entry
    (compaction and advisor calls included), except, after a fallback, declined attempts
    that produced no output, which cost nothing.

    Args:
        usage: A final usage.

    Returns:
        The billed counts (of every model together; see :func:`totals_by_model`).

    >>> from usagetally import converter
    >>> entry = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    >>> usage = converter.structure({"input_tokens": 23000, "output_tokens": 1000,
    ...     "iterations": [
    ...         {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500, **entry},
    ...         {"type": "message", "input_tokens": 23000, "output_tokens": 1000, **entry}]},
    ...     BetaUsage)
    >>> billed_totals(usage).input_tokens, billed_totals(usage).output_tokens
    (203000, 4500)

    """
    check_argument_type(usage, BetaUsage, "billed_totals(usage)")
    if not usage.iterations:
        return TokenCounts.of(usage)
    return _sum(_billed_entries(usage.iterations))


def context_window_tokens(usage: BetaUsage) -> int:
    """Return the size of the context window after the response's last sampling step.

    It is the input, cache read and cache creation of the last ``message`` or
    ``fallback_message`` entry, or of the top level when there are no iterations.

    Args:
        usage: A final usage.

    Returns:
        The number of tokens in the context window.

    """
    check_argument_type(usage, BetaUsage, "context_window_tokens(usage)")
    for entry in reversed(usage.iterations or ()):
        role = ITERATION_TYPES.get(entry.type)
        if role is not None and role.context_window:
            return TokenCounts.of(entry).input_side
    return TokenCounts.of(usage).input_side


def totals_by_model(usage: BetaUsage, *, model: str | None = None) -> dict[str | None, TokenCounts]:
    """Return the billed tokens per model.

    Entries that name their model (advisor, fallback) are counted under it; the others
    under ``model``, the executor model (from ``message_start``; None if not known).

    Args:
        usage: A final usage.
        model: The model of entries that name none, and of the top level without iterations.

    Returns:
        Billed counts keyed by model, in order of first appearance.

    """
    check_argument_type(usage, BetaUsage, "totals_by_model(usage)")
    if not usage.iterations:
        return {model: TokenCounts.of(usage)}
    totals: dict[str | None, TokenCounts] = {}
    for entry in _billed_entries(usage.iterations):
        named: str | None = getattr(entry, "model", None)
        key = named if named is not None else model
        totals[key] = totals.get(key, TokenCounts()) + TokenCounts.of(entry)
    return totals


def totals_by_type(usage: BetaUsage) -> dict[str, TokenCounts]:
    """Return the tokens per iteration type, over every entry as sent.

    Without iterations, the top level is one ``"message"`` step.

    Args:
        usage: A final usage.

    Returns:
        Counts keyed by iteration type, in order of first appearance.

    """
    check_argument_type(usage, BetaUsage, "totals_by_type(usage)")
    if not usage.iterations:
        return {"message": TokenCounts.of(usage)}
    totals: dict[str, TokenCounts] = {}
    for entry in usage.iterations:
        totals[entry.type] = totals.get(entry.type, TokenCounts()) + TokenCounts.of(entry)
    return totals


@attrs.frozen(kw_only=True)
class CacheWrites:
    """Tokens written to the prompt cache, by time to live.

    Attributes:
        ephemeral_5m_input_tokens: Written with the 5-minute TTL, by the entry's own split.
        ephemeral_1h_input_tokens: Written with the 1-hour TTL, by the entry's own split.
        unsplit_input_tokens: Written, but not covered by any split: the entry had none, or
            a ``message_delta`` raised ``cache_creation_input_tokens`` after the split of
            ``message_start`` (the API never re-sends it). Their TTL is not known; pricing
            them takes a stated assumption.

    """

    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0
    unsplit_input_tokens: int = 0

    @classmethod
    def of(cls, item: BetaUsage | IterationUsage) -> CacheWrites:
        """Return the cache writes of one usage or iteration entry, by its own split.

        Args:
            item: A :class:`BetaUsage` (its top level only) or one iteration entry.

        Returns:
            The split as sent, and what it leaves uncovered. A split that claims more than
            ``cache_creation_input_tokens`` cannot describe it (it was left behind by a
            delta that lowered the total): then every token is unsplit.

        """
        total = item.cache_creation_input_tokens or 0
        split = item.cache_creation
        if split is None:
            return cls(unsplit_input_tokens=total)
        five, hour = split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens
        if five + hour > total:
            return cls(unsplit_input_tokens=total)
        return cls(
            ephemeral_5m_input_tokens=five,
            ephemeral_1h_input_tokens=hour,
            unsplit_input_tokens=total - five - hour,
        )

    def __add__(self, other: CacheWrites) -> CacheWrites:
        if not isinstance(other, CacheWrites):
            return NotImplemented
        return CacheWrites(
            ephemeral_5m_input_tokens=self.ephemeral_5m_input_tokens
            + other.ephemeral_5m_input_tokens,
            ephemeral_1h_input_tokens=self.ephemeral_1h_input_tokens
            + other.ephemeral_1h_input_tokens,
            unsplit_input_tokens=self.unsplit_input_tokens + other.unsplit_input_tokens,
        )


def cache_writes(usage: BetaUsage) -> CacheWrites:
    """Return the billed cache writes of a response, by time to live.

    Without iterations it is the top level's split. With them it is the sum of each billed
    entry's own split (the entries billed by :func:`billed_totals`); the top-level split is
    not used then, as it describes only ``message_start``.

    Args:
        usage: A final usage.

    Returns:
        The 5-minute and 1-hour writes, and the tokens no split covers.

    >>> from usagetally import converter
    >>> usage = converter.structure({"input_tokens": 10, "output_tokens": 5,
    ...     "cache_creation_input_tokens": 300,
    ...     "cache_creation": {"ephemeral_5m_input_tokens": 100,
    ...                        "ephemeral_1h_input_tokens": 0}}, BetaUsage)
    >>> cache_writes(usage)
    CacheWrites(ephemeral_5m_input_tokens=100, ephemeral_1h_input_tokens=0, \
unsplit_input_tokens=200)

    """
    check_argument_type(usage, BetaUsage, "cache_writes(usage)")
    if not usage.iterations:
        return CacheWrites.of(usage)
    total = CacheWrites()
    for entry in _billed_entries(usage.iterations):
        total = total + CacheWrites.of(entry)
    return total


class UsageTotals:
    """Billed tokens added up across requests, per model, and their cost given prices.

    Merging within one stream replaces cumulative counts; adding across requests sums the
    billed totals of each final usage. This class is that second operation. It is not
    thread-safe: add to it from one task or thread (``UsageWorker`` does).

    With ``prices``, each request is priced by :func:`usagetally.billed_cost` as it is
    added, and :attr:`cost` is the sum. A request the table cannot price (a model it does not
    have, a missing rate) still adds its tokens; it is counted in :attr:`unpriced_requests`
    and the reason is listed in ``cost.unpriced``, so the total never silently leaves it out.

    >>> from usagetally import converter
    >>> totals = UsageTotals()
    >>> totals.add(converter.structure({"input_tokens": 5, "output_tokens": 2}, BetaUsage),
    ...            model="claude-sonnet-4-5")
    >>> totals.add(converter.structure({"input_tokens": 1, "output_tokens": 1}, BetaUsage),
    ...            model="claude-sonnet-4-5")
    >>> totals.total.input_tokens, totals.requests
    (6, 2)

    Args:
        prices: The price table to price each request with; None to count tokens only.

    """

    def __init__(self, *, prices: _cost.PriceTable | None = None) -> None:
        self._by_model: dict[str | None, TokenCounts] = {}
        self._requests = 0
        self._incomplete = 0
        self._server_tools: dict[str, int] = {}
        from . import _cost  # _cost imports this module: each reads the other's at call time

        self._prices = prices
        self._cost = _cost.Cost.zero() if prices is not None else None
        self._unpriced_requests = 0

    def add(
        self, usage: BetaUsage, *, model: str | None = None, complete: bool = True
    ) -> _cost.Cost | None:
        """Add the billed totals of one request, and its cost when the totals have prices.

        Args:
            usage: The request's final (or partial) usage.
            model: The executor model of the request (entries that name a model count
                under theirs).
            complete: False for the partial usage of a stream that failed; it is added and
                counted in :attr:`incomplete`.

        Returns:
            The request's cost; None without prices, or when the table cannot price it
            (then it is counted in :attr:`unpriced_requests`).

        """
        from . import _cost

        check_argument_type(usage, BetaUsage, "UsageTotals.add(usage)")
        cost = None
        if self._prices is not None:
            try:
                cost = _cost.billed_cost(usage, model=model, prices=self._prices)
            except MissingPriceError as exc:
                self._unpriced_requests += 1
                note = f"requests the table could not price: {exc}"
                self._cost = self._cost_plus(attrs.evolve(_cost.Cost.zero(), unpriced=(note,)))
            else:
                self._cost = self._cost_plus(cost)
        for key, counts in totals_by_model(usage, model=model).items():
            self._by_model[key] = self._by_model.get(key, TokenCounts()) + counts
        tools = usage.server_tool_use
        if tools is not None:
            for name, value in (
                ("web_search_requests", tools.web_search_requests),
                ("web_fetch_requests", tools.web_fetch_requests),
                *tools.unknown_fields.items(),
            ):
                if type(value) is int:
                    self._server_tools[name] = self._server_tools.get(name, 0) + value
        self._requests += 1
        if not complete:
            self._incomplete += 1
        return cost

    def _cost_plus(self, cost: _cost.Cost) -> _cost.Cost:
        from . import _cost

        return (self._cost if self._cost is not None else _cost.Cost.zero()) + cost

    def merge(self, other: UsageTotals) -> None:
        """Add everything another :class:`UsageTotals` holds into this one.

        Args:
            other: Totals to add (left unchanged).

        """
        check_argument_type(other, UsageTotals, "UsageTotals.merge(other)")
        for key, counts in other._by_model.items():
            self._by_model[key] = self._by_model.get(key, TokenCounts()) + counts
        for name, value in other._server_tools.items():
            self._server_tools[name] = self._server_tools.get(name, 0) + value
        self._requests += other._requests
        self._incomplete += other._incomplete
        if other._cost is not None:
            self._cost = self._cost_plus(other._cost)
            self._unpriced_requests += other._unpriced_requests

    @property
    def by_model(self) -> dict[str | None, TokenCounts]:
        """Billed counts per model (a copy)."""
        return dict(self._by_model)

    @property
    def total(self) -> TokenCounts:
        """Billed counts of every model together."""
        return _sum_counts(self._by_model.values())

    @property
    def server_tool_requests(self) -> dict[str, int]:
        """Server-tool requests per kind, such as ``web_search_requests`` (a copy)."""
        return dict(self._server_tools)

    @property
    def requests(self) -> int:
        """How many requests were added."""
        return self._requests

    @property
    def cost(self) -> _cost.Cost | None:
        """The cost of every priced request, added up; None when the totals have no prices.

        Requests the table could not price are not in it; ``cost.unpriced`` names why.
        """
        return self._cost

    @property
    def unpriced_requests(self) -> int:
        """How many requests the price table could not price (their tokens are counted)."""
        return self._unpriced_requests

    @property
    def incomplete(self) -> int:
        """How many of them were added as incomplete (partial usage of a failed stream)."""
        return self._incomplete

    def __repr__(self) -> str:
        cost = f", cost={self._cost.total!r}" if self._cost is not None else ""
        return (
            f"UsageTotals(requests={self._requests}, incomplete={self._incomplete}, "
            f"by_model={self._by_model!r}{cost})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the totals as plain data (JSON-ready).

        With prices, ``cost`` (amounts as decimal strings) and ``unpriced_requests`` too.
        """
        data: dict[str, Any] = {
            "requests": self._requests,
            "incomplete": self._incomplete,
            "by_model": {str(k): attrs.asdict(v) for k, v in self._by_model.items()},
            "server_tool_requests": dict(self._server_tools),
        }
        if self._cost is not None:
            data["cost"] = self._cost.as_dict()
            data["unpriced_requests"] = self._unpriced_requests
        return data


def _sum_counts(items: Iterable[TokenCounts]) -> TokenCounts:
    total = TokenCounts()
    for item in items:
        total = total + item
    return total
