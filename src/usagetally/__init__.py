"""usagetally: exact final usage from Anthropic Messages API streams.

The public names are all here; the modules behind them are private.

``import usagetally`` loads what feeding a stream needs: the models, the errors, the SSE
decoder and the accumulator. Everything else is imported when one of its names is first
read, by the module-level ``__getattr__`` below (PEP 562): the async layer (``accumulate``,
``tap``, ``Tap``, ``UsageHook``) and the worker (``UsageWorker``, ``UsageSink``,
``StreamResult``) with anyio under them, the synchronous layer (``SyncTap``,
``accumulate_sync``), the figures (``UsageTotals``, ``billed_totals``, ...), cost
(``billed_cost``, ``PriceTable``, ``Cost``), the SDK conversions, and the default
``converter`` (built when first read). ``__all__`` and ``dir()`` list them all the same, and
a deferred name is the same object however it is reached. This keeps ``import usagetally``
cheap (see docs/performance.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._accumulator import Policy, UsageAccumulator
from ._converter import make_converter
from ._errors import (
    EventOrderError,
    EventTooLargeError,
    IncompleteStreamError,
    InconsistentUsageError,
    LocalTypeError,
    LocalUsageError,
    LocalValueError,
    MalformedEventError,
    MissingPriceError,
    PriceTableError,
    SourceError,
    StreamError,
    StreamErrorEvent,
    UsageDiagnostic,
    UsageError,
    UsageValidationError,
)
from ._models import (
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
)
from ._sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    import cattrs

    from ._aio import Tap, UsageHook, accumulate, tap
    from ._anthropic import from_sdk_usage, to_sdk_usage
    from ._cost import Cost, PriceTable, billed_cost
    from ._figures import (
        CacheWrites,
        TokenCounts,
        UsageTotals,
        billed_totals,
        cache_writes,
        context_window_tokens,
        totals_by_model,
        totals_by_type,
    )
    from ._sync import SyncTap, accumulate_sync
    from ._worker import StreamResult, UsageSink, UsageWorker

    converter: cattrs.Converter  # the default converter (built when first read)

__version__ = "0.1.0.dev0"

# The names imported on first use, and the module of each.
_DEFERRED = {
    "CacheWrites": "._figures",
    "Cost": "._cost",
    "PriceTable": "._cost",
    "StreamResult": "._worker",
    "SyncTap": "._sync",
    "Tap": "._aio",
    "TokenCounts": "._figures",
    "UsageHook": "._aio",
    "UsageSink": "._worker",
    "UsageTotals": "._figures",
    "UsageWorker": "._worker",
    "accumulate": "._aio",
    "accumulate_sync": "._sync",
    "billed_cost": "._cost",
    "billed_totals": "._figures",
    "cache_writes": "._figures",
    "context_window_tokens": "._figures",
    "converter": "._converter",
    "from_sdk_usage": "._anthropic",
    "tap": "._aio",
    "to_sdk_usage": "._anthropic",
    "totals_by_model": "._figures",
    "totals_by_type": "._figures",
}


def __getattr__(name: str) -> Any:
    module = _DEFERRED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DEFERRED})


__all__ = [
    "BetaAdvisorMessageIterationUsage",
    "BetaCacheCreation",
    "BetaCompactionIterationUsage",
    "BetaFallbackCreditNotApplied",
    "BetaFallbackCreditRedeemed",
    "BetaFallbackCreditUsage",
    "BetaFallbackMessageIterationUsage",
    "BetaMessageDeltaUsage",
    "BetaMessageIterationUsage",
    "BetaOutputTokensDetails",
    "BetaServerToolUsage",
    "BetaUsage",
    "CacheWrites",
    "Cost",
    "EventOrderError",
    "EventTooLargeError",
    "FallbackCreditStatus",
    "IncompleteStreamError",
    "InconsistentUsageError",
    "IterationUsage",
    "LocalTypeError",
    "LocalUsageError",
    "LocalValueError",
    "MalformedEventError",
    "MissingPriceError",
    "Policy",
    "PriceTable",
    "PriceTableError",
    "SSEDecoder",
    "ServerSentEvent",
    "SourceError",
    "StreamError",
    "StreamErrorEvent",
    "StreamResult",
    "SyncTap",
    "Tap",
    "TokenCounts",
    "UnknownFallbackCreditStatus",
    "UnknownIterationUsage",
    "UsageAccumulator",
    "UsageDiagnostic",
    "UsageError",
    "UsageHook",
    "UsageSink",
    "UsageTotals",
    "UsageValidationError",
    "UsageWorker",
    "__version__",
    "accumulate",
    "accumulate_sync",
    "billed_cost",
    "billed_totals",
    "cache_writes",
    "context_window_tokens",
    "converter",
    "from_sdk_usage",
    "make_converter",
    "tap",
    "to_sdk_usage",
    "totals_by_model",
    "totals_by_type",
]
