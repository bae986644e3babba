"""Tests of ``usagetally._models``: frozen, keyword-only, slotted, hashable value classes."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import attrs
import pytest
from hypothesis import given
from strategies import beta_usage_payloads, message_delta_usage_payloads, payload_settings

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
    FallbackCreditStatus,
    IterationUsage,
    UnknownFallbackCreditStatus,
    UnknownIterationUsage,
    converter,
)

_CACHE = BetaCacheCreation(ephemeral_5m_input_tokens=5, ephemeral_1h_input_tokens=6)
_COUNTS: dict[str, Any] = {
    "input_tokens": 1,
    "output_tokens": 2,
    "cache_creation_input_tokens": 11,
    "cache_read_input_tokens": 3,
}


def _samples() -> dict[type[Any], dict[str, Any]]:
    """Keyword arguments of one instance of each model class, every field set."""
    iterations = (
        BetaCompactionIterationUsage(**_COUNTS, cache_creation=_CACHE),
        BetaMessageIterationUsage(**_COUNTS, model="m"),
        BetaAdvisorMessageIterationUsage(**_COUNTS, model="a"),
        BetaFallbackMessageIterationUsage(**_COUNTS, model="f"),
        UnknownIterationUsage(type="future", input_tokens=4),
    )
    fallback = BetaFallbackCreditUsage(status=BetaFallbackCreditRedeemed())
    return {
        BetaUsage: {
            **_COUNTS,
            "cache_creation": _CACHE,
            "server_tool_use": BetaServerToolUsage(web_search_requests=1, web_fetch_requests=0),
            "service_tier": "standard",
            "speed": "fast",
            "inference_geo": "us",
            "iterations": iterations,
            "output_tokens_details": BetaOutputTokensDetails(thinking_tokens=1),
            "fallback_credit": fallback,
        },
        BetaMessageDeltaUsage: {
            **_COUNTS,
            "server_tool_use": BetaServerToolUsage(web_search_requests=1, web_fetch_requests=0),
            "output_tokens_details": BetaOutputTokensDetails(thinking_tokens=1),
            "iterations": iterations,
            "fallback_credit": fallback,
        },
        BetaCacheCreation: {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 6},
        BetaServerToolUsage: {"web_search_requests": 1, "web_fetch_requests": 2},
        BetaOutputTokensDetails: {"thinking_tokens": 7},
        BetaFallbackCreditUsage: {
            "status": BetaFallbackCreditNotApplied(reason="r", remove_to_redeem=("a",))
        },
        BetaFallbackCreditRedeemed: {"type": "redeemed"},
        BetaFallbackCreditNotApplied: {
            "type": "not_applied",
            "reason": "r",
            "remove_to_redeem": ("a", "b"),
        },
        UnknownFallbackCreditStatus: {"type": "pending"},
        BetaMessageIterationUsage: {
            "type": "message",
            **_COUNTS,
            "cache_creation": _CACHE,
            "model": "m",
        },
        BetaCompactionIterationUsage: {"type": "compaction", **_COUNTS, "cache_creation": _CACHE},
        BetaAdvisorMessageIterationUsage: {
            "type": "advisor_message",
            **_COUNTS,
            "cache_creation": _CACHE,
            "model": "a",
        },
        BetaFallbackMessageIterationUsage: {
            "type": "fallback_message",
            **_COUNTS,
            "cache_creation": _CACHE,
            "model": "f",
        },
        UnknownIterationUsage: {
            "type": "future",
            **_COUNTS,
            "cache_creation": _CACHE,
            "model": "x",
        },
    }


SAMPLES = _samples()
CLASSES = list(SAMPLES)
CLASS_PARAMS = [pytest.param(cls, id=cls.__name__) for cls in CLASSES]


def _build(cls: type[Any], **overrides: Any) -> Any:
    return cls(**{**SAMPLES[cls], **overrides})


def test_samples_set_every_field() -> None:
    for cls, kwargs in SAMPLES.items():
        names = {f.name for f in attrs.fields(cls)} - {"unknown_fields"}
        assert set(kwargs) == names, cls.__name__


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_frozen(cls: type[Any]) -> None:
    obj = _build(cls)
    for field in attrs.fields(cls):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(obj, field.name, getattr(obj, field.name))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            delattr(obj, field.name)
    assert obj == _build(cls)


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_keyword_only(cls: type[Any]) -> None:
    assert all(field.kw_only for field in attrs.fields(cls))
    with pytest.raises(TypeError):
        cls(*SAMPLES[cls].values())


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_slotted(cls: type[Any]) -> None:
    assert "__slots__" in vars(cls)
    obj = _build(cls)
    assert not hasattr(obj, "__dict__")
    with pytest.raises(AttributeError):
        object.__setattr__(obj, "not_a_field", 1)


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_hashable_and_equal_objects_hash_equal(cls: type[Any]) -> None:
    first, second = _build(cls), _build(cls)
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_unknown_fields_do_not_break_hashing(cls: type[Any]) -> None:
    # Unhashable JSON values (lists, objects) in unknown_fields.
    first = _build(cls, unknown_fields={"a": [1, {"b": None}], "c": {"d": [2]}})
    second = _build(cls, unknown_fields={"a": [1, {"b": None}], "c": {"d": [2]}})
    assert first == second
    assert hash(first) == hash(second)
    assert {first: 1}[second] == 1


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_equality_includes_unknown_fields(cls: type[Any]) -> None:
    plain = _build(cls)
    assert plain != _build(cls, unknown_fields={"extra": 1})
    assert _build(cls, unknown_fields={"extra": 1}) != _build(cls, unknown_fields={"extra": 2})
    assert _build(cls, unknown_fields={}) == plain


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_equality_includes_every_field(cls: type[Any]) -> None:
    plain = _build(cls)
    for name, value in SAMPLES[cls].items():
        other = "other" if isinstance(value, str) else None
        assert _build(cls, **{name: other}) != plain, name


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_default_unknown_fields_is_empty_and_read_only(cls: type[Any]) -> None:
    obj = _build(cls)
    assert obj.unknown_fields == {}
    with pytest.raises(TypeError):
        obj.unknown_fields["x"] = 1
    assert obj.unknown_fields == {}
    assert _build(cls).unknown_fields == {}


def test_structured_unknown_fields_are_read_only() -> None:
    usage = converter.structure({"input_tokens": 1, "output_tokens": 2, "x": 1}, BetaUsage)
    with pytest.raises(TypeError):
        usage.unknown_fields["y"] = 2  # type: ignore[index]


def test_lists_become_tuples() -> None:
    entries = [BetaMessageIterationUsage(**_COUNTS)]
    usage = BetaUsage(input_tokens=1, output_tokens=2, iterations=entries)
    assert usage.iterations == tuple(entries)
    assert type(usage.iterations) is tuple
    delta = BetaMessageDeltaUsage(output_tokens=2, iterations=entries)
    assert type(delta.iterations) is tuple
    status = BetaFallbackCreditNotApplied(reason="r", remove_to_redeem=["a", "b"])
    assert status.remove_to_redeem == ("a", "b")
    assert len({usage, delta, status}) == 3  # hashable, once lists are tuples


def test_structured_lists_are_tuples() -> None:
    usage = converter.structure(
        {
            "input_tokens": 1,
            "output_tokens": 2,
            "iterations": [{"type": "message", **_COUNTS}],
            "fallback_credit": {
                "status": {"type": "not_applied", "reason": "r", "remove_to_redeem": ["a"]}
            },
        },
        BetaUsage,
    )
    assert type(usage.iterations) is tuple
    assert usage.fallback_credit is not None
    status = usage.fallback_credit.status
    assert isinstance(status, BetaFallbackCreditNotApplied)
    assert type(status.remove_to_redeem) is tuple


def test_none_means_absent_never_zero() -> None:
    usage = BetaUsage(input_tokens=0, output_tokens=0)
    for name in (
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
        "speed",
        "inference_geo",
        "iterations",
        "output_tokens_details",
        "fallback_credit",
    ):
        assert getattr(usage, name) is None, name
    delta = BetaMessageDeltaUsage(output_tokens=0)
    assert delta.input_tokens is None
    assert UnknownIterationUsage(type="x").input_tokens is None


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (BetaMessageIterationUsage, "message"),
        (BetaCompactionIterationUsage, "compaction"),
        (BetaAdvisorMessageIterationUsage, "advisor_message"),
        (BetaFallbackMessageIterationUsage, "fallback_message"),
        (BetaFallbackCreditRedeemed, "redeemed"),
        (BetaFallbackCreditNotApplied, "not_applied"),
    ],
)
def test_known_classes_default_their_type(cls: type[Any], kind: str) -> None:
    kwargs = {k: v for k, v in SAMPLES[cls].items() if k != "type"}
    assert cls(**kwargs).type == kind


def test_unknown_classes_require_their_type() -> None:
    with pytest.raises(TypeError):
        UnknownIterationUsage()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        UnknownFallbackCreditStatus()  # type: ignore[call-arg]


def test_union_aliases_list_their_members() -> None:
    assert set(typing.get_args(IterationUsage)) == {
        BetaMessageIterationUsage,
        BetaCompactionIterationUsage,
        BetaAdvisorMessageIterationUsage,
        BetaFallbackMessageIterationUsage,
        UnknownIterationUsage,
    }
    assert set(typing.get_args(FallbackCreditStatus)) == {
        BetaFallbackCreditRedeemed,
        BetaFallbackCreditNotApplied,
        UnknownFallbackCreditStatus,
    }


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_docstring_documents_every_field(cls: type[Any]) -> None:
    # cleandoc: Python 3.13 dedents docstrings when compiling them, earlier versions do not.
    doc = inspect.cleandoc(cls.__doc__ or "")
    assert "Attributes:" in doc
    attributes = doc.split("Attributes:", 1)[1]
    for field in attrs.fields(cls):
        assert f"\n    {field.name}:" in attributes, field.name


def _assert_hashable_value(payload: dict[str, Any], cls: type[Any]) -> None:
    first = converter.structure(payload, cls)
    second = converter.structure(payload, cls)
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@payload_settings
@given(beta_usage_payloads())
def test_structured_beta_usage_is_a_hashable_value(payload: dict[str, Any]) -> None:
    _assert_hashable_value(payload, BetaUsage)


@payload_settings
@given(message_delta_usage_payloads())
def test_structured_message_delta_usage_is_a_hashable_value(payload: dict[str, Any]) -> None:
    _assert_hashable_value(payload, BetaMessageDeltaUsage)


# The models share one __eq__, __hash__ and __repr__ (_models._Model) instead of the methods
# attrs would compile for each class. They must behave exactly as attrs' would: each model is
# checked against a twin made by attrs with the same fields and attrs' own methods.
_TWINS: dict[type, type] = {
    cls: attrs.make_class(
        cls.__name__,
        {
            f.name: attrs.field(default=f.default, repr=f.repr, eq=f.eq, hash=f.hash)
            for f in attrs.fields(cls)
        },
        frozen=True,
        kw_only=True,
    )
    for cls in CLASSES
}


def _twin(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_twin(v) for v in value)
    twin = _TWINS.get(type(value))
    if twin is None:
        return value
    return twin(**{f.name: _twin(getattr(value, f.name)) for f in attrs.fields(type(value))})


def test_every_model_has_attrs_twin_and_uses_the_shared_methods() -> None:
    for cls in CLASSES:
        assert "__eq__" not in vars(cls), cls.__name__
        assert "__repr__" not in vars(cls), cls.__name__
        assert "__eq__" in vars(_TWINS[cls]), cls.__name__  # attrs wrote the twin's own


@pytest.mark.parametrize("cls", CLASS_PARAMS)
def test_shared_methods_behave_as_attrs_generated_ones(cls: type[Any]) -> None:
    obj = _build(cls, unknown_fields={"x": [1, {"y": None}]})
    plain = _build(cls)
    assert repr(obj) == repr(_twin(obj))
    assert repr(plain) == repr(_twin(plain))
    for a, b in [(obj, plain), (plain, _build(cls)), (obj, obj)]:
        assert (a == b) == (_twin(a) == _twin(b))
        assert (a != b) == (_twin(a) != _twin(b))
    assert obj.__eq__(3) is NotImplemented is _twin(obj).__eq__(3)
    assert obj != 3
    # Hashing ignores unknown_fields (hash=False) as attrs' does.
    assert hash(obj) == hash(plain)
    assert hash(_twin(obj)) == hash(_twin(plain))


@payload_settings
@given(beta_usage_payloads(), beta_usage_payloads())
def test_structured_usages_compare_and_print_as_attrs_would(
    first_payload: dict[str, Any], second_payload: dict[str, Any]
) -> None:
    first = converter.structure(first_payload, BetaUsage)
    second = converter.structure(second_payload, BetaUsage)
    assert repr(first) == repr(_twin(first))
    assert (first == second) == (_twin(first) == _twin(second))
    assert (first != second) == (_twin(first) != _twin(second))
