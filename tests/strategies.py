"""Hypothesis strategies for usage payloads as they travel on the wire.

Every payload is a plain JSON value (dicts, lists, str, int, ...), as ``json.loads`` gives
it, shaped after the table in ``docs/semantics.md`` section 1. The shapes are written here
from that table, not read from ``usagetally``, so the tests have an oracle of their own.

Conventions shared by every payload strategy:

- Known optional fields are either absent or hold a valid value, never an explicit ``null``
  (null means absent, so it would not survive a round trip).
- ``lenient=False`` gives what ``make_converter(strict=True)`` accepts: no unknown fields, only
  the documented iteration and fallback-status types, documented ``service_tier``/``speed``,
  and every count the API's types require.
- ``lenient=True`` adds what only the lenient converter keeps: unknown fields holding arbitrary
  JSON values (``null`` included, since an unknown field is kept as sent) at every level,
  unknown iteration types with extra fields, unknown fallback-credit statuses, undocumented
  ``service_tier``/``speed`` strings, and the absence of the counts documented examples leave
  out although the types require them (the cache counts of iteration entries, the server
  tool counts).
- Keys come in a random order, as nothing on the wire promises one.

The mutation strategies (:func:`invalid_count_mutations`, :func:`strict_violation_mutations`)
start from a valid payload, break it at exactly one place and return a :class:`Mutation`
naming that place, so a test can assert that the error points exactly there.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = [
    "ITERATION_CLASSES",
    "KNOWN_ITERATION_TYPES",
    "KNOWN_STATUS_TYPES",
    "MAX_COUNT",
    "SERVICE_TIERS",
    "SPEEDS",
    "STATUS_CLASSES",
    "CountLocation",
    "Mutation",
    "ObjectLocation",
    "beta_usage_payloads",
    "cache_creation_payloads",
    "count_locations",
    "counts",
    "fallback_credit_payloads",
    "fallback_status_payloads",
    "invalid_count_mutations",
    "invalid_count_values",
    "iteration_payloads",
    "json_values",
    "known_fields",
    "message_delta_usage_payloads",
    "object_locations",
    "output_tokens_details_payloads",
    "payload_settings",
    "server_tool_use_payloads",
    "strict_violation_mutations",
    "unknown_fields",
    "unknown_type_names",
]

MAX_COUNT = 2**63 - 1
"""The largest count the converter accepts."""

SERVICE_TIERS = ("standard", "priority", "batch")
"""The documented values of ``service_tier``."""

SPEEDS = ("standard", "fast")
"""The documented values of ``speed``."""

KNOWN_ITERATION_TYPES = ("message", "compaction", "advisor_message", "fallback_message")
"""The iteration ``type`` values this version knows."""

KNOWN_STATUS_TYPES = ("redeemed", "not_applied")
"""The fallback credit status ``type`` values this version knows."""

ITERATION_CLASSES: Mapping[str, str] = {
    "message": "BetaMessageIterationUsage",
    "compaction": "BetaCompactionIterationUsage",
    "advisor_message": "BetaAdvisorMessageIterationUsage",
    "fallback_message": "BetaFallbackMessageIterationUsage",
}
"""Class name of each known iteration type (any other type is ``UnknownIterationUsage``)."""

STATUS_CLASSES: Mapping[str, str] = {
    "redeemed": "BetaFallbackCreditRedeemed",
    "not_applied": "BetaFallbackCreditNotApplied",
}
"""Class name of each known status type (any other is ``UnknownFallbackCreditStatus``)."""

payload_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Settings for properties over these payloads.

No per-example deadline and no "too slow" health check: on a loaded shared machine a payload
with several iterations can take longer than hypothesis' 200 ms budget to build and check,
which says nothing about correctness (speed is measured by ``benchmarks/``, not here).
"""

_ITERATION_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_ITERATION_TOKENS = ("input_tokens", "output_tokens")
_ITERATION_CACHE_COUNTS = ("cache_creation_input_tokens", "cache_read_input_tokens")


@dataclasses.dataclass(frozen=True)
class _Shape:
    """The wire fields of one class: counts (required or not), nested objects, the rest.

    ``wire_required_counts`` are required by the API's types but left out by documented
    examples: required in strict payloads, optional in lenient ones.
    """

    required_counts: tuple[str, ...] = ()
    wire_required_counts: tuple[str, ...] = ()
    optional_counts: tuple[str, ...] = ()
    nested: Mapping[str, str] = dataclasses.field(default_factory=dict)
    other: tuple[str, ...] = ()

    @property
    def known(self) -> frozenset[str]:
        return frozenset(
            (
                *self.required_counts,
                *self.wire_required_counts,
                *self.optional_counts,
                *self.nested,
                *self.other,
            )
        )


