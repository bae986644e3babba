"""The one rule for bad arguments (``_errors.py``'s docstring), walked across the public API.

Every bad argument raises a :class:`usagetally.LocalUsageError`: a wrong type a
:class:`usagetally.LocalTypeError` (also a ``TypeError``), a wrong value a
:class:`usagetally.LocalValueError` (also a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import usagetally
import usagetally.otel
import usagetally.testing as kit
from usagetally import LocalTypeError, LocalUsageError, LocalValueError

USAGE = usagetally.BetaUsage(input_tokens=1, output_tokens=1)


def _accumulated() -> usagetally.UsageAccumulator:
    return usagetally.UsageAccumulator()


# (what is called, the call, the expected class)
CASES: list[tuple[str, Callable[[], Any], type[LocalUsageError]]] = [
    (
        "UsageAccumulator(policy=)",
        lambda: usagetally.UsageAccumulator(policy="loud"),  # type: ignore[arg-type]
        LocalValueError,
    ),
    (
        "UsageAccumulator(max_event_size=str)",
        lambda: usagetally.UsageAccumulator(max_event_size="1"),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "UsageAccumulator(max_event_size=-1)",
        lambda: usagetally.UsageAccumulator(max_event_size=-1),
        LocalValueError,
    ),
    (
        "UsageAccumulator.feed(str)",
        lambda: _accumulated().feed("data"),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "UsageAccumulator.feed_sse(int)",
        lambda: _accumulated().feed_sse("message_start", 1),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "SSEDecoder(max_event_size=str)",
        lambda: usagetally.SSEDecoder(max_event_size="1"),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "SSEDecoder(max_event_size=-1)",
        lambda: usagetally.SSEDecoder(max_event_size=-1),
        LocalValueError,
    ),
    ("SSEDecoder(keep=str)", lambda: usagetally.SSEDecoder(keep="ping"), LocalTypeError),
    ("SSEDecoder(unchecked=str)", lambda: usagetally.SSEDecoder(unchecked="ping"), LocalTypeError),
    (
        "SSEDecoder.feed(str)",
        lambda: usagetally.SSEDecoder().feed("data"),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    ("UsageWorker(max_buffer=-1)", lambda: usagetally.UsageWorker(max_buffer=-1), LocalValueError),
    (
        "UsageWorker(max_buffer=str)",
        lambda: usagetally.UsageWorker(max_buffer="1"),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "UsageWorker(policy=)",
        lambda: usagetally.UsageWorker(policy="loud"),  # type: ignore[arg-type]
        LocalValueError,
    ),
    (
        "accumulate_sync(int)",
        lambda: usagetally.accumulate_sync(1),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "accumulate_sync(policy=)",
        lambda: usagetally.accumulate_sync([b""], policy="loud"),  # type: ignore[arg-type]
        LocalValueError,
    ),
    ("PriceTable.load(.txt)", lambda: usagetally.PriceTable.load("prices.txt"), LocalValueError),
    (
        "billed_totals(dict)",
        lambda: usagetally.billed_totals({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "cache_writes(dict)",
        lambda: usagetally.cache_writes({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "context_window_tokens(dict)",
        lambda: usagetally.context_window_tokens({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "totals_by_model(dict)",
        lambda: usagetally.totals_by_model({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "totals_by_type(dict)",
        lambda: usagetally.totals_by_type({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "UsageTotals().add(dict)",
        lambda: usagetally.UsageTotals().add({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "to_sdk_usage(dict)",
        lambda: usagetally.to_sdk_usage({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "span_attributes(dict)",
        lambda: usagetally.otel.span_attributes({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "testing.sse_bytes(line_ending=)",
        lambda: kit.sse_bytes([], line_ending="\t"),
        LocalValueError,
    ),
    ("testing.chunks_fixed(size=0)", lambda: kit.chunks_fixed(b"ab", 0), LocalValueError),
    (
        "testing.random_chunks(max_size=0)",
        lambda: kit.random_chunks(b"ab", 1, max_size=0),
        LocalValueError,
    ),
    (
        "testing.replay_source(chunk_size=0)",
        lambda: kit.replay_source(b"ab", chunk_size=0),
        LocalValueError,
    ),
    ("testing.replay_source(fail_at=)", lambda: kit.replay_source([], fail_at=3), LocalValueError),
    (
        "testing.message_start(cache_creation=)",
        lambda: kit.message_start(cache_creation="half"),  # type: ignore[arg-type]
        LocalValueError,
    ),
    ("testing.usage_diff(int)", lambda: kit.usage_diff(1, USAGE), LocalTypeError),
    (
        "testing.usage_diff(ignore=)",
        lambda: kit.usage_diff(USAGE, USAGE, ignore=["a..b"]),
        LocalValueError,
    ),
    ("testing.assert_usage(int)", lambda: kit.assert_usage(USAGE, 1), LocalTypeError),
    (
        "UsageMetrics(int)",
        lambda: usagetally.otel.UsageMetrics(1),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "otel_hook(meter and metrics)",
        lambda: usagetally.otel.otel_hook(object(), metrics=object()),  # type: ignore[arg-type]
        LocalTypeError,
    ),
]

CASES += [
    (
        "UsageAccumulator.feed_skipped(int)",
        lambda: _accumulated().feed_skipped(1),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "UsageTotals().merge(dict)",
        lambda: usagetally.UsageTotals().merge({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "billed_cost(dict)",
        lambda: usagetally.billed_cost({}, model=None, prices=None),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "billed_cost(prices=dict)",
        lambda: usagetally.billed_cost(USAGE, model=None, prices={}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    (
        "record_usage(dict)",
        lambda: usagetally.otel.record_usage({}),  # type: ignore[arg-type]
        LocalTypeError,
    ),
    ("SyncTap(int), read", lambda: iter(usagetally.SyncTap(1)), LocalTypeError),
]

BUILTIN = {LocalTypeError: TypeError, LocalValueError: ValueError}


@pytest.mark.parametrize(
    ("call", "expected"), [(c, e) for _, c, e in CASES], ids=[name for name, _, _ in CASES]
)
def test_a_bad_argument_raises_a_local_usage_error(
    call: Callable[[], Any], expected: type[LocalUsageError]
) -> None:
    with pytest.raises(expected) as info:
        result = call()
        if hasattr(result, "__next__"):  # a generator checks its arguments when first read
            next(result)
    assert isinstance(info.value, usagetally.UsageError)
    assert isinstance(info.value, BUILTIN[expected])
    assert str(info.value)  # it says what is wrong


def test_the_two_kinds_are_local_usage_errors_and_builtins() -> None:
    assert issubclass(LocalTypeError, LocalUsageError)
    assert issubclass(LocalTypeError, TypeError)
    assert issubclass(LocalValueError, LocalUsageError)
    assert issubclass(LocalValueError, ValueError)
    assert not issubclass(LocalUsageError, (TypeError, ValueError))


def test_from_sdk_usage_refuses_what_is_not_an_sdk_usage() -> None:
    pytest.importorskip("anthropic")
    with pytest.raises(LocalTypeError, match="anthropic SDK usage"):
        usagetally.from_sdk_usage({})  # type: ignore[arg-type]


def test_a_tap_refuses_what_is_not_an_async_iterable_when_read() -> None:
    async def read() -> None:
        async for _ in usagetally.tap(1):  # type: ignore[call-overload]
            pass  # pragma: no cover - never reached

    import anyio

    with pytest.raises(LocalTypeError, match="not an async iterable"):
        anyio.run(read)


def test_feed_skipped_raises_the_sticky_error_again() -> None:
    acc = usagetally.UsageAccumulator()
    delta = {"type": "message_delta", "usage": {"output_tokens": 1}}
    with pytest.raises(usagetally.EventOrderError) as first:
        acc.feed_event(delta)
    for _ in range(2):  # the shortcut for events mode must not skip the check
        with pytest.raises(usagetally.EventOrderError) as again:
            acc.feed_skipped("ping")
        assert again.value is first.value
    assert acc.events_seen == 1
