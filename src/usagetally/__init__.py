"""usagetally: exact final usage from Anthropic Messages API streams.

The public names are all here; the modules behind them are private.
"""

from ._converter import converter, make_converter
from ._errors import (
    EventOrderError,
    EventTooLargeError,
    IncompleteStreamError,
    InconsistentUsageError,
    LocalUsageError,
    MalformedEventError,
    SourceError,
    StreamError,
    StreamErrorEvent,
    UsageDiagnostic,
    UsageError,
    UsageValidationError,
    UsageWarning,
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

__version__ = "0.1.0.dev0"

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
    "EventOrderError",
    "EventTooLargeError",
    "FallbackCreditStatus",
    "IncompleteStreamError",
    "InconsistentUsageError",
    "IterationUsage",
    "LocalUsageError",
    "MalformedEventError",
    "SourceError",
    "StreamError",
    "StreamErrorEvent",
    "UnknownFallbackCreditStatus",
    "UnknownIterationUsage",
    "UsageDiagnostic",
    "UsageError",
    "UsageValidationError",
    "UsageWarning",
    "__version__",
    "converter",
    "make_converter",
]