# "iterations" and "status" name a discriminated value rather than one class.
_ITERATIONS = "<iterations>"
_STATUS = "<status>"

_SHAPES: Mapping[str, _Shape] = {
    "BetaUsage": _Shape(
        required_counts=("input_tokens", "output_tokens"),
        optional_counts=("cache_creation_input_tokens", "cache_read_input_tokens"),
        nested={
            "cache_creation": "BetaCacheCreation",
            "server_tool_use": "BetaServerToolUsage",
            "output_tokens_details": "BetaOutputTokensDetails",
            "fallback_credit": "BetaFallbackCreditUsage",
            "iterations": _ITERATIONS,
        },
        other=("service_tier", "speed", "inference_geo"),
    ),
    "BetaMessageDeltaUsage": _Shape(
        required_counts=("output_tokens",),
        optional_counts=("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
        nested={
            "server_tool_use": "BetaServerToolUsage",
            "output_tokens_details": "BetaOutputTokensDetails",
            "fallback_credit": "BetaFallbackCreditUsage",
            "iterations": _ITERATIONS,
        },
    ),
    "BetaCacheCreation": _Shape(
        required_counts=("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    ),
    "BetaServerToolUsage": _Shape(
        wire_required_counts=("web_search_requests", "web_fetch_requests")
    ),
    "BetaOutputTokensDetails": _Shape(required_counts=("thinking_tokens",)),
    "BetaFallbackCreditUsage": _Shape(nested={"status": _STATUS}),
    "BetaFallbackCreditRedeemed": _Shape(other=("type",)),
    "BetaFallbackCreditNotApplied": _Shape(other=("type", "reason", "remove_to_redeem")),
    "UnknownFallbackCreditStatus": _Shape(other=("type",)),
    "BetaMessageIterationUsage": _Shape(
        required_counts=_ITERATION_TOKENS,
        wire_required_counts=_ITERATION_CACHE_COUNTS,
        nested={"cache_creation": "BetaCacheCreation"},
        other=("type", "model"),
    ),
    "BetaCompactionIterationUsage": _Shape(
        required_counts=_ITERATION_TOKENS,
        wire_required_counts=_ITERATION_CACHE_COUNTS,
        nested={"cache_creation": "BetaCacheCreation"},
        other=("type",),
    ),
    "BetaAdvisorMessageIterationUsage": _Shape(
        required_counts=_ITERATION_TOKENS,
        wire_required_counts=_ITERATION_CACHE_COUNTS,
        nested={"cache_creation": "BetaCacheCreation"},
        other=("type", "model"),
    ),
    "BetaFallbackMessageIterationUsage": _Shape(
        required_counts=_ITERATION_TOKENS,
        wire_required_counts=_ITERATION_CACHE_COUNTS,
        nested={"cache_creation": "BetaCacheCreation"},
        other=("type", "model"),
    ),
    "UnknownIterationUsage": _Shape(
        optional_counts=_ITERATION_COUNTS,
        nested={"cache_creation": "BetaCacheCreation"},
        other=("type", "model"),
    ),
}


def known_fields(class_name: str) -> frozenset[str]:
    """Return the wire field names the class named ``class_name`` knows."""
    return _SHAPES[class_name].known


# --- Leaf values -----------------------------------------------------------------------------


def counts() -> st.SearchStrategy[int]:
    """Valid counts: non-negative ints up to 2**63 - 1, with weight on small values and bounds."""
    return st.one_of(
        st.integers(min_value=0, max_value=100_000),
        st.sampled_from([0, 1, MAX_COUNT]),
        st.integers(min_value=0, max_value=MAX_COUNT),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (null, bool, int, finite float, str, lists, objects), kept small."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(max_size=5), inner, max_size=3),
        ),
        max_leaves=6,
    )


# Names worth trying as unknown fields: wire names of other classes, our attribute name,
# the empty string, and dunder-looking names.
_INTERESTING_NAMES = (
    "type",
    "model",
    "unknown_fields",
    "cache_creation",
    "service_tier",
    "speed",
    "inference_geo",
    "iterations",
    "web_code_execution_requests",
    "ephemeral_24h_input_tokens",
    "reasoning_tokens",
    "",
    "__class__",
)


def _unknown_names(known: Collection[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_INTERESTING_NAMES), st.text(max_size=12)).filter(
        lambda name: name not in known
    )


def unknown_fields(
    known: Collection[str], *, min_size: int = 0, max_size: int = 2
) -> st.SearchStrategy[dict[str, Any]]:
    """Fields whose names are not in ``known``, each holding an arbitrary JSON value."""
    return st.dictionaries(
        _unknown_names(known), json_values(), min_size=min_size, max_size=max_size
    )


def unknown_type_names(known: Collection[str]) -> st.SearchStrategy[str]:
    """``type`` values not in ``known``: plausible future names and arbitrary text."""
    plausible = st.sampled_from(
        ["tool_search_message", "retry", "web_fetch_message", "pending", "Message", ""]
    )
    return st.one_of(plausible, st.text(max_size=20)).filter(lambda t: t not in known)


def _text() -> st.SearchStrategy[str]:
    return st.text(max_size=20)


@st.composite
def _object(
    draw: st.DrawFn,
    class_name: str,
    required: Mapping[str, st.SearchStrategy[Any]],
    optional: Mapping[str, st.SearchStrategy[Any]],
    lenient: bool,
) -> dict[str, Any]:
    """One object: every required field, any subset of the optional ones, maybe unknowns."""
    fields: dict[str, Any] = draw(st.fixed_dictionaries(dict(required), optional=dict(optional)))
    if lenient:
        fields.update(draw(unknown_fields(known_fields(class_name))))
    order = draw(st.permutations(list(fields)))
    return {key: fields[key] for key in order}


def _count_fields(names: Collection[str]) -> dict[str, st.SearchStrategy[Any]]:
    return {name: counts() for name in names}


def _counts_of(
    class_name: str, lenient: bool
) -> tuple[dict[str, st.SearchStrategy[Any]], dict[str, st.SearchStrategy[Any]]]:
    """The (required, optional) count fields of a class, for lenient or strict payloads."""
    shape = _SHAPES[class_name]
    required = _count_fields(shape.required_counts)
    optional = _count_fields(shape.optional_counts)
    (optional if lenient else required).update(_count_fields(shape.wire_required_counts))
    return required, optional


# --- Objects ---------------------------------------------------------------------------------


def cache_creation_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaCacheCreation`` payloads (the TTL split of cache writes)."""
    return _object("BetaCacheCreation", *_counts_of("BetaCacheCreation", lenient), lenient)


def server_tool_use_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaServerToolUsage`` payloads (web search and web fetch request counts).

    Lenient payloads may leave either count out, as the streaming doc's example does.
    """
    return _object("BetaServerToolUsage", *_counts_of("BetaServerToolUsage", lenient), lenient)


def output_tokens_details_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaOutputTokensDetails`` payloads (thinking tokens)."""
    return _object("BetaOutputTokensDetails", {"thinking_tokens": counts()}, {}, lenient)


def fallback_status_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Fallback credit statuses: ``redeemed``, ``not_applied``, and (lenient) unknown types."""
    redeemed = _object("BetaFallbackCreditRedeemed", {"type": st.just("redeemed")}, {}, lenient)
    not_applied = _object(
        "BetaFallbackCreditNotApplied",
        {"type": st.just("not_applied"), "reason": _text()},
        {"remove_to_redeem": st.lists(_text(), max_size=3)},
        lenient,
    )
    if not lenient:
        return st.one_of(redeemed, not_applied)
    unknown = st.builds(
        lambda kind, extra: {"type": kind, **extra},
        unknown_type_names(KNOWN_STATUS_TYPES),
        unknown_fields({"type"}),
    )
    return st.one_of(redeemed, not_applied, unknown)


def fallback_credit_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaFallbackCreditUsage`` payloads, with any status."""
    return _object(
        "BetaFallbackCreditUsage",
        {"status": fallback_status_payloads(lenient=lenient)},
        {},
        lenient,
    )


def iteration_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One ``iterations`` entry of any kind.

    The four known kinds, with or without their optional ``cache_creation`` (and ``model``
    for ``message``); lenient payloads may leave the two cache counts out (as documented
    examples do) and add entries of unknown types whose counts, ``cache_creation`` and
    ``model`` are each present or not, plus extra fields.
    """
    cache = cache_creation_payloads(lenient=lenient)
    kinds = []
    for kind, class_name in ITERATION_CLASSES.items():
        required, optional = _counts_of(class_name, lenient)
        required["type"] = st.just(kind)
        optional["cache_creation"] = cache
        if kind in ("advisor_message", "fallback_message"):
            required["model"] = _text()
        elif kind == "message":
            optional["model"] = _text()
        kinds.append(_object(class_name, required, optional, lenient))
    if lenient:
        required, optional = _counts_of("UnknownIterationUsage", lenient)
        required["type"] = unknown_type_names(KNOWN_ITERATION_TYPES)
        optional.update(cache_creation=cache, model=_text())
        kinds.append(_object("UnknownIterationUsage", required, optional, lenient))
    return st.one_of(kinds)


def _shared_optional(lenient: bool) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "cache_creation_input_tokens": counts(),
        "cache_read_input_tokens": counts(),
        "server_tool_use": server_tool_use_payloads(lenient=lenient),
        "output_tokens_details": output_tokens_details_payloads(lenient=lenient),
        "iterations": st.lists(iteration_payloads(lenient=lenient), max_size=5),
        "fallback_credit": fallback_credit_payloads(lenient=lenient),
    }


def beta_usage_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaUsage`` payloads (``message_start.message.usage``), any subset of fields.

    ``lenient=False`` gives payloads the strict converter accepts; ``lenient=True`` adds
    unknowns at every level and undocumented ``service_tier``/``speed`` strings.
    """
    tier = st.sampled_from(SERVICE_TIERS)
    speed = st.sampled_from(SPEEDS)
    if lenient:
        tier = tier | _text()
        speed = speed | _text()
    return _object(
        "BetaUsage",
        {"input_tokens": counts(), "output_tokens": counts()},
        {
            **_shared_optional(lenient),
            "cache_creation": cache_creation_payloads(lenient=lenient),
            "service_tier": tier,
            "speed": speed,
            "inference_geo": _text(),
        },
        lenient,
    )


def message_delta_usage_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaMessageDeltaUsage`` payloads (``message_delta.usage``), any subset of fields.

    Lenient payloads may carry the start-only fields (``cache_creation``, ``service_tier``...)
    as unknown fields, since a delta does not know them.
    """
    return _object(
        "BetaMessageDeltaUsage",
        {"output_tokens": counts()},
        {**_shared_optional(lenient), "input_tokens": counts()},
        lenient,
    )


# --- Locations inside a payload --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObjectLocation:
    """A JSON object inside a payload: its path, the dict itself and the class it maps to."""

    path: str
    obj: dict[str, Any]
    class_name: str


@dataclasses.dataclass(frozen=True)
class CountLocation:
    """A count field of an object inside a payload (present or, if optional, absent)."""

    path: str
    obj: dict[str, Any]
    key: str
    required: bool


def _join(path: str, key: str) -> str:
    # The converter's path syntax: a bare name when unambiguous, else a quoted JSON string in
    # brackets (an empty key, or one holding ".", "[", "]", quotes, spaces or unprintables).
    if key and key.isprintable() and not any(c in key for c in ".[]\"' "):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def object_locations(payload: dict[str, Any], class_name: str) -> Iterator[ObjectLocation]:
    """Every object of a valid payload of ``class_name``, the payload itself first."""
    yield ObjectLocation("", payload, class_name)
    yield from _children(payload, class_name, "")


def _children(obj: dict[str, Any], class_name: str, path: str) -> Iterator[ObjectLocation]:
    for key, child_class in _SHAPES[class_name].nested.items():
        if key not in obj:
            continue
        child_path = _join(path, key)
        if child_class == _ITERATIONS:
            for i, entry in enumerate(obj[key]):
                entry_class = ITERATION_CLASSES.get(entry["type"], "UnknownIterationUsage")
                entry_path = f"{child_path}[{i}]"
                yield ObjectLocation(entry_path, entry, entry_class)
                yield from _children(entry, entry_class, entry_path)
            continue
        if child_class == _STATUS:
            child_class = STATUS_CLASSES.get(obj[key]["type"], "UnknownFallbackCreditStatus")
        yield ObjectLocation(child_path, obj[key], child_class)
        yield from _children(obj[key], child_class, child_path)


def count_locations(
    payload: dict[str, Any], class_name: str, *, lenient: bool
) -> Iterator[CountLocation]:
    """Every count field of a valid payload: present ones, and optional ones left out.

    ``required`` tells whether the converter (lenient or strict) requires the count.
    """
    for loc in object_locations(payload, class_name):
        shape = _SHAPES[loc.class_name]
        for key in shape.required_counts:
            yield CountLocation(_join(loc.path, key), loc.obj, key, required=True)
        for key in shape.wire_required_counts:
            yield CountLocation(_join(loc.path, key), loc.obj, key, required=not lenient)
        for key in shape.optional_counts:
            yield CountLocation(_join(loc.path, key), loc.obj, key, required=False)


# --- Mutations -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutation:
    """A payload broken at exactly one place.

    Attributes:
        payload: The broken payload (a deep copy; the original is untouched).
        path: The JSON path of the broken value, as the error must report it.
        problem: The problem text the error must carry.
        what: A short human description of the change, for failure reports.
    """

    payload: dict[str, Any]
    path: str
    problem: str
    what: str


def invalid_count_values() -> st.SearchStrategy[Any]:
    """Values that are not a valid count, with reprs short enough to appear whole in messages.

    bools, floats (integral ones such as 3.0 included), numeric and other strings, negative
    ints, ints above 2**63 - 1, lists, objects and null.
    """
    return st.one_of(
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.integers(min_value=0, max_value=1000).map(float),
        st.integers(min_value=0, max_value=10**6).map(str),
        st.text(max_size=4),
        st.integers(min_value=-(10**30), max_value=-1),
        st.integers(min_value=MAX_COUNT + 1, max_value=2**80),
        st.lists(st.integers(min_value=0, max_value=9), max_size=3),
        st.dictionaries(st.sampled_from(["a", "n"]), st.integers(0, 9), max_size=2),
        st.none(),
    )


def _count_problem(value: Any) -> str:
    if type(value) is int and value > MAX_COUNT:
        return f"count out of range (above 2**63 - 1), got {value}"
    return f"expected a non-negative integer, got {value!r}"


@st.composite
def invalid_count_mutations(
    draw: st.DrawFn,
    payloads: st.SearchStrategy[dict[str, Any]],
    class_name: str,
    *,
    lenient: bool,
) -> Mutation:
    """Draw a valid payload of ``class_name`` and put one invalid value in one count field.

    The field is any count at any depth (top level, cache split, server tools, output
    details, any iteration entry of any type), present or optional-and-absent. ``null`` is
    only put in counts the converter requires (``lenient`` tells which converter); in an
    optional one it means absent, which is valid.
    """
    payload = copy.deepcopy(draw(payloads))
    locations = list(count_locations(payload, class_name, lenient=lenient))
    target = draw(st.sampled_from(locations))
    value = draw(invalid_count_values())
    if value is None and not target.required:
        value = -1
    target.obj[target.key] = value
    problem = "required field is null" if value is None else _count_problem(value)
    return Mutation(payload, target.path, problem, f"{target.path} = {value!r}")


@st.composite
def strict_violation_mutations(
    draw: st.DrawFn, payloads: st.SearchStrategy[dict[str, Any]], class_name: str
) -> Mutation:
    """Draw a strict-valid payload and add one thing only the lenient converter accepts.

    One of: an unknown field in any object (any JSON value, null included; any name, the
    path quoting it in brackets when a bare name would be ambiguous), an unknown
    ``type`` on one iteration entry, an unknown fallback-credit status ``type``, or an
    undocumented ``service_tier`` or ``speed``. The lenient converter must keep it and round
    trip it; the strict one must refuse it with ``path`` and ``problem``.
    """
    payload = copy.deepcopy(draw(payloads))
    objects = list(object_locations(payload, class_name))
    choices = ["unknown_field"]
    if payload.get("iterations"):
        choices.append("iteration_type")
    if "fallback_credit" in payload:
        choices.append("status_type")
    if class_name == "BetaUsage":
        choices += ["service_tier", "speed"]
    kind = draw(st.sampled_from(choices))

    if kind == "unknown_field":
        loc = draw(st.sampled_from(objects))
        name = draw(_unknown_names(known_fields(loc.class_name)))
        value = draw(json_values())
        loc.obj[name] = value
        path = _join(loc.path, name)
        return Mutation(payload, path, f"unknown field in {loc.class_name}", f"{path} = {value!r}")
    if kind == "iteration_type":
        index = draw(st.integers(min_value=0, max_value=len(payload["iterations"]) - 1))
        new_type = draw(unknown_type_names(KNOWN_ITERATION_TYPES))
        payload["iterations"][index]["type"] = new_type
        path = f"iterations[{index}].type"
        return Mutation(
            payload, path, f"unknown iteration type {new_type!r}", f"{path} = {new_type!r}"
        )
    if kind == "status_type":
        new_type = draw(unknown_type_names(KNOWN_STATUS_TYPES))
        payload["fallback_credit"]["status"]["type"] = new_type
        path = "fallback_credit.status.type"
        return Mutation(
            payload,
            path,
            f"unknown fallback credit status type {new_type!r}",
            f"{path} = {new_type!r}",
        )
    known = SERVICE_TIERS if kind == "service_tier" else SPEEDS
    value = draw(_text().filter(lambda v: v not in known))
    payload[kind] = value
    allowed = ", ".join(repr(k) for k in sorted(known))
    return Mutation(
        payload, kind, f"expected one of {allowed}, got {value!r}", f"{kind} = {value!r}"
    )
