"""The usagetally pytest plugin, enabled by installing usagetally (entry point ``pytest11``).

It offers:

- the fixtures ``usage_events`` (the :mod:`usagetally.testing` module: builders, chunkers,
  :func:`~usagetally.testing.assert_usage`), ``sse_transcript`` (a factory of transcripts)
  and ``fake_anthropic_client`` (a factory of real ``AsyncAnthropic`` clients answering with
  a transcript; the test is skipped when the anthropic SDK is not installed);
- a ``pytest_assertrepr_compare`` hook: a failing ``assert usage == expected`` between two
  usage objects (usagetally's models or the anthropic SDK's usage models) explains itself
  path by path, as :func:`~usagetally.testing.assert_usage` does.

Loading the plugin is cheap: :mod:`usagetally.testing` and the SDK are imported only when a
fixture or a comparison of usage objects needs them.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ._errors import LocalTypeError
from ._install import install_hint

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = [
    "fake_anthropic_client",
    "pytest_assertrepr_compare",
    "sse_transcript",
    "usage_events",
]


def _is_usage(obj: object) -> bool:
    # Imported here, to keep loading the plugin cheap. The SDK's usage classes are the
    # catalogue's (_wire.SDK_CLASSES).
    from . import _models, _wire

    cls = type(obj)
    module = cls.__module__
    if module == _models.__name__:
        return hasattr(cls, "__attrs_attrs__")
    return module.split(".")[0] == "anthropic" and cls.__name__ in _wire.SDK_CLASSES


def _qualified(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: object, right: object
) -> list[str] | None:
    """Explain a failed ``==`` between two usage objects, one line per differing path.

    The left side is taken as the actual value and the right side as the expected one, as
    in ``assert usage == expected``.

    Args:
        config: The pytest configuration.
        op: The comparison operator.
        left: The left operand.
        right: The right operand.

    Returns:
        The explanation lines, or None (pytest's own explanation) when ``op`` is not
        ``==`` or a side is not a usage object.

    """
    if op != "==" or not (_is_usage(left) and _is_usage(right)):
        return None
    from .testing import usage_diff

    try:
        lines = usage_diff(left, right)
    except Exception:  # let pytest explain what we cannot
        return None
    summary = f"{type(left).__name__}(...) == {type(right).__name__}(...)"
    if not lines:
        return [
            summary,
            "The usages have the same wire form but are of different types:",
            f"{_qualified(left)} and {_qualified(right)}.",
            "Compare them with usagetally.testing.assert_usage(actual, expected).",
        ]
    return [summary, "Usage differs (left: got, right: expected):", *lines]


@pytest.fixture
def usage_events() -> types.ModuleType:
    """Give the :mod:`usagetally.testing` module: event builders, chunkers and assertions.

    Example::

        def test_start(usage_events):
            event = usage_events.message_start(input_tokens=12)
            assert event["message"]["usage"]["input_tokens"] == 12
    """
    from . import testing

    return testing


@pytest.fixture
def sse_transcript() -> Callable[..., bytes]:
    r"""Give a factory of SSE transcripts (bytes).

    ``sse_transcript(events, line_ending="\n")`` encodes events with
    :func:`usagetally.testing.sse_bytes`; ``sse_transcript(**kwargs)`` (no events) builds a
    whole text stream with :func:`usagetally.testing.text_stream` first.

    Example::

        def test_plain(sse_transcript):
            data = sse_transcript(output_tokens=42)
            assert data.startswith(b"event: message_start")
    """
    from . import testing

    def make(
        events: Iterable[Mapping[str, Any]] | None = None,
        /,
        *,
        line_ending: str = "\n",
        **text_stream_kwargs: Any,
    ) -> bytes:
        if events is None:
            events = testing.text_stream(**text_stream_kwargs)
        elif text_stream_kwargs:
            raise LocalTypeError(
                "sse_transcript takes either events or text_stream arguments, not both"
            )
        return testing.sse_bytes(events, line_ending=line_ending)

    return make


@pytest.fixture
def fake_anthropic_client() -> Callable[..., AsyncAnthropic]:
    """Give a factory of real ``AsyncAnthropic`` clients that answer with a transcript.

    ``fake_anthropic_client(transcript, status_code=200, headers=None)`` is
    :func:`usagetally.testing.anthropic_client`: ``transcript`` is SSE bytes, events, or a
    function returning bytes per request. Use the client as ``async with``. The test is
    skipped when the anthropic SDK is not installed.
    """
    try:
        import anthropic  # noqa: F401
        import httpx2  # noqa: F401
    except ImportError:
        pytest.skip(f"fake_anthropic_client needs the anthropic SDK; {install_hint('anthropic')}")
    from .testing import anthropic_client

    return anthropic_client
