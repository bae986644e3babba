"""OpenTelemetry export, checked with the SDK's in-memory exporters.

Every expectation here is written out by hand from the usage it describes (the figures rules
of usage-semantics.md, section 3), never computed with the code under test. The invariant
checked everywhere: cached tokens are counted exactly once in the GenAI meaning of input
(``gen_ai.usage.input_tokens`` = input + cache read + cache creation), and never added again
on top of it.
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
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, Tracer
from opentelemetry.util.types import AttributeValue

from usagetally import (
    BetaUsage,
    IncompleteStreamError,
    LocalUsageError,
    UsageAccumulator,
    __version__,
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

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.sse"))

SONNET = "claude-sonnet-4-6"
OPUS = "claude-opus-4-7"

# The bucket boundaries of gen_ai.client.token.usage, as the GenAI conventions print them.
SEMCONV_BUCKETS = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]

# (input, output, cache read, cache creation), input in Anthropic's meaning (uncached only).
Counts = tuple[int, int, int, int]
PointKey = tuple[str, frozenset[tuple[str, Any]]]


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader
    provider.shutdown()


@pytest.fixture
def usage_metrics(reader: InMemoryMetricReader) -> UsageMetrics:
    provider = reader._sdk_config  # type: ignore[attr-defined]  # set by MeterProvider
    assert provider is not None
    return _metrics_for(reader)


_PROVIDERS: dict[int, MeterProvider] = {}


def _metrics_for(reader: InMemoryMetricReader) -> UsageMetrics:
    raise NotImplementedError


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans.provider = provider  # type: ignore[attr-defined]
    yield exporter
    provider.shutdown()
