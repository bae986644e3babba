"""Errors, warnings and diagnostics.

The tree, in the spirit of h11 (what the stream sent versus how the library was used)::

    UsageError                       every error usagetally raises
    ├── UsageValidationError         a usage payload is wrong (also ValueError); names its JSON path
    ├── PriceTableError              a price table is wrong (also ValueError); names its JSON path
    ├── MissingPriceError            the price table has no price for what a usage needs (a model,
    │                                a rate, a server-tool fee; also LookupError)
    ├── StreamError                  the stream sent something we cannot accept
    │   ├── MalformedEventError      bad JSON or a bad usage payload in an event (also ValueError)
    │   ├── EventOrderError          an event where it cannot be (usage before message_start, ...)
    │   ├── StreamErrorEvent         the API sent an ``error`` event
    │   ├── IncompleteStreamError    the stream ended before message_delta + message_stop
    │   ├── EventTooLargeError       an event exceeded the decoder's maximum size
    │   ├── InconsistentUsageError   a consistency check failed under the "strict" policy
    │   └── SourceError              the source being read raised (the original is the cause)
    └── LocalUsageError              usagetally was used wrongly (feed after finish, ...)
        ├── LocalTypeError           an argument of the wrong type (also TypeError)
        └── LocalValueError          an argument of the right type but a bad value (ValueError)

The rule for bad arguments, across the public API (``usagetally``, ``usagetally.testing``,
``usagetally.otel``, ``usagetally.prices``): every bad argument raises a
:class:`LocalUsageError`, so that catching :class:`UsageError` handles every failure of the
library's own making. A wrong *type* raises :class:`LocalTypeError` and a wrong *value* of the
right type raises :class:`LocalValueError`, which are also the builtin :class:`TypeError` and
:class:`ValueError`: code written against the builtins keeps working, as attrs'
``FrozenError(AttributeError)`` does. Misuse that is not about one argument (feeding after
``finish()``, a worker started twice) raises :class:`LocalUsageError` itself.
tests/test_public_api.py walks the public API with bad arguments and checks this.

Every :class:`StreamError` names where it happened (event index and byte offset, when known)
and carries ``partial``: the usage accumulated before the failure, or None when nothing had
been accumulated yet. Nothing counted is lost by raising.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._models import BetaUsage

__all__ = [
    "EventOrderError",
    "EventTooLargeError",
    "IncompleteStreamError",
    "InconsistentUsageError",
    "LocalTypeError",
    "LocalUsageError",
    "LocalValueError",
    "MalformedEventError",
    "MissingPriceError",
    "PriceTableError",
    "SourceError",
    "StreamError",
    "StreamErrorEvent",
    "UsageDiagnostic",
    "UsageError",
    "UsageValidationError",
]


class UsageError(Exception):
    """Base class of every error usagetally raises.

    Catch this to handle any failure of the library in one place.
    """


class UsageValidationError(UsageError, ValueError):
    """A usage payload does not match the wire format.

    Args:
        path: Where in the payload the problem is, as a JSON path such as
            ``iterations[1].input_tokens`` (empty for the payload itself).
        problem: What is wrong, such as ``expected a non-negative integer, got '15'``.

    The message is ``"<path>: <problem>"``.

    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path or '<root>'}: {problem}")

    def prefixed(self, prefix: str) -> UsageValidationError:
        """Return the same error with its path placed under ``prefix``.

        Args:
            prefix: The path of the enclosing value, such as ``usage`` or ``message.usage``.

        Returns:
            A new error of the same class whose path is ``prefix.path``.

        """
        if not self.path:
            path = prefix
        elif self.path.startswith("["):
            path = prefix + self.path
        else:
            path = f"{prefix}.{self.path}" if prefix else self.path
        new = type(self)(path, self.problem)
        new.__cause__ = self.__cause__
        return new


