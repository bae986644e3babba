"""The usage types of the Anthropic Messages API (beta), as attrs classes.

Class and field names are the wire names, so a user who knows the API or the anthropic SDK
knows these classes. Rules:

- ``None`` means absent on the wire, never zero.
- Every class is frozen, keyword-only and slotted; lists become tuples.
- ``unknown_fields`` holds the fields a payload had that this version does not know, so
  they survive a round trip (lenient converter only; the strict converter refuses them).

Structuring and unstructuring live in ``_converter.py``; nothing here validates.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import attrs

__all__ = [
    "BetaAdvisorMessageIterationUsage",
    "BetaCacheCreation",
    "BetaCompactionIterationUsage",
    "BetaFallbackCreditNotApplied",
    "BetaFallbackCreditRedeemed",
    "BetaFallbackCreditUsage",
    "BetaFallbackMessageIterationUsage",
    "BetaMessageDeltaUsage",
    "BetaMessageIterationUsage",
    "BetaOutputTokensDetails",
    "BetaServerToolUsage",
    "BetaUsage",
    "FallbackCreditStatus",
    "IterationUsage",
    "UnknownFallbackCreditStatus",
    "UnknownIterationUsage",
]


_NONE_UNKNOWN: Mapping[str, Any] = MappingProxyType({})


def _unknown() -> Any:
    # One shared, read-only empty mapping: most payloads have no unknown fields.
    return attrs.field(default=_NONE_UNKNOWN, hash=False, repr=lambda v: repr(dict(v)))


def _wire_required() -> Any:
    # Required by the API's types, but left out by documented examples (iteration cache fields,
    # web_fetch_requests): the lenient converter accepts their absence (None), the strict
    # converter refuses it.
    return attrs.field(default=None, metadata={"wire_required": True})


def _as_tuple(value: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


class _Model:
    """What every usage class shares: equality, hashing and repr by field.

    They behave as the methods attrs would generate: two instances are equal when they are
    of the same class and their fields are equal (a comparison with another type is
    ``NotImplemented``); the hash is that of the class and the fields with ``hash=True``;
    the repr is ``Class(field=value, ...)`` over the fields with ``repr`` set, each by its
    ``repr`` function when it has one. attrs compiles its methods anew for each class at
    import; written once here, they make ``import usagetally`` cheaper (a benchmark in
    ``benchmarks/targets.py`` measures the import; see docs/performance.md).
    """

    __slots__ = ()
    if TYPE_CHECKING:  # set by _by_fields; not annotations at run time (get_type_hints)
        _eq_key: ClassVar[operator.attrgetter[Any]]
        _hash_key: ClassVar[operator.attrgetter[Any]]
        _repr_fields: ClassVar[tuple[tuple[str, Callable[[Any], str]], ...]]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        equal: bool = self._eq_key(self) == self._eq_key(other)
        return equal

    def __hash__(self) -> int:
        return hash((self.__class__, self._hash_key(self)))

    def __repr__(self) -> str:
        shown = (f"{name}={show(getattr(self, name))}" for name, show in self._repr_fields)
        fields = ", ".join(shown)
        return f"{self.__class__.__name__}({fields})"


_C = TypeVar("_C", bound=type[_Model])


def _by_fields(cls: _C) -> _C:
    # Gives an attrs class (frozen, made with eq=False and repr=False) _Model's keys.
    fields = attrs.fields(cast("type[attrs.AttrsInstance]", cls))
    cls._eq_key = operator.attrgetter(*(f.name for f in fields if f.eq))
    cls._hash_key = operator.attrgetter(*(f.name for f in fields if f.hash is not False and f.eq))
    cls._repr_fields = tuple(
        (f.name, f.repr if callable(f.repr) else repr) for f in fields if f.repr is not False
    )
    return cls


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaCacheCreation(_Model):
    """Prompt-cache tokens written, split by time to live.

    Attributes:
        ephemeral_5m_input_tokens: Tokens written to the 5-minute cache.
        ephemeral_1h_input_tokens: Tokens written to the 1-hour cache.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaServerToolUsage(_Model):
    """How many server-tool requests a response made.

    Attributes:
        web_search_requests: Web search requests (None only when a lenient payload left it out).
        web_fetch_requests: Web fetch requests (None only when a lenient payload left it out).
        unknown_fields: Fields of the payload this version does not know (such as counts of
            server tools added later), kept as sent.

    """

    web_search_requests: int | None = _wire_required()
    web_fetch_requests: int | None = _wire_required()
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaOutputTokensDetails(_Model):
    """Breakdown of the output tokens.

    Attributes:
        thinking_tokens: Output tokens spent on extended thinking (approximate, at most
            ``output_tokens``). Sent only on the final ``message_delta``.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    thinking_tokens: int
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaFallbackCreditRedeemed(_Model):
    """Fallback credit status: the credit was redeemed.

    Attributes:
        type: Always ``"redeemed"``.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "redeemed"
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaFallbackCreditNotApplied(_Model):
    """Fallback credit status: the credit was not applied.

    Attributes:
        type: Always ``"not_applied"``.
        reason: Why the credit was not applied.
        remove_to_redeem: What to remove from the request to redeem the credit, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "not_applied"
    reason: str
    remove_to_redeem: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple)
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class UnknownFallbackCreditStatus(_Model):
    """A fallback credit status whose ``type`` this version does not know.

    Attributes:
        type: The status type as sent.
        unknown_fields: Every other field of the payload, kept as sent.

    """

    type: str
    unknown_fields: Mapping[str, Any] = _unknown()


FallbackCreditStatus = (
    BetaFallbackCreditRedeemed | BetaFallbackCreditNotApplied | UnknownFallbackCreditStatus
)
"""The statuses of a fallback credit, discriminated by ``type``."""


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaFallbackCreditUsage(_Model):
    """What happened to the credit offered for a server-side fallback.

    Attributes:
        status: The credit's status, discriminated by its ``type``.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    status: FallbackCreditStatus
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaMessageIterationUsage(_Model):
    """Usage of one sampling step of the executor model (``type`` ``"message"``).

    In a server-tool loop each turn is one such entry and the top level is their sum. In a
    fallback, each declined attempt is one such entry.

    Attributes:
        type: Always ``"message"``.
        input_tokens: Input tokens of this step.
        output_tokens: Output tokens of this step.
        cache_creation_input_tokens: Tokens written to the prompt cache in this step (None only
            when a lenient payload left it out, as documented examples do).
        cache_read_input_tokens: Tokens read from the prompt cache in this step (idem).
        cache_creation: The TTL split of ``cache_creation_input_tokens``, if sent.
        model: The model that ran this step, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "message"
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = _wire_required()
    cache_read_input_tokens: int | None = _wire_required()
    cache_creation: BetaCacheCreation | None = None
    model: str | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaCompactionIterationUsage(_Model):
    """Usage of a compaction step (``type`` ``"compaction"``): the summarizing call itself.

    Its tokens are not in the top-level fields of :class:`BetaUsage`, but they are billed.

    Attributes:
        type: Always ``"compaction"``.
        input_tokens: Input tokens of the summarizing call.
        output_tokens: Output tokens of the summary.
        cache_creation_input_tokens: Tokens written to the prompt cache (None only when a
            lenient payload left it out, as documented examples do).
        cache_read_input_tokens: Tokens read from the prompt cache (idem).
        cache_creation: The TTL split of ``cache_creation_input_tokens``, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "compaction"
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = _wire_required()
    cache_read_input_tokens: int | None = _wire_required()
    cache_creation: BetaCacheCreation | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaAdvisorMessageIterationUsage(_Model):
    """Usage of one call to the advisor model (``type`` ``"advisor_message"``).

    Billed at the advisor model's rates and never rolled into the top-level fields.

    Attributes:
        type: Always ``"advisor_message"``.
        model: The advisor model.
        input_tokens: Input tokens of the advisor call.
        output_tokens: Output tokens of the advisor call.
        cache_creation_input_tokens: Tokens written to the prompt cache (None only when a
            lenient payload left it out, as documented examples do).
        cache_read_input_tokens: Tokens read from the prompt cache (idem).
        cache_creation: The TTL split of ``cache_creation_input_tokens``, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "advisor_message"
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = _wire_required()
    cache_read_input_tokens: int | None = _wire_required()
    cache_creation: BetaCacheCreation | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaFallbackMessageIterationUsage(_Model):
    """Usage of the attempt that served the response after a fallback (``"fallback_message"``).

    When present, the top-level fields describe only this attempt.

    Attributes:
        type: Always ``"fallback_message"``.
        model: The model that served the response.
        input_tokens: Input tokens of the serving attempt.
        output_tokens: Output tokens of the serving attempt.
        cache_creation_input_tokens: Tokens written to the prompt cache (None only when a
            lenient payload left it out, as documented examples do).
        cache_read_input_tokens: Tokens read from the prompt cache (idem).
        cache_creation: The TTL split of ``cache_creation_input_tokens``, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    type: str = "fallback_message"
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = _wire_required()
    cache_read_input_tokens: int | None = _wire_required()
    cache_creation: BetaCacheCreation | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class UnknownIterationUsage(_Model):
    """An iteration entry whose ``type`` this version does not know.

    The counts every iteration type has so far are read when present (and checked like any
    count), so totals can still use them; everything else is kept in ``unknown_fields``.

    Attributes:
        type: The iteration type as sent.
        input_tokens: Input tokens, if sent.
        output_tokens: Output tokens, if sent.
        cache_creation_input_tokens: Tokens written to the prompt cache, if sent.
        cache_read_input_tokens: Tokens read from the prompt cache, if sent.
        cache_creation: The TTL split of ``cache_creation_input_tokens``, if sent.
        model: The model, if sent.
        unknown_fields: Every other field of the payload, kept as sent.

    """

    type: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: BetaCacheCreation | None = None
    model: str | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


