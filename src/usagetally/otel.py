"""OpenTelemetry export of usage: span attributes and metrics (the ``usagetally[otel]`` extra).

This module needs only ``opentelemetry-api``; the SDK and its exporters are the
application's choice. ``import usagetally`` never imports it (nor OpenTelemetry).

Two meanings of "input", kept apart by namespace (docs/semantics.md, section 6):

- ``gen_ai.*`` (the GenAI semantic conventions): input INCLUDES cached tokens. For Anthropic,
  ``gen_ai.usage.input_tokens = input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens``, each counted once; ``gen_ai.usage.cache_read.input_tokens``
  and ``gen_ai.usage.cache_creation.input_tokens`` are parts of it, not additions to it.
- ``usagetally.*`` (ours): input is Anthropic's, uncached only, as on the wire. The four
  figures of one group (such as ``usagetally.billed.input_tokens``, ``.output_tokens``,
  ``.cache_read.input_tokens`` and ``.cache_creation.input_tokens``) are disjoint; their
  sum is all tokens.

Rules:

- Span attributes describe the response as it reports itself: ``gen_ai.usage.*`` are the
  top-level fields (the serving model's sampling; compaction and advisor calls are outside
  them, per the API), and ``gen_ai.response.model`` is the model they belong to (the
  ``fallback_message`` model after a fallback). Billed totals, per-iteration and per-model
  figures are added under ``usagetally.*``.
- Metrics count what is billed (the conventions: "when systems report both used tokens and
  billable tokens, instrumentation MUST report billable tokens"), per billed model:
  compaction under the executor model, advisor and fallback entries under their own.
- A failed stream's partial usage is recorded with ``usagetally.complete`` false; it is
  kept out of the ``gen_ai.client.token.usage`` histogram, because its ``output_tokens`` is
  a placeholder, not a count.
- Cost (with a price table): ``usagetally.cost`` in USD per billed model, computed exactly
  as a ``Decimal`` by ``usagetally.billed_cost`` and turned into a float only when handed
  to the counter, the export boundary (OpenTelemetry counters take floats or ints).
- OTLP carries integers as int64, and an exporter drops a whole batch when one value does
  not fit (every other stream's points with it). A figure above :data:`MAX_RECORDED_TOKENS`
  (a count can be up to 2**63 - 1, and sums of counts more) is therefore left out, with a
  warning on the ``usagetally.otel`` logger, and everything else is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

try:
    from opentelemetry import trace
    from opentelemetry.metrics import Meter, get_meter
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:
    from ._install import install_hint

    raise ImportError(
        f"usagetally.otel needs the OpenTelemetry API; {install_hint('otel')}"
    ) from exc

from . import __version__
from ._aio import UsageHook as _UsageHook
from ._cost import PriceTable, billed_cost
from ._errors import LocalTypeError, MissingPriceError, check_argument_type
from ._figures import (
    TokenCounts,
    billed_totals,
    context_window_tokens,
    totals_by_model,
    totals_by_type,
)
from ._models import BetaUsage
from ._wire import serving_index

__all__ = [
    "MAX_RECORDED_TOKENS",
    "OPERATION_NAME",
    "PROVIDER_NAME",
    "TOKEN_USAGE_BUCKETS",
    "UsageHook",
    "UsageMetrics",
    "otel_hook",
    "record_usage",
    "request_attributes",
    "span_attributes",
]

PROVIDER_NAME = "anthropic"
"""The value of ``gen_ai.provider.name`` for the Anthropic API."""

OPERATION_NAME = "chat"
"""The value of ``gen_ai.operation.name`` for a Messages API call."""

TOKEN_USAGE_BUCKETS: tuple[int, ...] = (
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
)
"""The bucket boundaries the conventions give for ``gen_ai.client.token.usage``."""

MAX_RECORDED_TOKENS = 2**40
"""The largest figure recorded as a span attribute or a metric point (about 1.1e12 tokens).

