"""Tests of ``usagetally._converter``: round trips, null handling, refusals with paths, strictness.

Payload files in ``tests/payloads/*.json`` are hand-written. Each is an object with:

- ``description`` and ``source``: what it is and where it comes from;
- ``class``: the name of the usagetally class to structure it as;
- ``payload``: the wire payload;
- ``strict_refuses`` (optional): ``null`` when the strict converter accepts the payload, else
  ``{"path": ..., "problem": ...}``, the exact error it must raise. Files without the key are
  not run through the strict converter;
- ``xfail`` (optional): the reason a known bug keeps the file from round-tripping; the case is
  then marked ``xfail(strict=True)`` so it turns red once the bug is fixed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    ITERATION_CLASSES,
    MAX_COUNT,
    STATUS_CLASSES,
    Mutation,
    beta_usage_payloads,
    invalid_count_mutations,
    message_delta_usage_payloads,
    object_locations,
    payload_settings,
    strict_violation_mutations,
)

import usagetally
from usagetally import (
    BetaAdvisorMessageIterationUsage,
    BetaCacheCreation,
    BetaCompactionIterationUsage,
    BetaFallbackCreditNotApplied,
    BetaFallbackCreditRedeemed,
    BetaFallbackCreditUsage,
    BetaFallbackMessageIterationUsage,
    BetaMessageDeltaUsage,
    BetaMessageIterationUsage,
    BetaOutputTokensDetails,
    BetaServerToolUsage,
    BetaUsage,
    UnknownFallbackCreditStatus,
    UnknownIterationUsage,
    UsageError,
    UsageValidationError,
    converter,
    make_converter,
)

LENIENT = converter
STRICT = make_converter(strict=True)
BOTH = [pytest.param(LENIENT, id="lenient"), pytest.param(STRICT, id="strict")]

MODEL_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        BetaUsage,
        BetaMessageDeltaUsage,
        BetaCacheCreation,
        BetaServerToolUsage,
        BetaOutputTokensDetails,
        BetaFallbackCreditUsage,
        BetaFallbackCreditRedeemed,
        BetaFallbackCreditNotApplied,
        UnknownFallbackCreditStatus,
        BetaMessageIterationUsage,
        BetaCompactionIterationUsage,
        BetaAdvisorMessageIterationUsage,
        BetaFallbackMessageIterationUsage,
        UnknownIterationUsage,
    )
}

ITERATION_CLASS_NAMES = frozenset(ITERATION_CLASSES.values()) | {"UnknownIterationUsage"}
STATUS_CLASS_NAMES = frozenset(STATUS_CLASSES.values()) | {"UnknownFallbackCreditStatus"}


def canonical(value: Any) -> str:
    """JSON text with sorted keys, for byte-for-byte comparison."""
    return json.dumps(value, sort_keys=True)


def assert_round_trip(conv: cattrs.Converter, payload: Any, cls: type[Any]) -> Any:
    """Structure ``payload`` as ``cls``, check the wire form comes back exactly, return it."""
    obj = conv.structure(payload, cls)
    assert type(obj) is cls
    out = conv.unstructure(obj)
    assert out == payload
    assert canonical(out) == canonical(payload)
    return obj


def assert_matches_wire(obj: Any, wire: dict[str, Any]) -> None:
    """Check that a structured object holds the wire values in the right places.

    A round trip alone would pass if everything went to ``unknown_fields``; this checks that
    each known field carries its wire value (lists as tuples, nested objects recursively),
    that absent or null fields are None, that ``unknown_fields`` holds exactly the other
    keys, and that iteration entries and statuses got the class their ``type`` names.
    """
    cls = type(obj)
    name = cls.__name__
    if name in ITERATION_CLASS_NAMES:
        assert name == ITERATION_CLASSES.get(wire["type"], "UnknownIterationUsage")
    if name in STATUS_CLASS_NAMES:
        assert name == STATUS_CLASSES.get(wire["type"], "UnknownFallbackCreditStatus")
    names = {f.name for f in attrs.fields(cls)} - {"unknown_fields"}
    for field in attrs.fields(cls):
        if field.name == "unknown_fields":
            continue
        value = getattr(obj, field.name)
        if wire.get(field.name) is None:
            expected = None if field.default is attrs.NOTHING else field.default
            assert value == expected, field.name
        else:
            _assert_value_matches(value, wire[field.name])
    assert dict(obj.unknown_fields) == {k: v for k, v in wire.items() if k not in names}


def _assert_value_matches(value: Any, wire: Any) -> None:
    if attrs.has(type(value)):
        assert_matches_wire(value, wire)
    elif isinstance(value, tuple):
        assert type(wire) is list
        assert len(value) == len(wire)
        for item, wire_item in zip(value, wire, strict=True):
            _assert_value_matches(item, wire_item)
    else:
        assert type(value) is type(wire)
        assert value == wire


def assert_refused(
    conv: cattrs.Converter, payload: Any, cls: type[Any], path: str, problem: str
) -> UsageValidationError:
    """Check that structuring raises UsageValidationError with exactly this path and problem."""
    with pytest.raises(UsageValidationError) as info:
        conv.structure(payload, cls)
    exc = info.value
    assert (exc.path, exc.problem) == (path, problem)
    assert str(exc) == f"{path or '<root>'}: {problem}"
    assert isinstance(exc, UsageError)
    assert isinstance(exc, ValueError)
    return exc


# --- Payload files ---------------------------------------------------------------------------

PAYLOAD_DIR = Path(__file__).parent / "payloads"


@dataclasses.dataclass(frozen=True)
class PayloadCase:
    """One payload file."""

    name: str
    cls: type[Any]
    payload: dict[str, Any]
    strict_checked: bool
    strict_refuses: dict[str, str] | None
    xfail: str | None


def _load_cases() -> list[PayloadCase]:
    cases = []
    for path in sorted(PAYLOAD_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        cases.append(
            PayloadCase(
                name=path.stem,
                cls=MODEL_CLASSES[data["class"]],
                payload=data["payload"],
                strict_checked="strict_refuses" in data,
                strict_refuses=data.get("strict_refuses"),
                xfail=data.get("xfail"),
            )
        )
    return cases


CASES = _load_cases()


def _params(cases: list[PayloadCase]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.name,
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
        )
        for case in cases
    ]


def test_payload_files_cover_every_type_and_documented_example() -> None:
    assert {case.cls.__name__ for case in CASES} == set(MODEL_CLASSES)
    names = {case.name for case in CASES}
    assert {
        "doc_compaction",
        "doc_pause_after_compaction",
        "doc_advisor_older_rule",
        "doc_advisor_newer_rule",
        "doc_fallback",
        "doc_web_search_message_start",
        "doc_web_search_message_delta",
    } <= names
    statuses = {
        case.payload["status"]["type"] for case in CASES if case.cls is BetaFallbackCreditUsage
    }
    assert {"redeemed", "not_applied"} <= statuses
    for case in CASES:
        assert case.strict_checked != bool(case.xfail), case.name


@pytest.mark.parametrize("case", _params(CASES))
def test_payload_round_trips_through_lenient_converter(case: PayloadCase) -> None:
    obj = assert_round_trip(LENIENT, case.payload, case.cls)
    assert_matches_wire(obj, case.payload)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.strict_checked]))
def test_payload_through_strict_converter(case: PayloadCase) -> None:
    if case.strict_refuses is None:
        obj = assert_round_trip(STRICT, case.payload, case.cls)
        assert obj == LENIENT.structure(case.payload, case.cls)
    else:
        assert_refused(
            STRICT,
            case.payload,
            case.cls,
            case.strict_refuses["path"],
            case.strict_refuses["problem"],
        )


def _case(name: str) -> PayloadCase:
    return next(case for case in CASES if case.name == name)


def test_compaction_example_structures_entries_by_type() -> None:
    usage = LENIENT.structure(_case("doc_compaction").payload, BetaUsage)
    assert usage.iterations is not None
    compaction, message = usage.iterations
    assert isinstance(compaction, BetaCompactionIterationUsage)
    assert isinstance(message, BetaMessageIterationUsage)
    assert (compaction.input_tokens, compaction.output_tokens) == (180000, 3500)
    assert (usage.input_tokens, usage.output_tokens) == (23000, 1000)
    assert sum(e.input_tokens or 0 for e in usage.iterations) == 203000


def test_pause_after_compaction_example() -> None:
    usage = LENIENT.structure(_case("doc_pause_after_compaction").payload, BetaUsage)
    assert (usage.input_tokens, usage.output_tokens) == (0, 0)
    assert usage.iterations is not None
    assert [type(e) for e in usage.iterations] == [BetaCompactionIterationUsage]


def test_web_search_example_keeps_server_tool_count() -> None:
    start = LENIENT.structure(_case("doc_web_search_message_start").payload, BetaUsage)
    delta = LENIENT.structure(_case("doc_web_search_message_delta").payload, BetaMessageDeltaUsage)
    assert start.input_tokens == 2679
    assert delta.input_tokens == 10682
    assert delta.server_tool_use == BetaServerToolUsage(web_search_requests=1, web_fetch_requests=0)


def test_advisor_and_fallback_examples_name_their_models() -> None:
    for name in ("doc_advisor_older_rule", "doc_advisor_newer_rule"):
        usage = LENIENT.structure(_case(name).payload, BetaUsage)
        assert usage.iterations is not None
        advisor = usage.iterations[1]
        assert isinstance(advisor, BetaAdvisorMessageIterationUsage)
        assert advisor.model == "claude-opus-4-7"
    usage = LENIENT.structure(_case("doc_fallback").payload, BetaUsage)
    assert usage.iterations is not None
    declined, served = usage.iterations
    assert isinstance(declined, BetaMessageIterationUsage)
    assert isinstance(served, BetaFallbackMessageIterationUsage)
    assert (declined.model, served.model) == ("claude-opus-4-7", "claude-sonnet-4-6")
    assert usage.fallback_credit == BetaFallbackCreditUsage(status=BetaFallbackCreditRedeemed())


def test_unknowns_are_kept_at_every_level() -> None:
    usage = LENIENT.structure(_case("usage_unknown_fields_everywhere").payload, BetaUsage)
    assert usage.unknown_fields["future_flag"] is None
    assert usage.unknown_fields["unknown_fields"].startswith("a wire field")
    assert usage.service_tier == "flex"
    assert usage.speed == "turbo"
    assert usage.cache_creation is not None
    assert usage.cache_creation.unknown_fields == {"ephemeral_24h_input_tokens": 5}
    assert usage.server_tool_use is not None
    assert usage.server_tool_use.unknown_fields == {"code_execution_requests": 3}
    assert usage.iterations is not None
    unknown = usage.iterations[4]
    assert isinstance(unknown, UnknownIterationUsage)
    assert (unknown.type, unknown.input_tokens, unknown.output_tokens) == (
        "code_execution_message",
        50,
        5,
    )
    assert unknown.cache_read_input_tokens is None
    assert unknown.unknown_fields == {
        "container": {"id": "c1", "seconds": 1.5},
        "exit_code": None,
    }
    assert usage.fallback_credit is not None
    assert usage.fallback_credit.unknown_fields == {"credit_id": "fc_1"}
    assert usage.fallback_credit.status.unknown_fields == {"docs_url": "https://example.invalid/fc"}


def test_documented_examples_as_printed_leave_omitted_counts_none() -> None:
    # The docs print payloads without fields the SDK types require; lenient reads them as
    # absent (None, never 0), strict refuses them (see the payload files).
    usage = LENIENT.structure(_case("doc_compaction_as_printed").payload, BetaUsage)
    assert usage.iterations is not None
    for entry in usage.iterations:
        assert isinstance(entry, (BetaCompactionIterationUsage, BetaMessageIterationUsage))
        assert entry.cache_creation_input_tokens is None
        assert entry.cache_read_input_tokens is None
    delta = LENIENT.structure(
        _case("doc_web_search_message_delta_as_printed").payload, BetaMessageDeltaUsage
    )
    assert delta.server_tool_use == BetaServerToolUsage(
        web_search_requests=1, web_fetch_requests=None
    )


# --- Explicit null means absent --------------------------------------------------------------

_USAGE_BASE = {"input_tokens": 5, "output_tokens": 6}
_DELTA_BASE = {"output_tokens": 6}
_ITERATION_BASE = {
    "type": "message",
    "input_tokens": 1,
    "output_tokens": 2,
    "cache_creation_input_tokens": 3,
    "cache_read_input_tokens": 4,
}

NULLABLE = [
    *[
        (BetaUsage, _USAGE_BASE, name)
        for name in (
            "cache_creation",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "inference_geo",
            "iterations",
            "server_tool_use",
            "service_tier",
            "speed",
            "output_tokens_details",
            "fallback_credit",
        )
    ],
    *[
        (BetaMessageDeltaUsage, _DELTA_BASE, name)
        for name in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "server_tool_use",
            "output_tokens_details",
            "iterations",
            "fallback_credit",
        )
    ],
    (BetaMessageIterationUsage, _ITERATION_BASE, "cache_creation"),
    (BetaMessageIterationUsage, _ITERATION_BASE, "model"),
    (BetaCompactionIterationUsage, {**_ITERATION_BASE, "type": "compaction"}, "cache_creation"),
    (
        BetaAdvisorMessageIterationUsage,
        {**_ITERATION_BASE, "type": "advisor_message", "model": "m"},
        "cache_creation",
    ),
    (
        BetaFallbackMessageIterationUsage,
        {**_ITERATION_BASE, "type": "fallback_message", "model": "m"},
        "cache_creation",
    ),
    *[
        (UnknownIterationUsage, {"type": "future"}, name)
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "cache_creation",
            "model",
        )
    ],
    (BetaFallbackCreditNotApplied, {"type": "not_applied", "reason": "r"}, "remove_to_redeem"),
]


@pytest.mark.parametrize("conv", BOTH)
@pytest.mark.parametrize(
    ("cls", "base", "field"),
    [pytest.param(*row, id=f"{row[0].__name__}.{row[2]}") for row in NULLABLE],
)
def test_explicit_null_means_absent(
    conv: cattrs.Converter, cls: type[Any], base: dict[str, Any], field: str
) -> None:
    obj = conv.structure({**base, field: None}, cls)
    assert getattr(obj, field) is None
    assert obj == conv.structure(base, cls)
    assert dict(obj.unknown_fields) == {}
    assert conv.unstructure(obj) == base


# Counts the API's types require but documented examples leave out: lenient reads null or
# absence as None, strict refuses both.
WIRE_REQUIRED = (
    [
        (BetaServerToolUsage, {"web_search_requests": 1, "web_fetch_requests": 2}, name)
        for name in ("web_search_requests", "web_fetch_requests")
    ]
    + [
        (cls, {**_ITERATION_BASE, "type": kind, "model": "m"}, name)
        for cls, kind in (
            (BetaMessageIterationUsage, "message"),
            (BetaAdvisorMessageIterationUsage, "advisor_message"),
            (BetaFallbackMessageIterationUsage, "fallback_message"),
        )
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    + [
        (BetaCompactionIterationUsage, {**_ITERATION_BASE, "type": "compaction"}, name)
        for name in ("cache_creation_input_tokens", "cache_read_input_tokens")
    ]
)


@pytest.mark.parametrize("null", [True, False], ids=["null", "missing"])
@pytest.mark.parametrize(
    ("cls", "full", "field"),
    [pytest.param(*row, id=f"{row[0].__name__}.{row[2]}") for row in WIRE_REQUIRED],
)
def test_wire_required_counts(cls: type[Any], full: dict[str, Any], field: str, null: bool) -> None:
    without = {k: v for k, v in full.items() if k != field}
    payload = {**without, field: None} if null else without
    obj = LENIENT.structure(payload, cls)
    assert getattr(obj, field) is None
    assert LENIENT.unstructure(obj) == without
    problem = "required field is null" if null else "required field is missing"
    assert_refused(STRICT, payload, cls, field, problem)


def test_wire_required_counts_nested_paths() -> None:
    payload = {
        "output_tokens": 1,
        "server_tool_use": {"web_search_requests": 1},
        "iterations": [_ITERATION_BASE],
    }
    assert_round_trip(LENIENT, payload, BetaMessageDeltaUsage)
    assert_refused(
        STRICT,
        payload,
        BetaMessageDeltaUsage,
        "server_tool_use.web_fetch_requests",
        "required field is missing",
    )
    payload = _usage(
        iterations=[_ITERATION_BASE, {"type": "compaction", "input_tokens": 1, "output_tokens": 2}]
    )
    assert_round_trip(LENIENT, payload, BetaUsage)
    assert_refused(
        STRICT,
        payload,
        BetaUsage,
        "iterations[1].cache_creation_input_tokens",
        "required field is missing",
    )


@pytest.mark.parametrize("conv", BOTH)
def test_nested_null_means_absent(conv: cattrs.Converter) -> None:
    payload = {
        "input_tokens": 1,
        "output_tokens": 2,
        "iterations": [{**_ITERATION_BASE, "cache_creation": None, "model": None}],
        "fallback_credit": {
            "status": {"type": "not_applied", "reason": "r", "remove_to_redeem": None}
        },
    }
    usage = conv.structure(payload, BetaUsage)
    assert conv.unstructure(usage) == {
        "input_tokens": 1,
        "output_tokens": 2,
        "iterations": [_ITERATION_BASE],
        "fallback_credit": {"status": {"type": "not_applied", "reason": "r"}},
    }


def test_null_inside_unknown_field_is_kept() -> None:
    payload = {"input_tokens": 1, "output_tokens": 2, "future": None, "nested": {"x": None}}
    usage = LENIENT.structure(payload, BetaUsage)
    assert usage.unknown_fields == {"future": None, "nested": {"x": None}}
    assert LENIENT.unstructure(usage) == payload


# --- Refusals --------------------------------------------------------------------------------

_CACHE = {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 2}


def _usage(**fields: Any) -> dict[str, Any]:
    return {"input_tokens": 10, "output_tokens": 20, **fields}


def _iteration(kind: str = "message", **fields: Any) -> dict[str, Any]:
    return {**_ITERATION_BASE, "type": kind, **fields}


def _not_integer(value: Any) -> str:
    return f"expected a non-negative integer, got {value!r}"


# (id, class, payload, path, problem). None of these payloads has anything unknown, so the
# lenient and the strict converter must refuse them the same way.
REFUSALS: list[tuple[str, type[Any], Any, str, str]] = [
    ("bool-true", BetaUsage, _usage(output_tokens=True), "output_tokens", _not_integer(True)),
    ("bool-false", BetaUsage, _usage(input_tokens=False), "input_tokens", _not_integer(False)),
    ("float-3.9", BetaUsage, _usage(output_tokens=3.9), "output_tokens", _not_integer(3.9)),
    ("float-3.0", BetaUsage, _usage(input_tokens=3.0), "input_tokens", _not_integer(3.0)),
    ("string-7", BetaUsage, _usage(output_tokens="7"), "output_tokens", _not_integer("7")),
    (
        "string-15",
        BetaMessageDeltaUsage,
        {"output_tokens": "15"},
        "output_tokens",
        _not_integer("15"),
    ),
    (
        "negative",
        BetaUsage,
        _usage(cache_read_input_tokens=-1),
        "cache_read_input_tokens",
        _not_integer(-1),
    ),
    (
        "above-2**63-1",
        BetaUsage,
        _usage(input_tokens=2**63),
        "input_tokens",
        "count out of range (above 2**63 - 1), got 9223372036854775808",
    ),
    (
        "far-above-2**63-1",
        BetaCacheCreation,
        {"ephemeral_5m_input_tokens": 10**30, "ephemeral_1h_input_tokens": 0},
        "ephemeral_5m_input_tokens",
        f"count out of range (above 2**63 - 1), got {10**30}",
    ),
    (
        "null-required-count",
        BetaUsage,
        _usage(input_tokens=None),
        "input_tokens",
        "required field is null",
    ),
    (
        "missing-required-count",
        BetaUsage,
        {"output_tokens": 1},
        "input_tokens",
        "required field is missing",
    ),
    (
        "delta-missing-output",
        BetaMessageDeltaUsage,
        {"input_tokens": 1},
        "output_tokens",
        "required field is missing",
    ),
    (
        "delta-null-output",
        BetaMessageDeltaUsage,
        {"output_tokens": None},
        "output_tokens",
        "required field is null",
    ),
    ("root-list", BetaUsage, [], "", "expected an object (BetaUsage), got []"),
    (
        "root-null",
        BetaMessageDeltaUsage,
        None,
        "",
        "expected an object (BetaMessageDeltaUsage), got None",
    ),
    (
        "root-string",
        BetaCacheCreation,
        "{}",
        "",
        "expected an object (BetaCacheCreation), got '{}'",
    ),
    (
        "list-for-object",
        BetaUsage,
        _usage(cache_creation=[1, 2]),
        "cache_creation",
        "expected an object (BetaCacheCreation), got [1, 2]",
    ),
    (
        "list-for-server-tools",
        BetaMessageDeltaUsage,
        {"output_tokens": 1, "server_tool_use": []},
        "server_tool_use",
        "expected an object (BetaServerToolUsage), got []",
    ),
    (
        "list-for-iteration",
        BetaUsage,
        _usage(iterations=[_iteration(), [1]]),
        "iterations[1]",
        "expected an object (iteration), got [1]",
    ),
    (
        "list-for-status",
        BetaUsage,
        _usage(fallback_credit={"status": []}),
        "fallback_credit.status",
        "expected an object (fallback credit status), got []",
    ),
    ("object-for-list", BetaUsage, _usage(iterations={}), "iterations", "expected a list, got {}"),
    (
        "object-for-string-list",
        BetaUsage,
        _usage(
            fallback_credit={
                "status": {"type": "not_applied", "reason": "r", "remove_to_redeem": {}}
            }
        ),
        "fallback_credit.status.remove_to_redeem",
        "expected a list of strings, got {}",
    ),
    (
        "iteration-without-type",
        BetaUsage,
        _usage(iterations=[{k: v for k, v in _ITERATION_BASE.items() if k != "type"}]),
        "iterations[0].type",
        "required field is missing",
    ),
    (
        "iteration-type-not-string",
        BetaMessageDeltaUsage,
        {"output_tokens": 1, "iterations": [_iteration(), _iteration(type=5)]},
        "iterations[1].type",
        "expected a string, got 5",
    ),
    (
        "status-without-type",
        BetaFallbackCreditUsage,
        {"status": {"reason": "r"}},
        "status.type",
        "required field is missing",
    ),
    (
        "wrong-type-compaction",
        BetaCompactionIterationUsage,
        _iteration("message"),
        "type",
        "expected 'compaction', got 'message'",
    ),
    (
        "wrong-type-message",
        BetaMessageIterationUsage,
        _iteration("advisor_message", model="m"),
        "type",
        "expected 'message', got 'advisor_message'",
    ),
    (
        "wrong-type-advisor",
        BetaAdvisorMessageIterationUsage,
        _iteration("fallback_message", model="m"),
        "type",
        "expected 'advisor_message', got 'fallback_message'",
    ),
    (
        "wrong-type-fallback-message",
        BetaFallbackMessageIterationUsage,
        _iteration("message", model="m"),
        "type",
        "expected 'fallback_message', got 'message'",
    ),
    (
        "wrong-type-redeemed",
        BetaFallbackCreditRedeemed,
        {"type": "not_applied"},
        "type",
        "expected 'redeemed', got 'not_applied'",
    ),
    (
        "wrong-type-not-applied",
        BetaFallbackCreditNotApplied,
        {"type": "redeemed", "reason": "r"},
        "type",
        "expected 'not_applied', got 'redeemed'",
    ),
    (
        "nested-iteration-count",
        BetaUsage,
        _usage(iterations=[_iteration(), _iteration(input_tokens="15")]),
        "iterations[1].input_tokens",
        "expected a non-negative integer, got '15'",
    ),
    (
        "nested-iteration-cache-split",
        BetaUsage,
        _usage(
            iterations=[_iteration(cache_creation={**_CACHE, "ephemeral_5m_input_tokens": 1.5})]
        ),
        "iterations[0].cache_creation.ephemeral_5m_input_tokens",
        "expected a non-negative integer, got 1.5",
    ),
    (
        "nested-iteration-cache-split-null",
        BetaMessageDeltaUsage,
        {
            "output_tokens": 1,
            "iterations": [
                _iteration(
                    "compaction", cache_creation={**_CACHE, "ephemeral_5m_input_tokens": None}
                )
            ],
        },
        "iterations[0].cache_creation.ephemeral_5m_input_tokens",
        "required field is null",
    ),
    (
        "nested-remove-to-redeem",
        BetaUsage,
        _usage(
            fallback_credit={
                "status": {"type": "not_applied", "reason": "r", "remove_to_redeem": ["top_k", 3]}
            }
        ),
        "fallback_credit.status.remove_to_redeem[1]",
        "expected a string, got 3",
    ),
    (
        "nested-server-tool-count",
        BetaUsage,
        _usage(server_tool_use={"web_search_requests": "1", "web_fetch_requests": 0}),
        "server_tool_use.web_search_requests",
        _not_integer("1"),
    ),
    (
        "nested-thinking-tokens",
        BetaMessageDeltaUsage,
        {"output_tokens": 1, "output_tokens_details": {"thinking_tokens": -3}},
        "output_tokens_details.thinking_tokens",
        _not_integer(-3),
    ),
    (
        "nested-top-cache-split",
        BetaUsage,
        _usage(cache_creation={"ephemeral_5m_input_tokens": 1}),
        "cache_creation.ephemeral_1h_input_tokens",
        "required field is missing",
    ),
    (
        "advisor-model-missing",
        BetaUsage,
        _usage(iterations=[_iteration(), _iteration("advisor_message")]),
        "iterations[1].model",
        "required field is missing",
    ),
    (
        "fallback-message-model-null",
        BetaUsage,
        _usage(iterations=[_iteration("fallback_message", model=None)]),
        "iterations[0].model",
        "required field is null",
    ),
    (
        "model-not-string",
        BetaUsage,
        _usage(iterations=[_iteration(model=7)]),
        "iterations[0].model",
        "expected a string, got 7",
    ),
    (
        "inference-geo-not-string",
        BetaUsage,
        _usage(inference_geo=5),
        "inference_geo",
        "expected a string, got 5",
    ),
    (
        "service-tier-not-string",
        BetaUsage,
        _usage(service_tier=1),
        "service_tier",
        "expected a string, got 1",
    ),
    (
        "speed-not-string",
        BetaUsage,
        _usage(speed=["fast"]),
        "speed",
        "expected a string, got ['fast']",
    ),
    (
        "status-missing",
        BetaUsage,
        _usage(fallback_credit={}),
        "fallback_credit.status",
        "required field is missing",
    ),
    (
        "status-null",
        BetaFallbackCreditUsage,
        {"status": None},
        "status",
        "required field is null",
    ),
    (
        "reason-missing",
        BetaFallbackCreditUsage,
        {"status": {"type": "not_applied"}},
        "status.reason",
        "required field is missing",
    ),
    (
        "reason-not-string",
        BetaFallbackCreditUsage,
        {"status": {"type": "not_applied", "reason": 4}},
        "status.reason",
        "expected a string, got 4",
    ),
    (
        "long-value-shortened",
        BetaUsage,
        _usage(output_tokens="x" * 100),
        "output_tokens",
        "expected a non-negative integer, got '" + "x" * 56 + "...",
    ),
]


@pytest.mark.parametrize("conv", BOTH)
@pytest.mark.parametrize(
    ("cls", "payload", "path", "problem"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
def test_refusal_names_path_and_problem(
    conv: cattrs.Converter, cls: type[Any], payload: Any, path: str, problem: str
) -> None:
    assert_refused(conv, payload, cls, path, problem)


def test_counts_of_unknown_iteration_types_are_checked() -> None:
    # Lenient only: the strict converter refuses the unknown type before looking at counts.
    assert_refused(
        LENIENT,
        _usage(iterations=[{"type": "future", "output_tokens": 2.5}]),
        BetaUsage,
        "iterations[0].output_tokens",
        _not_integer(2.5),
    )


@pytest.mark.parametrize("conv", BOTH)
def test_iteration_with_null_type_says_null(conv: cattrs.Converter) -> None:
    assert_refused(
        conv,
        _usage(iterations=[_iteration(type=None)]),
        BetaUsage,
        "iterations[0].type",
        "required field is null",
    )


@pytest.mark.parametrize("conv", BOTH)
def test_count_bounds_are_inclusive(conv: cattrs.Converter) -> None:
    usage = conv.structure(_usage(input_tokens=0, output_tokens=MAX_COUNT), BetaUsage)
    assert (usage.input_tokens, usage.output_tokens) == (0, MAX_COUNT)


@pytest.mark.parametrize("conv", BOTH)
@pytest.mark.parametrize("value", [3.9, 3.0, "3", True])
def test_int_coercion_never_applies(conv: cattrs.Converter, value: Any) -> None:
    # A bare cattrs converter turns these into 3 (or 1): the hazard this guards against.
    assert type(cattrs.Converter().structure(value, int)) is int
    with pytest.raises(UsageValidationError):
        conv.structure(_usage(output_tokens=value), BetaUsage)


def test_error_class_and_attributes() -> None:
    exc = assert_refused(
        LENIENT,
        _usage(iterations=[_iteration(), _iteration(input_tokens="15")]),
        BetaUsage,
        "iterations[1].input_tokens",
        "expected a non-negative integer, got '15'",
    )
    assert issubclass(usagetally.UsageValidationError, usagetally.UsageError)
    assert issubclass(usagetally.UsageValidationError, ValueError)
    assert str(exc) == "iterations[1].input_tokens: expected a non-negative integer, got '15'"


def test_a_read_only_mapping_is_accepted() -> None:
    payload = MappingProxyType({"input_tokens": 1, "output_tokens": 2, "x": 3})
    usage = LENIENT.structure(payload, BetaUsage)
    assert usage == BetaUsage(input_tokens=1, output_tokens=2, unknown_fields={"x": 3})


# --- Strict mode -----------------------------------------------------------------------------

_ALL_FIELDS = next(c for c in CASES if c.name == "usage_all_fields").payload


def _unknown_field_locations() -> Iterator[Any]:
    for loc in object_locations(copy.deepcopy(_ALL_FIELDS), "BetaUsage"):
        yield pytest.param(loc.path, loc.class_name, id=loc.path or "<root>")


@pytest.mark.parametrize(("where", "class_name"), list(_unknown_field_locations()))
def test_unknown_field_at_every_level(where: str, class_name: str) -> None:
    payload = copy.deepcopy(_ALL_FIELDS)
    target = next(loc for loc in object_locations(payload, "BetaUsage") if loc.path == where)
    target.obj["surprise"] = {"nested": [1, None, "x"]}
    path = f"{where}.surprise" if where else "surprise"

    usage = assert_round_trip(LENIENT, payload, BetaUsage)
    assert_matches_wire(usage, payload)
    assert_refused(STRICT, payload, BetaUsage, path, f"unknown field in {class_name}")


def test_every_level_was_reached() -> None:
    paths = {loc.path for loc in object_locations(copy.deepcopy(_ALL_FIELDS), "BetaUsage")}
    assert paths == {
        "",
        "cache_creation",
        "server_tool_use",
        "output_tokens_details",
        "fallback_credit",
        "fallback_credit.status",
        "iterations[0]",
        "iterations[1]",
        "iterations[1].cache_creation",
        "iterations[2]",
        "iterations[3]",
        "iterations[4]",
        "iterations[4].cache_creation",
    }


@pytest.mark.parametrize("field", ["cache_creation", "service_tier", "speed", "inference_geo"])
def test_delta_does_not_know_start_only_fields(field: str) -> None:
    value: Any = _CACHE if field == "cache_creation" else "standard"
    payload = {"output_tokens": 1, field: value}
    delta = assert_round_trip(LENIENT, payload, BetaMessageDeltaUsage)
    assert delta.unknown_fields == {field: value}
    assert_refused(
        STRICT, payload, BetaMessageDeltaUsage, field, "unknown field in BetaMessageDeltaUsage"
    )


def test_unknown_iteration_type() -> None:
    entry = {"type": "tool_search_message", "input_tokens": 3, "tools": ["a"]}
    payload = _usage(iterations=[_iteration(), entry])
    usage = assert_round_trip(LENIENT, payload, BetaUsage)
    assert usage.iterations is not None
    assert usage.iterations[1] == UnknownIterationUsage(
        type="tool_search_message", input_tokens=3, unknown_fields={"tools": ["a"]}
    )
    assert_refused(
        STRICT,
        payload,
        BetaUsage,
        "iterations[1].type",
        "unknown iteration type 'tool_search_message'",
    )


def test_unknown_fallback_status_type() -> None:
    payload = _usage(fallback_credit={"status": {"type": "deferred", "until": 5}})
    usage = assert_round_trip(LENIENT, payload, BetaUsage)
    assert usage.fallback_credit is not None
    assert usage.fallback_credit.status == UnknownFallbackCreditStatus(
        type="deferred", unknown_fields={"until": 5}
    )
    assert_refused(
        STRICT,
        payload,
        BetaUsage,
        "fallback_credit.status.type",
        "unknown fallback credit status type 'deferred'",
    )


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("service_tier", "flex", "'batch', 'priority', 'standard'"),
        ("service_tier", "Standard", "'batch', 'priority', 'standard'"),
        ("service_tier", "", "'batch', 'priority', 'standard'"),
        ("speed", "turbo", "'fast', 'standard'"),
        ("speed", "priority", "'fast', 'standard'"),
    ],
)
def test_undocumented_service_tier_and_speed(field: str, value: str, allowed: str) -> None:
    payload = _usage(**{field: value})
    usage = assert_round_trip(LENIENT, payload, BetaUsage)
    assert getattr(usage, field) == value
    assert_refused(STRICT, payload, BetaUsage, field, f"expected one of {allowed}, got {value!r}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("service_tier", "standard"),
        ("service_tier", "priority"),
        ("service_tier", "batch"),
        ("speed", "standard"),
        ("speed", "fast"),
    ],
)
def test_documented_service_tier_and_speed_pass_strict(field: str, value: str) -> None:
    assert getattr(assert_round_trip(STRICT, _usage(**{field: value}), BetaUsage), field) == value


def test_converters_are_independent_objects() -> None:
    payload = _usage(surprise=1)
    fresh_strict = make_converter(strict=True)
    fresh_lenient = make_converter()
    assert fresh_strict is not STRICT
    assert fresh_lenient is not LENIENT
    # Building a strict converter must not change the shared default one.
    assert LENIENT.structure(payload, BetaUsage).unknown_fields == {"surprise": 1}
    assert fresh_lenient.structure(payload, BetaUsage).unknown_fields == {"surprise": 1}
    with pytest.raises(UsageValidationError):
        fresh_strict.structure(payload, BetaUsage)


# --- Regressions: bugs found by these tests, fixed ---------------------------------------


@pytest.mark.parametrize("conv", BOTH)
def test_structure_as_public_union_aliases(conv: cattrs.Converter) -> None:
    # Union aliases are not ``type`` objects for mypy; cattrs accepts them at runtime.
    iteration_usage: Any = usagetally.IterationUsage
    fallback_credit_status: Any = usagetally.FallbackCreditStatus
    entry = _iteration("compaction")
    assert conv.structure(entry, iteration_usage) == conv.structure(
        entry, BetaCompactionIterationUsage
    )
    status = {"type": "not_applied", "reason": "r"}
    assert conv.structure(status, fallback_credit_status) == conv.structure(
        status, BetaFallbackCreditNotApplied
    )


@pytest.mark.parametrize(
    ("payload", "container"),
    [
        pytest.param(_usage(**{"": 1}), "", id="top-level"),
        pytest.param(
            _usage(server_tool_use={"web_search_requests": 0, "web_fetch_requests": 0, "": 1}),
            "server_tool_use",
            id="nested",
        ),
    ],
)
def test_unknown_field_with_empty_name_is_pointed_at(
    payload: dict[str, Any], container: str
) -> None:
    with pytest.raises(UsageValidationError) as info:
        STRICT.structure(payload, BetaUsage)
    assert info.value.problem.startswith("unknown field in ")
    assert info.value.path != container


def test_structured_model_does_not_share_state_with_payloads() -> None:
    payload = _usage(extra={"ids": [1]})
    usage = LENIENT.structure(payload, BetaUsage)
    payload["extra"]["ids"].append(2)
    out = LENIENT.unstructure(usage)
    out["extra"]["ids"].append(3)
    assert usage.unknown_fields == {"extra": {"ids": [1]}}


# --- Properties ------------------------------------------------------------------------------


@payload_settings
@given(beta_usage_payloads(lenient=True))
def test_lenient_round_trip_beta_usage(payload: dict[str, Any]) -> None:
    usage = assert_round_trip(LENIENT, payload, BetaUsage)
    assert_matches_wire(usage, payload)


@payload_settings
@given(message_delta_usage_payloads(lenient=True))
def test_lenient_round_trip_message_delta_usage(payload: dict[str, Any]) -> None:
    delta = assert_round_trip(LENIENT, payload, BetaMessageDeltaUsage)
    assert_matches_wire(delta, payload)


@payload_settings
@given(st.data())
def test_strict_round_trip(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from([BetaUsage, BetaMessageDeltaUsage]))
    payloads = beta_usage_payloads if cls is BetaUsage else message_delta_usage_payloads
    payload = data.draw(payloads(lenient=False))
    obj = assert_round_trip(STRICT, payload, cls)
    assert obj == assert_round_trip(LENIENT, payload, cls)
    assert_matches_wire(obj, payload)


def _mutation_params() -> list[Any]:
    # The lenient converter on payloads with unknowns; the strict one on payloads without.
    return [
        pytest.param(conv, lenient, cls, id=f"{conv_id}-{cls.__name__}")
        for conv, lenient, conv_id in ((LENIENT, True, "lenient"), (STRICT, False, "strict"))
        for cls in (BetaUsage, BetaMessageDeltaUsage)
    ]


def _payloads(cls: type[Any], lenient: bool) -> st.SearchStrategy[dict[str, Any]]:
    if cls is BetaUsage:
        return beta_usage_payloads(lenient=lenient)
    return message_delta_usage_payloads(lenient=lenient)


@pytest.mark.parametrize(("conv", "lenient", "cls"), _mutation_params())
@payload_settings
@given(data=st.data())
def test_invalid_count_error_points_at_it(
    conv: cattrs.Converter, lenient: bool, cls: type[Any], data: st.DataObject
) -> None:
    mutation: Mutation = data.draw(
        invalid_count_mutations(_payloads(cls, lenient), cls.__name__, lenient=lenient),
        label="mutation",
    )
    assert_refused(conv, mutation.payload, cls, mutation.path, mutation.problem)


@pytest.mark.parametrize("cls", [BetaUsage, BetaMessageDeltaUsage])
@payload_settings
@given(data=st.data())
def test_strict_refuses_what_lenient_keeps(cls: type[Any], data: st.DataObject) -> None:
    mutation: Mutation = data.draw(
        strict_violation_mutations(_payloads(cls, False), cls.__name__), label="mutation"
    )
    obj = assert_round_trip(LENIENT, mutation.payload, cls)
    assert_matches_wire(obj, mutation.payload)
    assert_refused(STRICT, mutation.payload, cls, mutation.path, mutation.problem)
