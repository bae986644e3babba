"""Tests of ``_wire.py``, the catalogue of the wire facts: it agrees with the models, the SDK
and the modules that read it, and its two rules (the serving attempt, the top level's
entries) hold on hand-built iterations."""

from __future__ import annotations

import importlib
import typing

import attrs
import pytest

from usagetally import (
    BetaAdvisorMessageIterationUsage,
    BetaCompactionIterationUsage,
    BetaFallbackMessageIterationUsage,
    BetaMessageIterationUsage,
    BetaUsage,
    TokenCounts,
    UnknownIterationUsage,
    _models,
    _wire,
    otel,
)


def test_every_iteration_class_of_the_models_is_catalogued() -> None:
    classes = set(typing.get_args(_models.IterationUsage)) - {UnknownIterationUsage}
    assert set(_wire.ITERATION_CLASSES.values()) == classes
    for name, cls in _wire.ITERATION_CLASSES.items():
        assert attrs.fields_dict(cls)["type"].default == name


def test_every_fallback_status_class_is_catalogued() -> None:
    classes = set(typing.get_args(_models.FallbackCreditStatus))
    assert set(_wire.FALLBACK_STATUS_CLASSES.values()) == classes - {
        _models.UnknownFallbackCreditStatus
    }
    for name, cls in _wire.FALLBACK_STATUS_CLASSES.items():
        assert attrs.fields_dict(cls)["type"].default == name


def test_the_counts_are_fields_of_every_usage_shape() -> None:
    assert _wire.model_fields(TokenCounts) == _wire.COUNT_FIELDS
    for cls in (BetaUsage, *_wire.ITERATION_CLASSES.values(), UnknownIterationUsage):
        assert set(_wire.COUNT_FIELDS) <= set(_wire.model_fields(cls)), cls
    assert {field for field, _ in otel._BILLED} == set(_wire.COUNT_FIELDS)


def test_delta_fields_are_the_delta_model_and_a_subset_of_the_usage() -> None:
    assert _wire.model_fields(_models.BetaMessageDeltaUsage) == _wire.DELTA_USAGE_FIELDS
    assert set(_wire.DELTA_USAGE_FIELDS) <= set(_wire.model_fields(BetaUsage))


def test_child_shapes_name_fields_of_the_models() -> None:
    fields = {
        name
        for cls in (BetaUsage, _models.BetaFallbackCreditUsage)
        for name in _wire.model_fields(cls)
    }
    assert set(_wire.CHILD_SHAPES) <= fields


def test_every_catalogued_sdk_class_exists_in_the_sdk_with_fields_of_ours() -> None:
    pytest.importorskip("anthropic")
    beta = importlib.import_module("anthropic.types.beta")
    plain = importlib.import_module("anthropic.types")
    for name, ours in _wire.SDK_CLASSES.items():
        sdk = getattr(beta, name, None) or getattr(plain, name)
        assert set(sdk.model_fields) <= set(_wire.model_fields(ours)), name
        if name.startswith("Beta"):
            assert set(sdk.model_fields) == set(_wire.model_fields(ours)), name


def test_the_sdk_copies_exactly_the_delta_fields() -> None:
    pytest.importorskip("anthropic")
    beta = importlib.import_module("anthropic.types.beta")
    assert set(beta.BetaMessageDeltaUsage.model_fields) == set(_wire.DELTA_USAGE_FIELDS)


def _message(output: int = 1) -> BetaMessageIterationUsage:
    return BetaMessageIterationUsage(input_tokens=1, output_tokens=output)


def _fallback(model: str) -> BetaFallbackMessageIterationUsage:
    return BetaFallbackMessageIterationUsage(model=model, input_tokens=2, output_tokens=3)


def test_the_serving_attempt_is_the_last_fallback_entry() -> None:
    assert _wire.serving_index([]) is None
    assert _wire.serving_index([_message(), _message()]) is None
    entries: list[_models.IterationUsage] = [
        _message(0),
        _fallback("a"),
        _message(0),
        _fallback("b"),
    ]
    assert _wire.serving_index(entries) == 3
    assert _wire.top_level_entries(entries) == [entries[3]]


def test_the_top_level_sums_the_message_entries_only() -> None:
    compaction = BetaCompactionIterationUsage(input_tokens=9, output_tokens=9)
    advisor = BetaAdvisorMessageIterationUsage(model="m", input_tokens=7, output_tokens=7)
    unknown = UnknownIterationUsage(type="mystery", input_tokens=5)
    first, second = _message(1), _message(2)
    entries: list[_models.IterationUsage] = [compaction, first, advisor, second, unknown]
    assert _wire.top_level_entries(entries) == [first, second]
    roles = {name: t.top_level for name, t in _wire.ITERATION_TYPES.items()}
    assert roles == {
        "message": "sum",
        "compaction": "outside",
        "advisor_message": "outside",
        "fallback_message": "serving",
    }
