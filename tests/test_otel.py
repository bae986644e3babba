"""OpenTelemetry export, checked with the SDK's in-memory exporters.

Every expectation here is written out by hand from the usage it describes (the rules of
docs/semantics.md, section 3), never computed with the code under test. The invariant
checked throughout: cached tokens are counted exactly once in the GenAI meaning of input
(``gen_ai.usage.input_tokens`` = input + cache read + cache creation), never added again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, Tracer
from opentelemetry.util.types import AttributeValue
from support import EXAMPLES, expected

from usagetally import (
    BetaUsage,
    IncompleteStreamError,
    LocalUsageError,
    UsageAccumulator,
    converter,
)
from usagetally.otel import (
    TOKEN_USAGE_BUCKETS,
    UsageMetrics,
    otel_hook,
    record_usage,
    request_attributes,
    span_attributes,
)

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.sse"))

SONNET = "claude-sonnet-4-6"
OPUS = "claude-opus-4-7"

# The bucket boundaries of gen_ai.client.token.usage, as the GenAI conventions print them.
SEMCONV_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
SEMCONV_BUCKETS += [16777216, 67108864]

# Billed counts of one model: (input, output, cache read, cache creation), input in
# Anthropic's meaning (uncached only).
Counts = tuple[int, int, int, int]
PointKey = tuple[str, frozenset[tuple[str, Any]]]
PointValue = int | tuple[int, int]  # a counter's value, or a histogram's (count, sum)

BILLED_COUNTERS = (
    "usagetally.billed.input_tokens",
    "usagetally.billed.output_tokens",
    "usagetally.billed.cache_read.input_tokens",
    "usagetally.billed.cache_creation.input_tokens",
)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def usage_metrics(meter_provider: MeterProvider) -> UsageMetrics:
    return UsageMetrics(meter_provider.get_meter("test"))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


def structure(raw: Mapping[str, Any]) -> BetaUsage:
    usage: BetaUsage = converter.structure(raw, BetaUsage)
    return usage


def entry(kind: str, counts: Counts, model: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "type": kind,
        "input_tokens": counts[0],
        "output_tokens": counts[1],
        "cache_read_input_tokens": counts[2],
        "cache_creation_input_tokens": counts[3],
    }
    if model is not None:
        raw["model"] = model
    return raw


def points(reader: InMemoryMetricReader) -> dict[PointKey, PointValue]:
    """Every metric point: counters by value, histograms by (count, sum)."""
    found: dict[PointKey, PointValue] = {}
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, frozenset(dict(point.attributes or {}).items()))
                    assert key not in found
                    if isinstance(point, HistogramDataPoint):
                        found[key] = (point.count, int(point.sum))
                    else:
                        assert isinstance(point, NumberDataPoint)
                        found[key] = int(point.value)
    return found


def key(name: str, **attributes: Any) -> PointKey:
    return (name, frozenset((k.replace("__", "."), v) for k, v in attributes.items()))


def expected_points(
    request_model: str | None,
    billed: Mapping[str | None, Counts],
    *,
    complete: bool = True,
    streams: int = 1,
) -> dict[PointKey, PointValue]:
    """The points of ``streams`` identical streams, written out from their billed counts."""
    base: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic"}
    if request_model is not None:
        base["gen_ai.request.model"] = request_model
    result: dict[PointKey, PointValue] = {
        ("usagetally.streams", frozenset({**base, "usagetally.complete": complete}.items())): (
            streams
        )
    }
    for model, counts in billed.items():
        point = dict(base)
        if model is not None:
            point["gen_ai.response.model"] = model
        counted = frozenset({**point, "usagetally.complete": complete}.items())
        for name, value in zip(BILLED_COUNTERS, counts, strict=True):
            result[(name, counted)] = value * streams
        if complete:
            uncached, output, read, written = counts
            for kind, value in (("input", uncached + read + written), ("output", output)):
                attrs = frozenset({**point, "gen_ai.token.type": kind}.items())
                result[("gen_ai.client.token.usage", attrs)] = (streams, value * streams)
    return result


def finished_attributes(exporter: InMemorySpanExporter) -> dict[str, AttributeValue]:
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


def billed_input_attributes(attributes: Mapping[str, AttributeValue]) -> int:
    """All billed input tokens, from the span attributes in Anthropic's meaning."""
    total = 0
    for name in ("input_tokens", "cache_read.input_tokens", "cache_creation.input_tokens"):
        value = attributes[f"usagetally.billed.{name}"]
        assert isinstance(value, int)
        total += value
    return total