A larger one is left out with a warning on the ``usagetally.otel`` logger. No real response
comes near it; the margin below int64 (2**23 such points) keeps the sums a metrics SDK
accumulates from overflowing OTLP's int64 and losing a whole export batch.
"""

_log = logging.getLogger(__name__)

UsageHook = _UsageHook
"""A callable that records the end of one stream, called as ``hook(usage, model, complete)``.

``usage`` is the final usage, or the partial usage of a failed stream (None when it failed
before ``message_start``); ``model`` is the model named by ``message_start``; ``complete``
is False for a failed stream.
"""

# The four billed counts, by TokenCounts field: the counter (and span attribute) names under
# usagetally.billed, with Anthropic's meaning of input (uncached only).
_BILLED = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read.input_tokens"),
    ("cache_creation_input_tokens", "cache_creation.input_tokens"),
)
_BILLED_NAMES = dict(_BILLED)
_BILLED_DESCRIPTIONS = {
    "input_tokens": "Billed input tokens not read from or written to the prompt cache.",
    "output_tokens": "Billed output tokens.",
    "cache_read_input_tokens": "Billed input tokens read from the prompt cache.",
    "cache_creation_input_tokens": "Billed input tokens written to the prompt cache.",
}


def request_attributes(model: str | None = None) -> dict[str, AttributeValue]:
    """Return the attributes to set when starting the span of a Messages API call.

    The conventions ask for these at span creation time (they can drive sampling), so they
    are not set by :func:`record_usage`; pass them to ``tracer.start_as_current_span``
    together with the span name ``f"chat {model}"`` and ``kind=SpanKind.CLIENT``.

    Args:
        model: The model requested, if known.

    Returns:
        ``gen_ai.operation.name``, ``gen_ai.provider.name`` and, when given,
        ``gen_ai.request.model``.

    >>> request_attributes("claude-sonnet-4-6")
    {'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', \
'gen_ai.request.model': 'claude-sonnet-4-6'}

    """
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": OPERATION_NAME,
        "gen_ai.provider.name": PROVIDER_NAME,
    }
    if model is not None:
        attributes["gen_ai.request.model"] = model
    return attributes


def _fits(name: str, value: int) -> bool:
    if value <= MAX_RECORDED_TOKENS:
        return True
    _log.warning(
        "usagetally.otel: %s left out: %d is above MAX_RECORDED_TOKENS (2**40)", name, value
    )
    return False


def _checked(attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    # Leave out every figure too large to export (see MAX_RECORDED_TOKENS); for an array,
    # the whole array (its entries are parallel to other arrays').
    out: dict[str, AttributeValue] = {}
    for name, value in attributes.items():
        if isinstance(value, (list, tuple)):
            counts = [v for v in value if type(v) is int]
            if counts and not _fits(name, max(counts)):
                continue
        elif type(value) is int and not _fits(name, value):
            continue
        out[name] = value
    return out


def _serving_model(usage: BetaUsage, model: str | None) -> str | None:
    # After a fallback the top level describes only the attempt that served the response.
    iterations = usage.iterations or ()
    serving = serving_index(iterations)
    if serving is None:
        return model
    named: str | None = getattr(iterations[serving], "model", None)
    return named if named is not None else model


def span_attributes(
    usage: BetaUsage | None, *, model: str | None = None, complete: bool = True
) -> dict[str, AttributeValue]:
    """Return the span attributes for a stream's usage.

    Attributes (absent fields of the usage give absent attributes, never zeros):

    - ``gen_ai.usage.input_tokens``: top-level input + cache read + cache creation.
    - ``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
      ``gen_ai.usage.cache_creation.input_tokens``: the top-level fields.
    - ``gen_ai.usage.reasoning.output_tokens``: thinking tokens, when sent.
    - ``gen_ai.response.model``: the model of those figures (the ``fallback_message``
      entry's after a fallback, else ``model``).
    - ``usagetally.complete``: False for the partial usage of a failed stream.
    - ``usagetally.usage.input_tokens``: the top-level ``input_tokens`` (uncached only).
    - ``usagetally.billed.input_tokens``, ``.output_tokens``, ``.cache_read.input_tokens``,
      ``.cache_creation.input_tokens``: billed totals over every model.
    - ``usagetally.context_window_tokens``: the context size after the last sampling step.
    - ``usagetally.server_tool_use.web_search_requests``, ``.web_fetch_requests``.
    - With iterations: ``usagetally.iterations.count`` and, per iteration type ``T``,
      ``usagetally.iterations.T.count``, ``.input_tokens``, ``.output_tokens``,
      ``.cache_read.input_tokens``, ``.cache_creation.input_tokens`` (as sent).
    - When tokens are billed to a model other than ``model`` (advisor, fallback): parallel
      arrays ``usagetally.billed.by_model.model`` (``""`` for an unknown ``model``),
      ``.input_tokens``, ``.output_tokens``, ``.cache_read.input_tokens``,
      ``.cache_creation.input_tokens``.

    A figure above :data:`MAX_RECORDED_TOKENS` is left out, with a warning on the
    ``usagetally.otel`` logger.

    Args:
        usage: The final usage, or a failed stream's partial usage (None when it failed
            before ``message_start``: only ``usagetally.complete`` is set).
        model: The model named by ``message_start`` (or the model requested).
        complete: False for the partial usage of a failed stream.

    Returns:
        The attributes, ready for ``span.set_attributes``.

    """
    if usage is not None:
        check_argument_type(usage, BetaUsage, "span_attributes(usage)")
    return _checked(_span_attributes(usage, model, complete))


def _span_attributes(
    usage: BetaUsage | None, model: str | None, complete: bool
) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if usage is not None:
        top = TokenCounts.of(usage)
        attributes["gen_ai.usage.input_tokens"] = top.input_side
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cache_read_input_tokens is not None:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = (
                usage.cache_creation_input_tokens
            )
        if usage.output_tokens_details is not None:
            attributes["gen_ai.usage.reasoning.output_tokens"] = (
                usage.output_tokens_details.thinking_tokens
            )
        serving = _serving_model(usage, model)
        if serving is not None:
            attributes["gen_ai.response.model"] = serving
    attributes["usagetally.complete"] = complete
    if usage is None:
        return attributes
    attributes["usagetally.usage.input_tokens"] = usage.input_tokens
    billed = billed_totals(usage)
    for field, name in _BILLED:
        attributes[f"usagetally.billed.{name}"] = getattr(billed, field)
    attributes["usagetally.context_window_tokens"] = context_window_tokens(usage)
    tools = usage.server_tool_use
    if tools is not None:
        attributes["usagetally.server_tool_use.web_search_requests"] = tools.web_search_requests
        attributes["usagetally.server_tool_use.web_fetch_requests"] = tools.web_fetch_requests
    iterations = usage.iterations
    if iterations is not None:
        attributes["usagetally.iterations.count"] = len(iterations)
        if iterations:
            for kind, counts in totals_by_type(usage).items():
                prefix = f"usagetally.iterations.{kind}"
                attributes[f"{prefix}.count"] = sum(1 for e in iterations if e.type == kind)
                for field, name in _BILLED:
                    attributes[f"{prefix}.{name}"] = getattr(counts, field)
    by_model = totals_by_model(usage, model=model)
    if set(by_model) != {model}:
        attributes["usagetally.billed.by_model.model"] = [key or "" for key in by_model]
        for field, name in _BILLED:
            attributes[f"usagetally.billed.by_model.{name}"] = [
                getattr(counts, field) for counts in by_model.values()
            ]
    return attributes


class UsageMetrics:
    """The usage instruments of one meter, created once; :meth:`record` records a stream.

    Instruments:

    - ``gen_ai.client.token.usage`` (histogram, ``{token}``, the conventions' bucket
      boundaries): per complete stream and billed model, one point with
      ``gen_ai.token.type`` ``input`` (uncached + cache read + cache creation) and one with
      ``output``.
    - ``usagetally.billed.input_tokens``, ``usagetally.billed.output_tokens``,
      ``usagetally.billed.cache_read.input_tokens``,
      ``usagetally.billed.cache_creation.input_tokens`` (counters, ``{token}``): billed
      tokens, with Anthropic's meaning of input (uncached only), so the four are disjoint
      and add up to all billed tokens. Partial usage of failed streams is counted too.
    - ``usagetally.streams`` (counter, ``{stream}``): streams recorded.
    - With ``prices``: ``usagetally.cost`` (counter, ``USD``): the cost of each stream per
      billed model (``gen_ai.response.model``; server-tool fees under the executor model),
      computed exactly and converted to a float only here, at the export boundary; and
      ``usagetally.unpriced_streams`` (counter, ``{stream}``): streams the table could not
      price (a model it lacks, a rate it lacks), so that a cost left out is seen. Partial
      usage of failed streams is priced too, as for the token counters.

    Attributes of every point: ``gen_ai.operation.name`` (``chat``),
    ``gen_ai.provider.name`` (``anthropic``) and ``gen_ai.request.model`` (the ``model``
    given, when known). Token points add ``gen_ai.response.model``: the model the tokens
    are billed to (advisor and fallback entries name theirs; other entries, compaction
    included, belong to ``model``). Counter points add ``usagetally.complete``.

    A point whose value is above :data:`MAX_RECORDED_TOKENS` is left out, with a warning on
    the ``usagetally.otel`` logger; the stream's other points are recorded.

    Args:
        meter: The meter to create the instruments with, such as
            ``opentelemetry.metrics.get_meter("usagetally")``.
        prices: A price table, to count the cost too; None counts tokens only.

    Raises:
        LocalTypeError: ``meter`` cannot create histograms and counters, or ``prices`` is
            not a :class:`~usagetally.PriceTable`.

    """

    def __init__(self, meter: Meter, *, prices: PriceTable | None = None) -> None:
        for method in ("create_histogram", "create_counter"):
            if not callable(getattr(meter, method, None)):
                raise LocalTypeError(
                    f"UsageMetrics(meter) must be an OpenTelemetry Meter (it has no {method}), "
                    f"got {type(meter).__name__}"
                )
        if prices is not None:
            check_argument_type(prices, PriceTable, "UsageMetrics(prices=)")
        self._token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_USAGE_BUCKETS,
        )
        self._billed = [
            (
                field,
                meter.create_counter(
                    f"usagetally.billed.{name}",
                    unit="{token}",
                    description=_BILLED_DESCRIPTIONS[field],
                ),
            )
            for field, name in _BILLED
        ]
        self._streams = meter.create_counter(
            "usagetally.streams",
            unit="{stream}",
            description="Messages API streams whose usage was recorded.",
        )
        self._prices = prices
        if prices is not None:
            self._cost = meter.create_counter(
                "usagetally.cost", unit="USD", description="Cost of the billed usage, in USD."
            )
            self._unpriced = meter.create_counter(
                "usagetally.unpriced_streams",
                unit="{stream}",
                description="Streams the price table could not price (not in usagetally.cost).",
            )

    def record(
        self,
        usage: BetaUsage | None,
        *,
        model: str | None = None,
        complete: bool = True,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """Record one stream's usage.

        Args:
            usage: The final usage, or a failed stream's partial usage (None when it failed
                before ``message_start``: only ``usagetally.streams`` is counted).
            model: The model named by ``message_start`` (or the model requested).
            complete: False for the partial usage of a failed stream.
            attributes: Extra attributes for every point (keep them low-cardinality);
                they cannot replace the attributes described on the class.

        """
        base: dict[str, AttributeValue] = dict(attributes or {})
        base.update(request_attributes(model))
        self._streams.add(1, {**base, "usagetally.complete": complete})
        if usage is None:
            return
        for billed_model, counts in totals_by_model(usage, model=model).items():
            point = dict(base)
            if billed_model is not None:
                point["gen_ai.response.model"] = billed_model
            counted = {**point, "usagetally.complete": complete}
            for field, counter in self._billed:
                value = getattr(counts, field)
                if _fits(f"usagetally.billed.{_BILLED_NAMES[field]}", value):
                    counter.add(value, counted)
            if complete:
                for kind, value in (("input", counts.input_side), ("output", counts.output_tokens)):
                    if _fits(f"gen_ai.client.token.usage ({kind})", value):
                        self._token_usage.record(value, {**point, "gen_ai.token.type": kind})
        if self._prices is not None:
            self._record_cost(usage, model, complete, base)

    def _record_cost(
        self,
        usage: BetaUsage,
        model: str | None,
        complete: bool,
        base: Mapping[str, AttributeValue],
    ) -> None:
        assert self._prices is not None
        try:
            cost = billed_cost(usage, model=model, prices=self._prices)
        except MissingPriceError:
            self._unpriced.add(1, {**base, "usagetally.complete": complete})
            return
        for billed_model, amount in cost.by_model.items():
            point = {
                **base,
                "gen_ai.response.model": billed_model,
                "usagetally.complete": complete,
            }
            self._cost.add(float(amount), point)  # the export boundary: float from here on


def record_usage(
    usage: BetaUsage | None,
    *,
    model: str | None = None,
    complete: bool = True,
    span: Span | None = None,
    metrics: UsageMetrics | None = None,
    metric_attributes: Mapping[str, AttributeValue] | None = None,
) -> None:
    """Record a stream's usage on a span and, when given instruments, as metrics.

    Args:
        usage: The final usage, or a failed stream's partial usage (None when it failed
            before ``message_start``).
        model: The model named by ``message_start`` (or the model requested).
        complete: False for the partial usage of a failed stream.
        span: The span to set :func:`span_attributes` on; None for the current span
            (nothing is set when it is not recording, such as when there is none).
        metrics: The instruments to record with; None records no metrics.
        metric_attributes: Extra attributes for every metric point.

    """
    if usage is not None:
        check_argument_type(usage, BetaUsage, "record_usage(usage)")
    target = span if span is not None else trace.get_current_span()
    if target.is_recording():
        target.set_attributes(span_attributes(usage, model=model, complete=complete))
    if metrics is not None:
        metrics.record(usage, model=model, complete=complete, attributes=metric_attributes)


def otel_hook(
    meter: Meter | None = None,
    *,
    metrics: UsageMetrics | None = None,
    current_span: bool = True,
    attributes: Mapping[str, AttributeValue] | None = None,
    prices: PriceTable | None = None,
) -> UsageHook:
    """Return a hook that records each stream's usage, to call when a stream ends.

    The hook is called as ``hook(usage, model, complete)``; see :data:`UsageHook`. It
    records metrics with :class:`UsageMetrics` and, with ``current_span``, sets
    :func:`span_attributes` on the span that is current where the hook runs (the caller's
    span for code that iterates a stream itself; a background worker's own context
    otherwise).

    Args:
        meter: The meter to create the instruments with; None for the global meter
            provider's ``usagetally`` meter. Not with ``metrics``.
        metrics: Instruments already created (to share them between hooks).
        current_span: Whether to set attributes on the current span.
        attributes: Extra attributes for every metric point.
        prices: A price table, to count ``usagetally.cost`` too (see :class:`UsageMetrics`).
            Not with ``metrics`` (give the instruments their prices instead).

    Returns:
        The hook.

    Raises:
        LocalUsageError: Both ``meter`` and ``metrics`` were given, or both ``metrics`` and
            ``prices``.

    """
    if metrics is None:
        metrics = UsageMetrics(
            meter if meter is not None else get_meter("usagetally", __version__), prices=prices
        )
    elif meter is not None:
        raise LocalTypeError("give otel_hook either a meter or metrics, not both")
    elif prices is not None:
        raise LocalTypeError(
            "give otel_hook prices or metrics, not both: pass prices to the UsageMetrics"
        )
    instruments = metrics
    extra = dict(attributes) if attributes is not None else None

    def hook(usage: BetaUsage | None, model: str | None, complete: bool) -> None:
        if current_span:
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attributes(span_attributes(usage, model=model, complete=complete))
        instruments.record(usage, model=model, complete=complete, attributes=extra)

    return hook
