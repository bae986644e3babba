"""Comparing usages of any origin path by path: :func:`usage_diff` and :func:`assert_usage`.

Import them from :mod:`usagetally.testing`, which re-exports them. The field order and the
nested shapes come from the catalogue, ``_wire.py``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from .. import _models
from .._converter import default_converter
from .._errors import LocalTypeError, LocalValueError
from .._wire import (
    CHILD_SHAPES,
    FALLBACK_STATUS_CLASSES,
    ITERATION_CLASSES,
    SDK_CLASSES,
    model_fields,
)


class _Absent:
    """The value of a field one side does not have."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()

_PATH_SEGMENT = r"[A-Za-z_][\w-]*(?:\[(?:\d+|\*)\])*"
_PATH = re.compile(rf"{_PATH_SEGMENT}(?:\.{_PATH_SEGMENT})*")


def _model_class(obj: object) -> type | None:
    """Our model class matching a usage object (ours or the SDK's), or None."""
    cls = type(obj)
    if cls.__module__ == _models.__name__ and attrs.has(cls):
        return cls
    if cls.__module__.split(".")[0] == "anthropic":
        return SDK_CLASSES.get(cls.__name__)
    return None


def _plain(value: Any) -> Any:
    """JSON data with every null dropped from objects, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _to_wire(obj: object, side: str) -> dict[str, Any]:
    if attrs.has(type(obj)):
        data: Any = default_converter().unstructure(obj)
    elif isinstance(obj, Mapping):
        data = obj
    elif callable(getattr(obj, "model_dump", None)):
        data = obj.model_dump(mode="json", by_alias=True, warnings=False)  # type: ignore[attr-defined]
    elif callable(getattr(obj, "to_dict", None)):
        data = obj.to_dict()  # type: ignore[attr-defined]
    else:
        raise LocalTypeError(
            f"{side} must be a usagetally model, an anthropic SDK model or a dict, "
            f"got {type(obj).__name__}"
        )
    if not isinstance(data, Mapping):
        raise LocalTypeError(f"{side} is not an object once converted, got {type(data).__name__}")
    result: dict[str, Any] = _plain(data)
    return result


def _class_of_wire(wire: Mapping[str, Any]) -> type:
    """Return the class a dict most likely is: an iteration entry if typed, else BetaUsage."""
    kind = wire.get("type")
    if isinstance(kind, str):
        return ITERATION_CLASSES.get(kind, _models.UnknownIterationUsage)
    return _models.BetaUsage


def _resolve(shape: type | str | None, exp: Any, act: Any) -> type | None:
    """Return the class giving the field order of an object (by its shape and ``type``)."""
    if not isinstance(shape, str):
        return shape
    table = ITERATION_CLASSES if shape == "iteration" else FALLBACK_STATUS_CLASSES
    unknown = (
        _models.UnknownIterationUsage
        if shape == "iteration"
        else _models.UnknownFallbackCreditStatus
    )
    for side in (exp, act):
        if isinstance(side, Mapping) and isinstance(side.get("type"), str):
            return table.get(side["type"], unknown)
    return unknown


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "<absent>"
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class _Differ:
    def __init__(self, ignore: Collection[str]) -> None:
        patterns = [ignore] if isinstance(ignore, str) else list(ignore)
        regexes = []
        for pattern in patterns:
            if not isinstance(pattern, str) or not _PATH.fullmatch(pattern):
                raise LocalValueError(
                    f"ignore paths look like 'cache_creation' or 'iterations[1].output_tokens' "
                    f"(or 'iterations[*].model'), got {pattern!r}"
                )
            regexes.append(re.escape(pattern).replace(r"\[\*\]", r"\[\d+\]"))
        self._ignore = re.compile(rf"(?:{'|'.join(regexes)})(?:$|[.\[])") if regexes else None
        self.lines: list[str] = []

    def ignored(self, path: str) -> bool:
        return self._ignore is not None and self._ignore.match(path) is not None

    def value(self, path: str, act: Any, exp: Any, shape: type | str | None) -> None:
        if self.ignored(path):
            return
        if isinstance(exp, Mapping) and isinstance(act, Mapping):
            self.object(path, act, exp, _resolve(shape, exp, act))
        elif isinstance(exp, list) and isinstance(act, list):
            self.list(path, act, exp, shape)
        elif not _same(act, exp):
            self.lines.append(f"{path or '<root>'}: expected {_show(exp)}, got {_show(act)}")

    def object(
        self, path: str, act: Mapping[str, Any], exp: Mapping[str, Any], cls: type | None
    ) -> None:
        known = model_fields(cls) if cls is not None else ()
        appearance: dict[str, int] = {}
        for key in (*exp, *act):
            appearance.setdefault(key, len(appearance))
        rank = {name: i for i, name in enumerate(known)}
        keys = sorted(appearance, key=lambda k: (rank.get(k, len(rank)), appearance[k]))
        for key in keys:
            child = CHILD_SHAPES.get(key) if key in rank else None
            self.value(
                f"{path}.{key}" if path else key,
                act.get(key, _ABSENT),
                exp.get(key, _ABSENT),
                child,
            )

    def list(self, path: str, act: list[Any], exp: list[Any], shape: type | str | None) -> None:
        if len(act) != len(exp):
            noun = "entry" if len(exp) == 1 else "entries"
            self.lines.append(f"{path or '<root>'}: expected {len(exp)} {noun}, got {len(act)}")
        for i, (a, e) in enumerate(zip(act, exp, strict=False)):
            self.value(f"{path}[{i}]", a, e, shape)


def usage_diff(actual: object, expected: object, *, ignore: Collection[str] = ()) -> list[str]:
    """Return the paths where two usages differ, one line each, in wire order.

    Both sides are compared in wire form: usagetally models as unstructured by
    :data:`usagetally.converter`, anthropic SDK models (anything with ``model_dump`` or
    ``to_dict``) as dumped, dicts as they are; a field that is ``None`` counts as absent.
    Fields are visited in the order of usagetally's models (unknown fields last), entries of
    lists by index.

    Args:
        actual: The usage the code under test produced.
        expected: The usage it should have produced.
        ignore: Paths to skip, such as ``"cache_creation"`` (a path skips everything under
            it), ``"iterations[1].output_tokens"`` or ``"iterations[*].model"`` (every
            entry). A single string is one path.

    Returns:
        Lines such as ``iterations[1].output_tokens: expected 450, got 451`` or
        ``cache_read_input_tokens: expected 12, got <absent>``; a list whose length
        differs gives ``iterations: expected 3 entries, got 2`` and then the differences of
        the entries both have. Empty when the usages are equal.

    Raises:
        LocalTypeError: A side is not a usage object or a mapping.
        LocalValueError: An ignore path is malformed.

    >>> usage_diff({"input_tokens": 10, "output_tokens": 5, "service_tier": None},
    ...            {"input_tokens": 10, "output_tokens": 6, "cache_read_input_tokens": 3})
    ['output_tokens: expected 6, got 5', 'cache_read_input_tokens: expected 3, got <absent>']

    """
    differ = _Differ(ignore)
    act = _to_wire(actual, "actual")
    exp = _to_wire(expected, "expected")
    cls = _model_class(expected) or _model_class(actual) or _class_of_wire(exp)
    differ.object("", act, exp, cls)
    return differ.lines


def assert_usage(actual: object, expected: object, *, ignore: Collection[str] = ()) -> None:
    """Assert that two usages are equal, listing every differing path when they are not.

    Accepts usagetally models, the anthropic SDK's models and dicts, on either side, and
    compares them in wire form (see :func:`usage_diff`): ``None`` equals absent.

    Args:
        actual: The usage the code under test produced.
        expected: The usage it should have produced.
        ignore: Paths to skip, as for :func:`usage_diff`.

    Raises:
        AssertionError: The usages differ; the message has one line per differing path.
        LocalTypeError: A side is not a usage object or a mapping.
        LocalValueError: An ignore path is malformed.

    >>> from usagetally import BetaUsage
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5),
    ...              {"input_tokens": 10, "output_tokens": 5, "speed": None})
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5, speed="fast"),
    ...              {"input_tokens": 12, "output_tokens": 5})
    Traceback (most recent call last):
    AssertionError: usage differs from expected:
      input_tokens: expected 12, got 10
      speed: expected <absent>, got 'fast'
    >>> assert_usage(BetaUsage(input_tokens=10, output_tokens=5, speed="fast"),
    ...              {"input_tokens": 10, "output_tokens": 5}, ignore=["speed"])

    """
    __tracebackhide__ = True
    lines = usage_diff(actual, expected, ignore=ignore)
    if lines:
        raise AssertionError("usage differs from expected:\n  " + "\n  ".join(lines))