IterationUsage = (
    BetaMessageIterationUsage
    | BetaCompactionIterationUsage
    | BetaAdvisorMessageIterationUsage
    | BetaFallbackMessageIterationUsage
    | UnknownIterationUsage
)
"""One entry of ``iterations``, discriminated by ``type``."""


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaUsage(_Model):
    """The usage of one Messages API response (``message.usage``).

    On a stream, ``message_start`` carries a full ``BetaUsage`` whose ``output_tokens`` is a
    placeholder; each ``message_delta`` then overwrites the fields it carries.

    Attributes:
        input_tokens: Input tokens not read from or written to the cache.
        output_tokens: Output tokens.
        cache_creation_input_tokens: Tokens written to the prompt cache.
        cache_read_input_tokens: Tokens read from the prompt cache.
        cache_creation: The TTL split of ``cache_creation_input_tokens``.
        server_tool_use: Counts of server-tool requests.
        service_tier: ``"standard"``, ``"priority"`` or ``"batch"``.
        speed: ``"standard"`` or ``"fast"``.
        inference_geo: The geographic region where inference ran.
        iterations: Per-iteration breakdown (compaction, tool loops, advisor, fallback).
        output_tokens_details: Breakdown of the output tokens (thinking).
        fallback_credit: What happened to the credit offered for a fallback.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: BetaCacheCreation | None = None
    server_tool_use: BetaServerToolUsage | None = None
    service_tier: str | None = None
    speed: str | None = None
    inference_geo: str | None = None
    iterations: tuple[IterationUsage, ...] | None = attrs.field(default=None, converter=_as_tuple)
    output_tokens_details: BetaOutputTokensDetails | None = None
    fallback_credit: BetaFallbackCreditUsage | None = None
    unknown_fields: Mapping[str, Any] = _unknown()


@_by_fields
@attrs.frozen(kw_only=True, eq=False, repr=False)
class BetaMessageDeltaUsage(_Model):
    """The usage carried by a ``message_delta`` event.

    Its counts are cumulative for the whole response so far: a later value replaces an
    earlier one. Absent fields keep the value they had. It never carries ``cache_creation``,
    ``service_tier``, ``speed`` or ``inference_geo``.

    Attributes:
        output_tokens: Output tokens so far.
        input_tokens: Input tokens so far, if sent.
        cache_creation_input_tokens: Tokens written to the prompt cache so far, if sent.
        cache_read_input_tokens: Tokens read from the prompt cache so far, if sent.
        server_tool_use: Counts of server-tool requests so far, if sent.
        output_tokens_details: Breakdown of the output tokens, if sent.
        iterations: The per-iteration breakdown so far, if sent (replaces the list).
        fallback_credit: What happened to the fallback credit, if sent.
        unknown_fields: Fields of the payload this version does not know, kept as sent.

    """

    output_tokens: int
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    server_tool_use: BetaServerToolUsage | None = None
    output_tokens_details: BetaOutputTokensDetails | None = None
    iterations: tuple[IterationUsage, ...] | None = attrs.field(default=None, converter=_as_tuple)
    fallback_credit: BetaFallbackCreditUsage | None = None
    unknown_fields: Mapping[str, Any] = _unknown()
