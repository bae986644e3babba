"""The consistency checks of a stream's usage, as pure functions returning findings.

Rules (docs/semantics.md, section 4, rules 3 and 5; section 3 for the top level):

- A check never changes the usage and never raises: it returns :class:`Finding` values
  (a stable code and a message). What to do with them (collect and log them, raise
  ``InconsistentUsageError`` under the ``"strict"`` policy, or not check at all) is the
  accumulator's policy, applied in ``_accumulator.py``; the codes are documented on
  :class:`~usagetally.UsageDiagnostic`.
- On each ``message_delta`` (:func:`check_delta`): entries already reported do not change
  (``iteration_changed``) or disappear (``iteration_removed``), and a cumulative count does
  not go down from one delta to a later one (``count_decreased``).
- On the final usage (:func:`check_final`): the TTL split against
  ``cache_creation_input_tokens`` (``cache_split_stale``, a note, or
  ``cache_split_mismatch``), then the top level against the iterations, by the rule that
  fits their types (``top_level_mismatch``; the entries that make up the top level are
  ``_wire.top_level_entries``).
- Pure: no I/O, no logging, no state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from ._converter import default_converter
from ._models import BetaMessageDeltaUsage, BetaUsage, IterationUsage
from ._wire import COUNT_FIELDS, ITERATION_TYPES, serving_index, top_level_entries

if TYPE_CHECKING:
    from ._figures import TokenCounts

__all__ = ["Finding", "check_delta", "check_final", "check_top_level", "cumulative_counts"]


@attrs.frozen
class Finding:
    """One problem a check found: its code (see ``UsageDiagnostic``) and a message."""

    code: str
    message: str


def cumulative_counts(delta: BetaMessageDeltaUsage) -> dict[str, int]:
    """Return the counts a delta carries that a later delta may not decrease.

    Args:
        delta: A ``message_delta``'s usage.

    Returns:
        The four counts and the server-tool request counts it carries, by name (the
        server-tool ones as ``server_tool_use.<name>``).

    """
    counts: dict[str, int] = {}
    for name in COUNT_FIELDS:
        value = getattr(delta, name)
        if value is not None:
            counts[name] = value
    tools = delta.server_tool_use
    if tools is not None:
        for name in ("web_search_requests", "web_fetch_requests"):
            value = getattr(tools, name)
            if value is not None:
                counts[f"server_tool_use.{name}"] = value
    return counts


def check_delta(
    before: BetaUsage, delta: BetaMessageDeltaUsage, counts: Mapping[str, int]
) -> tuple[list[Finding], dict[str, int]]:
    """Check one ``message_delta`` against what was reported before it.

    Args:
        before: The usage accumulated before the delta.
        delta: The delta's usage.
        counts: The cumulative counts of the earlier deltas (:func:`cumulative_counts`,
            updated with each delta's).

    Returns:
        The findings, in order, and this delta's cumulative counts.

    """
    findings: list[Finding] = []
    old, new = before.iterations, delta.iterations
    if old and new is not None:
        for i, (was, now) in enumerate(zip(old, new, strict=False)):
            if was != now:
                findings.append(
                    Finding(
                        "iteration_changed",
                        f"iterations[{i}] was reported as "
                        f"{default_converter().unstructure(was)} and is "
                        f"now {default_converter().unstructure(now)}",
                    )
                )
        if len(new) < len(old):
            findings.append(
                Finding(
                    "iteration_removed",
                    f"iterations had {len(old)} entries and now has {len(new)}",
                )
            )
    current = cumulative_counts(delta)
    for name, value in current.items():
        previous = counts.get(name)
        if previous is not None and value < previous:
            findings.append(
                Finding(
                    "count_decreased",
                    f"{name} went down from {previous} to {value} between message_delta events",
                )
            )
    return findings, current


def _split_finding(usage: BetaUsage, at_start: int | None) -> Finding | None:
    """Judge the cache TTL split against ``cache_creation_input_tokens``.

    Returns None when it adds up (or there is none); ``cache_split_stale`` when it added up to
    the total of ``message_start`` and a delta changed the total since (normal: the split is
    never re-sent); ``cache_split_mismatch`` otherwise (it never added up).
    """
    split = usage.cache_creation
    if split is None:
        return None
    covered = split.ephemeral_5m_input_tokens + split.ephemeral_1h_input_tokens
    total = usage.cache_creation_input_tokens or 0
    if covered == total:
        return None
    parts = (
        f"cache_creation splits {split.ephemeral_5m_input_tokens} (5m) + "
        f"{split.ephemeral_1h_input_tokens} (1h) = {covered}"
    )
    if covered == (at_start or 0):
        change = (
            f"so {total - covered} tokens are not in the split"
            if total > covered
            else f"which the split exceeds by {covered - total} tokens"
        )
        return Finding(
            "cache_split_stale",
            f"{parts}, as sent on message_start; a message_delta changed "
            f"cache_creation_input_tokens to {total}, {change} (the API never re-sends it)",
        )
    return Finding(
        "cache_split_mismatch",
        f"{parts}, which does not add up to cache_creation_input_tokens {total}",
    )


def _sum(entries: Sequence[IterationUsage]) -> TokenCounts:
    from ._figures import TokenCounts  # on first use: not part of `import usagetally`

    return sum((TokenCounts.of(e) for e in entries), TokenCounts())


def _top_level_sets(iterations: Sequence[IterationUsage]) -> list[tuple[str, TokenCounts]]:
    """List the top levels the documented rules allow, each with the rule's name."""
    from ._figures import TokenCounts

    executors = top_level_entries(iterations)
    if serving_index(iterations) is not None:
        return [("fallback rule: the last fallback_message entry", _sum(executors))]
    summed = _sum(executors)
    if any(e.type == "advisor_message" for e in iterations):
        first = TokenCounts.of(executors[0]) if executors else TokenCounts()
        older = attrs.evolve(
            summed,
            input_tokens=first.input_tokens,
            cache_read_input_tokens=first.cache_read_input_tokens,
        )
        return [
            ("advisor rule: the sum over message entries", summed),
            ("older advisor rule: input and cache read of the first message entry", older),
            (
                "older advisor rule, cache creation of the first message entry",
                attrs.evolve(older, cache_creation_input_tokens=first.cache_creation_input_tokens),
            ),
        ]
    return [("the sum over message entries", summed)]


def check_top_level(usage: BetaUsage) -> list[str]:
    """Check the top-level counts against the iterations, by the rule that fits the entries.

    Args:
        usage: A final usage.

    Returns:
        An empty list when they agree (or cannot be checked: no iterations, or an entry of
        unknown type), else one message naming the fields that differ.

    """
    iterations = usage.iterations
    if not iterations or any(e.type not in ITERATION_TYPES for e in iterations):
        return []
    from ._figures import TokenCounts

    top = TokenCounts.of(usage)
    candidates = _top_level_sets(iterations)
    if any(top == expected for _, expected in candidates):
        return []
    rule, expected = candidates[0]
    diffs = [
        f"{name} {getattr(top, name)} (expected {getattr(expected, name)})"
        for name in COUNT_FIELDS
        if getattr(top, name) != getattr(expected, name)
    ]
    return [f"top level disagrees with iterations by {rule}: " + ", ".join(diffs)]


def check_final(usage: BetaUsage, start_cache_creation: int | None) -> list[Finding]:
    """Check a final usage: the cache split, then the top level.

    Args:
        usage: The final usage.
        start_cache_creation: ``cache_creation_input_tokens`` as ``message_start`` sent it.

    Returns:
        The findings, in order.

    """
    findings: list[Finding] = []
    split = _split_finding(usage, start_cache_creation)
    if split is not None:
        findings.append(split)
    findings.extend(Finding("top_level_mismatch", message) for message in check_top_level(usage))
    return findings