def as_span_values(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Lists as the SDK stores them on a span (tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in attributes.items()}


# -- representative usages ---------------------------------------------------------------------

# The expectations are data (tests/data/otel/): examples.json for the bundled examples (the
# model message_start names, exact span attributes, billed counts per model), cases.json for
# representative usages (raw usage, model, completeness, exact span attributes, billed counts
# per model); {"example": name} in a case stands for that example's expectation.
OTEL_DATA = Path(__file__).resolve().parent / "data" / "otel"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OTEL_DATA / name).read_text("utf-8"))
    del data["_about"]
    return data


def _billed(pairs: list[list[Any]]) -> dict[str | None, Counts]:
    return {model: (counts[0], counts[1], counts[2], counts[3]) for model, counts in pairs}


def _of_example(value: Any, example: Mapping[str, Any] | None, key: str) -> Any:
    if isinstance(value, dict) and set(value) == {"example"}:
        if key == "usage":
            return expected(value["example"])
        assert example is not None
        return example[key]
    return value


_EXAMPLES_DATA = _load("examples.json")
EXAMPLE_SPANS: dict[str, dict[str, Any]] = {n: d["span"] for n, d in _EXAMPLES_DATA.items()}
EXAMPLE_MODELS: dict[str, str] = {n: d["model"] for n, d in _EXAMPLES_DATA.items()}
EXAMPLE_BILLED: dict[str, dict[str | None, Counts]] = {
    n: _billed(d["billed"]) for n, d in _EXAMPLES_DATA.items()
}

