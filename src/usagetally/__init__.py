"""usagetally: exact final usage from Anthropic Messages API streams.

The public names are all here; the modules behind them are private.

The async layer (``accumulate``, ``tap``, ``Tap``, ``UsageHook``) and the worker
(``UsageWorker``, ``UsageSink``, ``StreamResult``), with anyio under them, are imported when
one of their names is first read: the module-level ``__getattr__`` below (PEP 562) does it,
and nothing else is deferred. ``__all__`` and ``dir()`` list them all the same. This keeps
``import usagetally`` cheap for programs that only feed bytes (see docs/performance.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._accumulator import Policy, UsageAccumulator
from ._anthropic import from_sdk_usage, to_sdk_usage
from ._converter import converter, make_converter
from ._cost import Cost, PriceTable, billed_cost
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
from ._sync import SyncTap, accumulate_sync

if TYPE_CHECKING:
    from ._aio import Tap, UsageHook, accumulate, tap
    from ._worker import StreamResult, UsageSink, UsageWorker

__version__ = "0.1.0.dev0"

# The names imported on first use, and the module of each.
_DEFERRED = {
    "StreamResult": "._worker",
    "Tap": "._aio",
    "UsageHook": "._aio",
    "UsageSink": "._worker",
    "UsageWorker": "._worker",
    "accumulate": "._aio",
    "tap": "._aio",
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
