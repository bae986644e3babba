"""The wire facts, written once: what the other modules read instead of restating them.

What each fact means is in docs/semantics.md (sections 2 to 4); docs/internals.md lists who
reads what, and the checklist for adding a field or an iteration type. Rules:

- One owner per fact. The field names and kinds of each model are the attrs fields of
  ``_models.py`` (read them with :func:`attrs.fields`, never copy them); the facts that are
  not in the models (event names, the role of each iteration type, the SDK's class names) are
  here.
- Pure: this module imports only ``_models`` and attrs, so the core can read it.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final, Literal

import attrs

from . import _models
from ._models import BetaMessageDeltaUsage, IterationUsage

__all__ = [
    "CHILD_SHAPES",
    "COUNT_FIELDS",
    "DELTA_USAGE_FIELDS",
    "ERROR_EVENT",
    "FALLBACK_STATUS_CLASSES",
    "ITERATION_CLASSES",
    "ITERATION_TYPES",
    "NO_USAGE_EVENTS",
    "SDK_CLASSES",
    "STOP_EVENT",
    "UNCHECKED_EVENTS",
    "UNTYPED_EVENT",
    "USAGE_EVENTS",
    "IterationType",
    "model_fields",
    "serving_index",
    "top_level_entries",
]

# --- Events (docs/semantics.md, section 2) -------------------------------------------------

#: The events whose JSON carries usage: ``message_start`` (``message.usage``, the starting
#: snapshot) and ``message_delta`` (``usage``, the fields it overwrites).
USAGE_EVENTS: Final = ("message_start", "message_delta")
#: The events the API sends that never carry usage (their JSON need not be decoded), the
#: most frequent first (the decoder's scanner counts them in this order, and reorders a
#: copy of its own when a stream's mix differs).
NO_USAGE_EVENTS: Final = (
    "content_block_delta",
    "ping",
    "content_block_start",
    "content_block_stop",
)
#: The event that ends a complete response.
STOP_EVENT: Final = "message_stop"
#: The event that reports a failure mid-stream (``{"type":"error","error":{...}}``); an
#: event of this name is an error whatever its data (docs/semantics.md, rule 5).
ERROR_EVENT: Final = "error"
#: The type of an event without an ``event:`` line (the SSE default): its data's ``type``
#: says what it is.
UNTYPED_EVENT: Final = "message"
#: Events the API sends whose data is not in the compact ``{"type":"NAME"`` form
#: (``{"type": "ping"}``): passed over by name, unread, as the SDK drops them.
UNCHECKED_EVENTS: Final = ("ping",)

# --- Counts ----------------------------------------------------------------------------------

#: The four token counts every usage and iteration entry has, in the wire's order: what
#: billed totals add up (``TokenCounts``), what the top level is checked on, what a later
#: delta may not decrease.
COUNT_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def model_fields(cls: type) -> tuple[str, ...]:
    """Return the wire field names of a model class, in order (``unknown_fields`` left out).

    Args:
        cls: A model class of ``_models.py``.

    Returns:
        Its attrs field names as the wire spells them.

    """
    return tuple(f.name for f in attrs.fields(cls) if f.name != "unknown_fields")


#: The usage fields a ``message_delta`` may carry, which the SDK copies into its snapshot.
DELTA_USAGE_FIELDS: Final = model_fields(BetaMessageDeltaUsage)

# --- Iteration types (docs/semantics.md, section 3) -----------------------------------------


@attrs.frozen(kw_only=True)
class IterationType:
    """The role of one iteration type in the top level, billing and the context window.

    Attributes:
        type: The wire ``type``.
        cls: Its model class.
        top_level: ``"sum"``: the top level sums these entries (``message``);
            ``"serving"``: after a fallback the top level is the last such entry alone
            (``fallback_message``); ``"outside"``: never in the top level, billed all the
            same (``compaction``, ``advisor_message``).
        declinable: Before the serving attempt, an entry of this type that produced no
            output is a declined attempt and is not billed (``message``).
        context_window: The last entry of such a type gives the context window.

    """

    type: str
    cls: builtins.type
    top_level: Literal["sum", "serving", "outside"]
    declinable: bool = False
    context_window: bool = False


#: Every known iteration type, by wire ``type``. Entries of another type are kept as
#: ``UnknownIterationUsage``, billed with the counts they carry, and stop the top-level check.
ITERATION_TYPES: Final[Mapping[str, IterationType]] = MappingProxyType(
    {
        t.type: t
        for t in (
            IterationType(
                type="message",
                cls=_models.BetaMessageIterationUsage,
                top_level="sum",
                declinable=True,
                context_window=True,
            ),
            IterationType(
                type="compaction", cls=_models.BetaCompactionIterationUsage, top_level="outside"
            ),
            IterationType(
                type="advisor_message",
                cls=_models.BetaAdvisorMessageIterationUsage,
                top_level="outside",
            ),
            IterationType(
                type="fallback_message",
                cls=_models.BetaFallbackMessageIterationUsage,
                top_level="serving",
                context_window=True,
            ),
        )
    }
)
#: The model class of each known iteration type.
ITERATION_CLASSES: Final[Mapping[str, type]] = MappingProxyType(
    {name: t.cls for name, t in ITERATION_TYPES.items()}
)
#: The model class of each known ``fallback_credit.status`` type.
FALLBACK_STATUS_CLASSES: Final[Mapping[str, type]] = MappingProxyType(
    {
        "redeemed": _models.BetaFallbackCreditRedeemed,
        "not_applied": _models.BetaFallbackCreditNotApplied,
    }
)
#: The shape of a nested value, by field name: a model class, or ``"iteration"`` /
#: ``"status"`` for the values discriminated by their ``type``.
CHILD_SHAPES: Final[Mapping[str, type | str]] = MappingProxyType(
    {
        "cache_creation": _models.BetaCacheCreation,
        "server_tool_use": _models.BetaServerToolUsage,
        "output_tokens_details": _models.BetaOutputTokensDetails,
        "fallback_credit": _models.BetaFallbackCreditUsage,
        "iterations": "iteration",
        "status": "status",
    }
)


def serving_index(iterations: Sequence[IterationUsage]) -> int | None:
    """Return the index of the serving attempt: the last ``"serving"`` entry, if any.

    Args:
        iterations: A usage's ``iterations``.

    Returns:
        The index of the last ``fallback_message`` entry, or None without a fallback.

    """
    for i in range(len(iterations) - 1, -1, -1):
        role = ITERATION_TYPES.get(iterations[i].type)
        if role is not None and role.top_level == "serving":
            return i
    return None


def top_level_entries(iterations: Sequence[IterationUsage]) -> list[IterationUsage]:
    """Return the entries the top level describes (by the newer rule for advisor calls).

    After a fallback, the serving attempt alone; else every ``"sum"`` entry.

    Args:
        iterations: A usage's ``iterations``.

    Returns:
        The entries, in order.

    """
    serving = serving_index(iterations)
    if serving is not None:
        return [iterations[serving]]
    return [
        e
        for e in iterations
        if (role := ITERATION_TYPES.get(e.type)) is not None and role.top_level == "sum"
    ]


# --- The anthropic SDK's class names ---------------------------------------------------------

#: The SDK's usage classes, by class name, with the model class of ours each one matches. The
#: SDK's ``Beta*`` classes have our names; four non-beta classes have other names (the
#: pytest plugin explains comparisons of these, ``testing.assert_usage`` reads them).
SDK_CLASSES: Final[Mapping[str, type]] = MappingProxyType(
    {
        **{
            cls.__name__: cls
            for cls in (
                _models.BetaUsage,
                _models.BetaMessageDeltaUsage,
                _models.BetaCacheCreation,
                _models.BetaServerToolUsage,
                _models.BetaOutputTokensDetails,
                _models.BetaFallbackCreditUsage,
                *ITERATION_CLASSES.values(),
                *FALLBACK_STATUS_CLASSES.values(),
            )
        },
        "Usage": _models.BetaUsage,
        "MessageDeltaUsage": _models.BetaMessageDeltaUsage,
        "CacheCreation": _models.BetaCacheCreation,
        "ServerToolUsage": _models.BetaServerToolUsage,
    }
)
