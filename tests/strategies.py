"""Hypothesis strategies for usage payloads as they travel on the wire.

Every payload is a plain JSON value (dicts, lists, str, int, ...), as ``json.loads`` gives
it, shaped after the table in ``docs/semantics.md`` section 1. The shapes are read from their
one owner, not written here: each class's fields, their kinds (a count, a string, a nested
object, a list of entries) and which of them are required come from the attrs fields of the
models (``_models.py``, read as ``_converter.py`` reads them), the iteration and fallback-status
types from the catalogue (``_wire.py``). A field or an iteration type added there is generated
here without a change. The field names themselves are checked against the anthropic SDK's
classes by ``tests/test_wire.py``, and against literal payloads by ``tests/payloads/``; what
is written here is what the wire allows beyond the models: the documented values of
``service_tier`` and ``speed``, the range of a count, and the unknown names, types and values a
lenient payload may carry.

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
  tool counts: the fields ``_models.py`` marks ``wire_required``).
- Keys come in a random order, as nothing on the wire promises one.

The mutation strategies (:func:`invalid_count_mutations`, :func:`strict_violation_mutations`)
start from a valid payload, break it at exactly one place and return a :class:`Mutation`
naming that place, so a test can assert that the error points exactly there.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from usagetally import _models
from usagetally._wire import FALLBACK_STATUS_CLASSES
from usagetally._wire import ITERATION_CLASSES as _ITERATION_MODELS

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

KNOWN_ITERATION_TYPES = tuple(_ITERATION_MODELS)
"""The iteration ``type`` values this version knows (the catalogue's)."""

KNOWN_STATUS_TYPES = tuple(FALLBACK_STATUS_CLASSES)
"""The fallback credit status ``type`` values this version knows (the catalogue's)."""

ITERATION_CLASSES: Mapping[str, str] = {
    kind: cls.__name__ for kind, cls in _ITERATION_MODELS.items()
}
"""Class name of each known iteration type (any other type is ``UnknownIterationUsage``)."""

STATUS_CLASSES: Mapping[str, str] = {
    kind: cls.__name__ for kind, cls in FALLBACK_STATUS_CLASSES.items()
}
"""Class name of each known status type (any other is ``UnknownFallbackCreditStatus``)."""

payload_settings = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Settings for properties over these payloads.

No per-example deadline and no "too slow" health check: on a loaded shared machine a payload
with several iterations can take longer than hypothesis' 200 ms budget to build and check,
which says nothing about correctness (speed is measured by ``benchmarks/``, not here).
"""


@dataclasses.dataclass(frozen=True)
class _Shape:
    """The wire fields of one class: counts (required or not), nested objects, the rest.

    ``wire_required_counts`` are required by the API's types but left out by documented
    examples: required in strict payloads, optional in lenient ones. ``required_other`` are
    the fields besides counts every payload of the class has (its ``type``, an advisor's
    ``model``, ...). ``kinds`` gives each field's kind: ``"count"``, ``"string"``,
    ``"strings"`` (a list of strings), or the nested shape (a class name, :data:`_ITERATIONS`
    or :data:`_STATUS`).
    """

    required_counts: tuple[str, ...] = ()
    wire_required_counts: tuple[str, ...] = ()
    optional_counts: tuple[str, ...] = ()
    nested: Mapping[str, str] = dataclasses.field(default_factory=dict)
    other: tuple[str, ...] = ()
    required_other: frozenset[str] = frozenset()
    kinds: Mapping[str, str] = dataclasses.field(default_factory=dict)

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

_MODELS: Mapping[str, type] = {
    name: cls for name in _models.__all__ if attrs.has(cls := getattr(_models, name))
}
_ITERATION_UNION = frozenset(typing.get_args(_models.IterationUsage))
_STATUS_UNION = frozenset(typing.get_args(_models.FallbackCreditStatus))


def _kind(hint: Any) -> str:
    """The kind of a field from its type, as ``_converter.py`` reads it."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = frozenset(typing.get_args(hint)) - {type(None)}
        if kinds == _STATUS_UNION:
            return _STATUS
        (hint,) = kinds  # X | None
    if hint is int:
        return "count"
    if hint is str:
        return "string"
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if item is str:
            return "strings"
        if frozenset(typing.get_args(item)) == _ITERATION_UNION:
            return _ITERATIONS
    if attrs.has(hint):
        return str(hint.__name__)
    raise TypeError(f"no strategy for a field of type {hint!r}")


def _shape(cls: type) -> _Shape:
    """The shape of a model class, from its attrs fields."""
    hints = typing.get_type_hints(cls)
    required, wire_required, optional, other = [], [], [], []
    nested: dict[str, str] = {}
    required_other: set[str] = set()
    kinds: dict[str, str] = {}
    for field in attrs.fields(cls):
        name = field.name
        if name == "unknown_fields":
            continue
        kind = kinds[name] = _kind(hints[name])
        needed = field.default is attrs.NOTHING or name == "type"
        if kind == "count":
            if needed:
                required.append(name)
            elif field.metadata.get("wire_required"):
                wire_required.append(name)
            else:
                optional.append(name)
            continue
        if kind in ("string", "strings"):
            other.append(name)
        else:
            nested[name] = kind
        if needed:
            required_other.add(name)
    return _Shape(
        required_counts=tuple(required),
        wire_required_counts=tuple(wire_required),
        optional_counts=tuple(optional),
        nested=nested,
        other=tuple(other),
        required_other=frozenset(required_other),
        kinds=kinds,
    )


_SHAPES: Mapping[str, _Shape] = {name: _shape(cls) for name, cls in _MODELS.items()}


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


def _fields_of(
    class_name: str, lenient: bool, **given: st.SearchStrategy[Any]
) -> tuple[dict[str, st.SearchStrategy[Any]], dict[str, st.SearchStrategy[Any]]]:
    """The (required, optional) fields of a class, for lenient or strict payloads.

    Each field's strategy follows its kind (a count, a string, a list of strings, a nested
    object, the entries of ``iterations``), unless ``given`` names one for it.
    """
    shape = _SHAPES[class_name]
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, kind in shape.kinds.items():
        strategy = given[name] if name in given else _of_kind(kind, lenient)
        needed = name in shape.required_counts or name in shape.required_other
        if not lenient and name in shape.wire_required_counts:
            needed = True
        (required if needed else optional)[name] = strategy
    return required, optional


def _of_kind(kind: str, lenient: bool) -> st.SearchStrategy[Any]:
    if kind == "count":
        return counts()
    if kind == "string":
        return _text()
    if kind == "strings":
        return st.lists(_text(), max_size=3)
    if kind == _ITERATIONS:
        return st.lists(iteration_payloads(lenient=lenient), max_size=5)
    if kind == _STATUS:
        return fallback_status_payloads(lenient=lenient)
    return _payloads(kind, lenient)


def _payloads(
    class_name: str, lenient: bool, **given: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of the class named ``class_name``, its fields drawn by :func:`_fields_of`."""
    return _object(class_name, *_fields_of(class_name, lenient, **given), lenient)


def _choices(known: tuple[str, ...], lenient: bool) -> st.SearchStrategy[str]:
    """A string with documented values; lenient payloads may hold any other."""
    documented = st.sampled_from(known)
    return documented | _text() if lenient else documented


# --- Objects ---------------------------------------------------------------------------------


def cache_creation_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaCacheCreation`` payloads (the TTL split of cache writes)."""
    return _payloads("BetaCacheCreation", lenient)


def server_tool_use_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaServerToolUsage`` payloads (web search and web fetch request counts).

    Lenient payloads may leave either count out, as the streaming doc's example does.
    """
    return _payloads("BetaServerToolUsage", lenient)


def output_tokens_details_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaOutputTokensDetails`` payloads (thinking tokens)."""
    return _payloads("BetaOutputTokensDetails", lenient)


def fallback_status_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Fallback credit statuses: ``redeemed``, ``not_applied``, and (lenient) unknown types."""
    known = [
        _payloads(class_name, lenient, type=st.just(kind))
        for kind, class_name in STATUS_CLASSES.items()
    ]
    if not lenient:
        return st.one_of(known)
    unknown = st.builds(
        lambda kind, extra: {"type": kind, **extra},
        unknown_type_names(KNOWN_STATUS_TYPES),
        unknown_fields(known_fields("UnknownFallbackCreditStatus")),
    )
    return st.one_of(*known, unknown)


def fallback_credit_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaFallbackCreditUsage`` payloads, with any status."""
    return _payloads("BetaFallbackCreditUsage", lenient)


def iteration_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One ``iterations`` entry of any kind.

    The known kinds, with or without their optional fields (``cache_creation``, and
    ``model`` for ``message``); lenient payloads may leave the two cache counts out (as
    documented examples do) and add entries of unknown types whose counts, ``cache_creation``
    and ``model`` are each present or not, plus extra fields.
    """
    kinds = [
        _payloads(class_name, lenient, type=st.just(kind))
        for kind, class_name in ITERATION_CLASSES.items()
    ]
    if lenient:
        unknown = unknown_type_names(KNOWN_ITERATION_TYPES)
        kinds.append(_payloads("UnknownIterationUsage", lenient, type=unknown))
    return st.one_of(kinds)


def beta_usage_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaUsage`` payloads (``message_start.message.usage``), any subset of fields.

    ``lenient=False`` gives payloads the strict converter accepts; ``lenient=True`` adds
    unknowns at every level and undocumented ``service_tier``/``speed`` strings.
    """
    return _payloads(
        "BetaUsage",
        lenient,
        service_tier=_choices(SERVICE_TIERS, lenient),
        speed=_choices(SPEEDS, lenient),
    )


def message_delta_usage_payloads(*, lenient: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """``BetaMessageDeltaUsage`` payloads (``message_delta.usage``), any subset of fields.

    Lenient payloads may carry the start-only fields (``cache_creation``, ``service_tier``...)
    as unknown fields, since a delta does not know them.
    """
    return _payloads("BetaMessageDeltaUsage", lenient)


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