# name: (raw usage, model, complete, exact span attributes, billed counts per model)
CASES: dict[str, tuple[dict[str, Any], str | None, bool, dict[str, Any], dict[str | None, Counts]]]
CASES = {
    name: (
        _of_example(case["usage"], _EXAMPLES_DATA.get(name), "usage"),
        case["model"],
        case["complete"],
        _of_example(case["span"], _EXAMPLES_DATA.get(name), "span"),
        _billed(_of_example(case["billed"], _EXAMPLES_DATA.get(name), "billed")),
    )
    for name, case in _load("cases.json").items()
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_span_attributes_exact(case: str, tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    raw, model, complete, expected, _ = CASES[case]
    with tracer.start_as_current_span("chat"):
        record_usage(structure(raw), model=model, complete=complete)
    assert finished_attributes(exporter) == as_span_values(expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_span_attributes_function_exact(case: str) -> None:
    raw, model, complete, expected, _ = CASES[case]
    assert span_attributes(structure(raw), model=model, complete=complete) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_metric_points_exact(
    case: str, usage_metrics: UsageMetrics, reader: InMemoryMetricReader
) -> None:
    raw, model, complete, _, billed = CASES[case]
    usage_metrics.record(structure(raw), model=model, complete=complete)
    assert points(reader) == expected_points(model, billed, complete=complete)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cached_tokens_counted_once(case: str) -> None:
    raw, model, complete, _, billed = CASES[case]
    attributes = span_attributes(structure(raw), model=model, complete=complete)
    top = raw["input_tokens"] + raw.get("cache_read_input_tokens", 0)
    top += raw.get("cache_creation_input_tokens", 0)
    assert attributes["gen_ai.usage.input_tokens"] == top
    assert attributes["usagetally.usage.input_tokens"] == raw["input_tokens"]
    billed_input_side = sum(c[0] + c[2] + c[3] for c in billed.values())
    assert billed_input_side == billed_input_attributes(attributes)


# -- metrics: instruments, accumulation, attributes ------------------------------------------


def test_instruments_follow_the_conventions(
    usage_metrics: UsageMetrics, reader: InMemoryMetricReader
) -> None:
    usage_metrics.record(structure(CASES["advisor"][0]), model=SONNET)
    data = reader.get_metrics_data()
    assert data is not None
    (resource,) = data.resource_metrics
    (scope,) = resource.scope_metrics
    kinds = {m.name: (type(m.data).__name__, m.unit) for m in scope.metrics}
    assert kinds == {
        "gen_ai.client.token.usage": ("Histogram", "{token}"),
        "usagetally.billed.input_tokens": ("Sum", "{token}"),
        "usagetally.billed.output_tokens": ("Sum", "{token}"),
        "usagetally.billed.cache_read.input_tokens": ("Sum", "{token}"),
        "usagetally.billed.cache_creation.input_tokens": ("Sum", "{token}"),
        "usagetally.streams": ("Sum", "{stream}"),
    }
    for metric in scope.metrics:
        if isinstance(metric.data, Sum):
            assert metric.data.is_monotonic
        else:
            assert isinstance(metric.data, Histogram)
            for point in metric.data.data_points:
                assert list(point.explicit_bounds) == SEMCONV_BUCKETS
    assert list(TOKEN_USAGE_BUCKETS) == SEMCONV_BUCKETS


def test_histogram_buckets(usage_metrics: UsageMetrics, reader: InMemoryMetricReader) -> None:
    usage_metrics.record(structure(CASES["cache-read-and-creation"][0]), model=SONNET)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m
        for m in data.resource_metrics[0].scope_metrics[0].metrics
        if isinstance(m.data, Histogram)
    ]
    by_type: dict[AttributeValue, HistogramDataPoint] = {}
    for point in metric.data.data_points:
        assert isinstance(point, HistogramDataPoint)
        assert point.attributes is not None
        by_type[point.attributes["gen_ai.token.type"]] = point
    # input 10050 lies in (4096, 16384], index 7; output 200 in (64, 256], index 4.
    assert list(by_type["input"].bucket_counts) == [0] * 7 + [1] + [0] * 7
    assert list(by_type["output"].bucket_counts) == [0] * 4 + [1] + [0] * 10


def test_streams_add_up(usage_metrics: UsageMetrics, reader: InMemoryMetricReader) -> None:
    plain = structure(CASES["cache-read-and-creation"][0])
    usage_metrics.record(plain, model=SONNET)
    usage_metrics.record(plain, model=SONNET)
    usage_metrics.record(plain, model=SONNET)
    assert points(reader) == expected_points(SONNET, {SONNET: (50, 200, 9000, 1000)}, streams=3)


def test_complete_and_partial_streams_are_separate_series(
    usage_metrics: UsageMetrics, reader: InMemoryMetricReader
) -> None:
    raw, model, _, _, billed = CASES["partial"]
    usage_metrics.record(structure(raw), model=model, complete=True)
    usage_metrics.record(structure(raw), model=model, complete=False)
    expected = expected_points(model, billed, complete=True)
    expected.update(expected_points(model, billed, complete=False))
    assert points(reader) == expected


def test_failed_before_message_start(
    usage_metrics: UsageMetrics,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    with tracer.start_as_current_span("chat"):
        record_usage(None, model=SONNET, complete=False, metrics=usage_metrics)
    assert finished_attributes(exporter) == {"usagetally.complete": False}
    assert points(reader) == {
        key(
            "usagetally.streams",
            gen_ai__operation__name="chat",
            gen_ai__provider__name="anthropic",
            gen_ai__request__model=SONNET,
            usagetally__complete=False,
        ): 1
    }


def test_unknown_model(usage_metrics: UsageMetrics, reader: InMemoryMetricReader) -> None:
    usage = structure(CASES["advisor"][0])
    usage_metrics.record(usage, model=None)
    assert points(reader) == expected_points(
        None, {None: (1760, 531, 412, 0), OPUS: (823, 1612, 0, 0)}
    )
    attributes = span_attributes(usage)
    assert "gen_ai.response.model" not in attributes
    assert attributes["usagetally.billed.by_model.model"] == ["", OPUS]


def test_extra_metric_attributes_cannot_replace_ours(
    usage_metrics: UsageMetrics, reader: InMemoryMetricReader
) -> None:
    usage_metrics.record(
        structure({"input_tokens": 5, "output_tokens": 7}),
        model=SONNET,
        attributes={"tenant": "acme", "gen_ai.provider.name": "other"},
    )
    found = points(reader)
    assert found
    for name, attributes in found:
        assert ("tenant", "acme") in attributes, name
        assert ("gen_ai.provider.name", "anthropic") in attributes, name


# -- span attributes: edge cases -----------------------------------------------------------------


def test_empty_iterations() -> None:
    usage = structure({"input_tokens": 3, "output_tokens": 4, "iterations": []})
    assert span_attributes(usage, model=SONNET) == {
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.model": SONNET,
        "usagetally.complete": True,
        "usagetally.usage.input_tokens": 3,
        "usagetally.billed.input_tokens": 3,
        "usagetally.billed.output_tokens": 4,
        "usagetally.billed.cache_read.input_tokens": 0,
        "usagetally.billed.cache_creation.input_tokens": 0,
        "usagetally.context_window_tokens": 3,
        "usagetally.iterations.count": 0,
    }


def test_unknown_iteration_type_is_counted_under_its_type() -> None:
    usage = structure(
        {
            "input_tokens": 100,
            "output_tokens": 10,
            "iterations": [
                {"type": "summary_v2", "input_tokens": 40, "output_tokens": 5},
                entry("message", (100, 10, 0, 0)),
            ],
        }
    )
    attributes = span_attributes(usage, model=SONNET)
    assert attributes["usagetally.iterations.summary_v2.count"] == 1
    assert attributes["usagetally.iterations.summary_v2.input_tokens"] == 40
    assert attributes["usagetally.iterations.summary_v2.cache_read.input_tokens"] == 0
    assert attributes["usagetally.billed.input_tokens"] == 140
    assert attributes["usagetally.billed.output_tokens"] == 15
    assert "usagetally.billed.by_model.model" not in attributes


def test_server_tool_use() -> None:
    usage = structure(
        {
            "input_tokens": 1,
            "output_tokens": 1,
            "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 2},
        }
    )
    attributes = span_attributes(usage)
    assert attributes["usagetally.server_tool_use.web_search_requests"] == 3
    assert attributes["usagetally.server_tool_use.web_fetch_requests"] == 2


def test_message_entries_naming_the_executor_give_no_per_model_arrays() -> None:
    usage = structure(
        {
            "input_tokens": 30,
            "output_tokens": 3,
            "iterations": [
                entry("message", (10, 1, 0, 0), SONNET),
                entry("message", (20, 2, 0, 0)),
            ],
        }
    )
    assert not any(
        k.startswith("usagetally.billed.by_model") for k in span_attributes(usage, model=SONNET)
    )


def test_request_attributes() -> None:
    assert request_attributes() == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
    }
    assert request_attributes(OPUS)["gen_ai.request.model"] == OPUS


# -- record_usage and the hook -------------------------------------------------------------------


def test_record_usage_on_an_explicit_span(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    usage = structure({"input_tokens": 5, "output_tokens": 7})
    with tracer.start_as_current_span("outer"):
        span = tracer.start_span("chat", attributes=request_attributes(SONNET))
        record_usage(usage, model=SONNET, span=span)
        span.end()
    chat, outer = exporter.get_finished_spans()
    assert chat.name == "chat"
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.provider.name"] == "anthropic"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 5
    assert not outer.attributes


def test_record_usage_without_a_span_or_metrics_does_nothing() -> None:
    record_usage(structure({"input_tokens": 5, "output_tokens": 7}), model=SONNET)
    record_usage(None, span=INVALID_SPAN, complete=False)


def test_hook_records_span_and_metrics(
    meter_provider: MeterProvider,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    raw, model, complete, expected, billed = CASES["advisor"]
    hook = otel_hook(meter_provider.get_meter("test"))
    with tracer.start_as_current_span("chat"):
        hook(structure(raw), model, complete)
    assert finished_attributes(exporter) == as_span_values(expected)
    assert points(reader) == expected_points(model, billed)


def test_hook_without_current_span(
    usage_metrics: UsageMetrics,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    raw, model, complete, _, billed = CASES["partial"]
    hook = otel_hook(metrics=usage_metrics, current_span=False, attributes={"worker": "w1"})
    with tracer.start_as_current_span("worker loop"):
        hook(structure(raw), model, complete)
    assert not finished_attributes(exporter)
    expected = {
        (name, attributes | {("worker", "w1")}): value
        for (name, attributes), value in expected_points(model, billed, complete=False).items()
    }
    assert points(reader) == expected


def test_hook_takes_a_meter_or_metrics_not_both(usage_metrics: UsageMetrics) -> None:
    with pytest.raises(LocalUsageError, match="not both"):
        otel_hook(MeterProvider().get_meter("x"), metrics=usage_metrics)


def test_hook_defaults_to_the_global_meter_provider() -> None:
    hook = otel_hook()
    hook(structure({"input_tokens": 1, "output_tokens": 1}), SONNET, True)
    hook(None, None, False)


def test_without_the_api_the_import_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import usagetally\n"
        "try:\n"
        "    import usagetally.otel\n"
        "except ImportError as exc:\n"
        "    assert \"pip install 'opentelemetry-api>=1.30'\" in str(exc), exc\n"
        "    assert isinstance(exc.__cause__, ImportError), exc.__cause__\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the bundled examples ------------------------------------------------------------------------


def expected_usage(name: str) -> tuple[dict[str, Any], BetaUsage]:
    raw: dict[str, Any] = json.loads((EXAMPLES / "expected" / f"{name}.json").read_text("utf-8"))
    return raw, structure(raw)


def message_start_model(name: str) -> str | None:
    for line in (EXAMPLES / f"{name}.sse").read_text("utf-8").splitlines():
        if line.startswith("data:"):
            event = json.loads(line[len("data:") :])
            if event.get("type") == "message_start":
                model: str | None = event["message"].get("model")
                return model
    raise AssertionError(f"{name}.sse has no message_start")


def test_every_example_has_expectations() -> None:
    assert EXAMPLE_NAMES, "no bundled examples found"
    missing = sorted(set(EXAMPLE_NAMES) - set(EXAMPLE_SPANS))
    assert not missing, f"add the expected OpenTelemetry attributes of {missing} to this file"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_model(name: str) -> None:
    if name not in EXAMPLE_MODELS:
        pytest.skip("no expectations yet (see test_every_example_has_expectations)")
    assert message_start_model(name) == EXAMPLE_MODELS[name]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_span_attributes(name: str, tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    if name not in EXAMPLE_SPANS:
        pytest.skip("no expectations yet (see test_every_example_has_expectations)")
    _, usage = expected_usage(name)
    with tracer.start_as_current_span("chat"):
        record_usage(usage, model=message_start_model(name))
    assert finished_attributes(exporter) == as_span_values(EXAMPLE_SPANS[name])


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_metric_points(
    name: str, usage_metrics: UsageMetrics, reader: InMemoryMetricReader
) -> None:
    if name not in EXAMPLE_BILLED:
        pytest.skip("no expectations yet (see test_every_example_has_expectations)")
    _, usage = expected_usage(name)
    model = message_start_model(name)
    usage_metrics.record(usage, model=model)
    assert points(reader) == expected_points(model, EXAMPLE_BILLED[name])


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_cached_tokens_counted_once(
    name: str,
    usage_metrics: UsageMetrics,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    raw, usage = expected_usage(name)
    with tracer.start_as_current_span("chat"):
        record_usage(usage, model=message_start_model(name), metrics=usage_metrics)
    attributes = finished_attributes(exporter)
    top = raw["input_tokens"] + raw.get("cache_read_input_tokens", 0)
    top += raw.get("cache_creation_input_tokens", 0)
    assert attributes["gen_ai.usage.input_tokens"] == top
    assert attributes["usagetally.usage.input_tokens"] == raw["input_tokens"]
    assert attributes.get("gen_ai.usage.cache_read.input_tokens") == raw.get(
        "cache_read_input_tokens"
    )
    found = points(reader)
    histogram_input = sum(
        value[1]
        for (metric, attrs), value in found.items()
        if metric == "gen_ai.client.token.usage"
        and ("gen_ai.token.type", "input") in attrs
        and isinstance(value, tuple)
    )
    counted = {
        metric: sum(v for (m, _), v in found.items() if m == metric and isinstance(v, int))
        for metric in BILLED_COUNTERS
    }
    billed_input_side = (
        counted["usagetally.billed.input_tokens"]
        + counted["usagetally.billed.cache_read.input_tokens"]
        + counted["usagetally.billed.cache_creation.input_tokens"]
    )
    assert histogram_input == billed_input_side
    assert billed_input_side == billed_input_attributes(attributes)
    if not raw.get("iterations"):
        assert histogram_input == top


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_replayed_through_the_accumulator(
    name: str,
    meter_provider: MeterProvider,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    if name not in EXAMPLE_SPANS:
        pytest.skip("no expectations yet (see test_every_example_has_expectations)")
    hook = otel_hook(meter_provider.get_meter("test"))
    accumulator = UsageAccumulator()
    with tracer.start_as_current_span("chat"):
        accumulator.feed((EXAMPLES / f"{name}.sse").read_bytes())
        hook(accumulator.finish(), accumulator.model, accumulator.complete)
    assert finished_attributes(exporter) == as_span_values(EXAMPLE_SPANS[name])
    assert points(reader) == expected_points(EXAMPLE_MODELS[name], EXAMPLE_BILLED[name])


def test_cut_stream_recorded_as_incomplete(
    meter_provider: MeterProvider,
    reader: InMemoryMetricReader,
    tracer: Tracer,
    exporter: InMemorySpanExporter,
) -> None:
    body = (EXAMPLES / "prompt-caching.sse").read_bytes()
    cut = body.index(b"event: message_delta")
    hook = otel_hook(meter_provider.get_meter("test"))
    accumulator = UsageAccumulator()
    with tracer.start_as_current_span("chat"):
        accumulator.feed(body[:cut])
        with pytest.raises(IncompleteStreamError) as caught:
            accumulator.finish()
        hook(caught.value.partial, accumulator.model, accumulator.complete)
    partial = caught.value.partial
    assert partial is not None
    assert not accumulator.complete
    attributes = finished_attributes(exporter)
    assert attributes["usagetally.complete"] is False
    assert attributes["gen_ai.usage.input_tokens"] == 18 + 14850 + 3125
    assert attributes["gen_ai.usage.output_tokens"] == partial.output_tokens
    billed: dict[str | None, Counts] = {SONNET: (18, partial.output_tokens, 14850, 3125)}
    assert points(reader) == expected_points(SONNET, billed, complete=False)