class PriceTableError(UsageError, ValueError):
    """A price table is refused: a rate that is not a decimal, an unknown key, a bad tier.

    Args:
        path: Where in the table the bad value is, as a JSON path such as
            ``models["claude-sonnet-4-6"].tiers[0].input`` (empty for the table itself).
        problem: What is wrong, such as ``expected a decimal string, got the float 3.0``.
        source: The file the table was read from, if any.

    The message is ``"<source>: <path>: <problem>"`` (without the source when there is none).

    """

    def __init__(self, path: str, problem: str, *, source: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.source = source
        where = f"{path or '<root>'}: {problem}"
        super().__init__(f"{source}: {where}" if source else where)


class MissingPriceError(UsageError, LookupError):
    """The price table has no price for something a usage needs, so no cost is made up.

    For example a model the table does not have (an unknown model is never priced at $0),
    fast rates for a ``speed: "fast"`` response, a cache rate for cache tokens, the batch
    multiplier for a batch response or the fee of a web search.

    Args:
        message: What is missing.
        model: The model concerned, or None (a table-wide price, such as a server-tool fee).

    """

    def __init__(self, message: str, *, model: str | None = None) -> None:
        self.model = model
        super().__init__(message)


class StreamError(UsageError):
    """The stream sent something that cannot be accepted.

    Args:
        message: What went wrong.
        event_index: The index of the offending event in the stream (0 for the first event),
            or None when the failure is not tied to one event.
        byte_offset: The offset in the byte stream where that event starts, or None when the
            events were not read from bytes.
        partial: The usage accumulated before the failure (None when no ``message_start`` had
            been seen). It is never lost.

    The message names the event index and byte offset when they are known.

    """

    def __init__(
        self,
        message: str,
        *,
        event_index: int | None = None,
        byte_offset: int | None = None,
        partial: BetaUsage | None = None,
    ) -> None:
        self.reason = message
        self.event_index = event_index
        self.byte_offset = byte_offset
        self.partial = partial
        where = []
        if event_index is not None:
            where.append(f"event {event_index}")
        if byte_offset is not None:
            where.append(f"byte {byte_offset}")
        super().__init__(f"{message} (at {', '.join(where)})" if where else message)


class MalformedEventError(StreamError, ValueError):
    """An event's data is not valid JSON, or its usage payload is wrong or missing.

    For example a count that is not a non-negative integer, ``usage: null``, or a
    ``message_delta`` that carries no usage.

    ``path`` is the JSON path inside the event (such as ``usage.output_tokens``) when the
    problem is a bad value, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        event_index: int | None = None,
        byte_offset: int | None = None,
        partial: BetaUsage | None = None,
    ) -> None:
        self.path = path
        super().__init__(message, event_index=event_index, byte_offset=byte_offset, partial=partial)


class EventOrderError(StreamError):
    """An event arrived where the Messages stream protocol does not allow it.

    For example usage before ``message_start``, a second ``message_start``, or an event other
    than ``ping`` after ``message_stop``.
    """


class StreamErrorEvent(StreamError):
    """The API sent an ``error`` event; nothing follows it and the usage is incomplete.

    ``error_type`` is the error's ``type`` (such as ``overloaded_error``) and
    ``error_message`` its human message, both as sent (None when absent).
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None,
        error_message: str | None,
        event_index: int | None = None,
        byte_offset: int | None = None,
        partial: BetaUsage | None = None,
    ) -> None:
        self.error_type = error_type
        self.error_message = error_message
        super().__init__(message, event_index=event_index, byte_offset=byte_offset, partial=partial)


class IncompleteStreamError(StreamError):
    """The stream ended before it was complete.

    A stream is complete only after at least one ``message_delta`` followed by
    ``message_stop``. Until then ``output_tokens`` may be the placeholder of
    ``message_start``; ``partial`` holds what was counted.
    """


class EventTooLargeError(StreamError):
    """An event grew beyond the decoder's ``max_event_size``.

    ``limit`` is the size in bytes that was exceeded.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        event_index: int | None = None,
        byte_offset: int | None = None,
        partial: BetaUsage | None = None,
    ) -> None:
        self.limit = limit
        super().__init__(message, event_index=event_index, byte_offset=byte_offset, partial=partial)


class InconsistentUsageError(StreamError):
    """A consistency check failed while the policy is ``"strict"``.

    ``diagnostic`` is the :class:`UsageDiagnostic` that would have been a warning.
    """

    def __init__(
        self,
        diagnostic: UsageDiagnostic,
        *,
        byte_offset: int | None = None,
        partial: BetaUsage | None = None,
    ) -> None:
        self.diagnostic = diagnostic
        super().__init__(
            f"{diagnostic.code}: {diagnostic.message}",
            event_index=diagnostic.event_index,
            byte_offset=byte_offset,
            partial=partial,
        )


class SourceError(StreamError):
    """The source being read raised; the original exception is ``__cause__``."""


class LocalUsageError(UsageError):
    """usagetally was used wrongly, such as feeding an accumulator after ``finish()``."""


class LocalTypeError(LocalUsageError, TypeError):
    """An argument has the wrong type, such as ``feed("text")`` (also a :class:`TypeError`)."""


class LocalValueError(LocalUsageError, ValueError):
    """An argument has the right type but a bad value, such as ``policy="loud"``.

    Also a :class:`ValueError`.
    """


@attrs.frozen(kw_only=True)
class UsageDiagnostic:
    """A consistency problem found in a stream's usage.

    Attributes:
        code: A stable identifier of the check. Inconsistencies (refused under the
            ``"strict"`` policy): ``iteration_changed``, ``iteration_removed``,
            ``count_decreased``, ``top_level_mismatch``, ``cache_split_mismatch``. Notes of
            normal API behaviour (never refused): ``cache_split_stale``, a TTL split that a
            ``message_delta`` left behind ``cache_creation_input_tokens`` (the message
            names by how many tokens; :func:`~usagetally.cache_writes` reports them).
        message: A human explanation naming the fields and values involved.
        event_index: The index of the event where the problem showed (for checks made on
            the final usage, the index of ``message_stop`` or of the last event), or None.

    """

    code: str
    message: str
    event_index: int | None = None

    def __str__(self) -> str:
        where = f" (event {self.event_index})" if self.event_index is not None else ""
        return f"{self.code}: {self.message}{where}"


def check_argument_type(value: object, expected: type, what: str) -> None:
    """Raise :class:`LocalTypeError` unless ``value`` is an instance of ``expected``.

    Args:
        value: The argument.
        expected: The class it must be an instance of.
        what: How the message names the argument, such as ``billed_totals(usage)``.

    Raises:
        LocalTypeError: ``value`` is not an instance of ``expected``.

    """
    if not isinstance(value, expected):
        raise LocalTypeError(f"{what} must be a {expected.__name__}, got {type(value).__name__}")
