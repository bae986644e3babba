"""OpenTelemetry export through the real OTLP encoder: one stream's huge figures never cost a batch.

Counts are accepted up to 2**63 - 1, and sums of them (billed totals, GenAI input = input +
cache) go beyond; OTLP carries int64, and an exporter drops the whole batch when one value
does not fit. ``usagetally.otel`` leaves such figures out (above ``MAX_RECORDED_TOKENS``),
with a warning, and records everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from usagetally import BetaUsage, converter
from usagetally.otel import MAX_RECORDED_TOKENS, UsageMetrics, record_usage, span_attributes

CACHE = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
# Every count fits int64, but the billed input (the sum of the entries) does not.
HUGE = converter.structure(
    {
        "input_tokens": 2**62,
        "output_tokens": 5,
        "cache_read_input_tokens": 2**62,
        "iterations": [
            {"type": "compaction", "input_tokens": 2**62, "output_tokens": 1, **CACHE},
            {"type": "message", "input_tokens": 2**62, "output_tokens": 5, **CACHE},
        ],
    },
    BetaUsage,
)
SMALL = converter.structure({"input_tokens": 7, "output_tokens": 3}, BetaUsage)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def decoded_points(reader: InMemoryMetricReader) -> dict[tuple[str, str], Any]:
    """Encode the collected metrics as OTLP protobuf (as an exporter does) and read them back."""
    data = reader.get_metrics_data()
    assert data is not None
    request = encode_metrics(data)  # raises when one value does not fit int64
    found: dict[tuple[str, str], Any] = {}
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points:
                    attrs = {a.key: a.value.string_value for a in point.attributes}
                    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
                    name = metric.name + (
                        f" ({attrs['gen_ai.token.type']})" if "gen_ai.token.type" in attrs else ""
                    )
                    value = point.as_int if kind == "sum" else (point.count, point.sum)
                    found[(name, model or "")] = value
    return found


def test_a_huge_stream_does_not_cost_the_batch_its_neighbours(
    reader: InMemoryMetricReader, provider: MeterProvider, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = UsageMetrics(provider.get_meter("t"))
    with caplog.at_level(logging.WARNING, logger="usagetally.otel"):
        metrics.record(HUGE, model="huge-model")
        metrics.record(SMALL, model="small-model")
    points = decoded_points(reader)
    # The other stream is whole.
    assert points[("usagetally.billed.input_tokens", "small-model")] == 7
    assert points[("usagetally.billed.output_tokens", "small-model")] == 3
    assert points[("gen_ai.client.token.usage (input)", "small-model")] == (1, 7)
    # The huge stream: its figures that fit are there, the others are left out and said so.
    assert points[("usagetally.billed.output_tokens", "huge-model")] == 6
    assert points[("usagetally.streams", "huge-model")] == 1
    assert ("usagetally.billed.input_tokens", "huge-model") not in points
    assert ("gen_ai.client.token.usage (input)", "huge-model") not in points
    assert points[("gen_ai.client.token.usage (output)", "huge-model")] == (1, 6)
    warned = [r.getMessage() for r in caplog.records if r.name == "usagetally.otel"]
    assert any("usagetally.billed.input_tokens left out" in m for m in warned)
    assert any(str(2**63) in m for m in warned)


def test_span_attributes_leave_out_what_does_not_fit(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with caplog.at_level(logging.WARNING, logger="usagetally.otel"):
        attributes = span_attributes(HUGE, model="m")
        with provider.get_tracer("t").start_as_current_span("chat m") as span:
            record_usage(HUGE, model="m", span=span)
    assert "gen_ai.usage.input_tokens" not in attributes  # 2**63: input + cache read
    assert "usagetally.billed.input_tokens" not in attributes
    assert attributes["gen_ai.usage.output_tokens"] == 5
    assert attributes["usagetally.billed.output_tokens"] == 6
    assert all(
        not isinstance(v, int) or isinstance(v, bool) or v <= MAX_RECORDED_TOKENS
        for v in attributes.values()
    )
    # The real encoder takes every attribute (it logs and drops what does not fit int64).
    with caplog.at_level(logging.ERROR):
        request = encode_spans(exporter.get_finished_spans())
    encoded = {a.key for a in request.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert encoded == set(attributes)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    provider.shutdown()
