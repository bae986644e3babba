"""Collecting the diagnostics logged while a block runs: :func:`capture_diagnostics`.

Import it from :mod:`usagetally.testing`, which re-exports it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from .._errors import UsageDiagnostic


@contextlib.contextmanager
def capture_diagnostics() -> Iterator[list[UsageDiagnostic]]:
    """Collect every diagnostic logged to the ``usagetally`` logger while the block runs.

    Diagnostics of every stream are logged (inconsistencies at WARNING, notes at INFO); this
    attaches a handler for the duration of the block, lowering the logger's level to INFO if
    needed, and restores both afterwards.

    Yields:
        The list the diagnostics are appended to, in the order they were logged.

    >>> from usagetally import UsageAccumulator
    >>> from usagetally.testing import message_delta, message_start, message_stop
    >>> acc = UsageAccumulator()
    >>> with capture_diagnostics() as seen:
    ...     for event in [message_start(), message_delta(output_tokens=9),
    ...                   message_delta(output_tokens=4), message_stop()]:
    ...         acc.feed_event(event)
    >>> [d.code for d in seen]
    ['count_decreased']

    """
    seen: list[UsageDiagnostic] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            diagnostic = getattr(record, "usagetally_diagnostic", None)
            if isinstance(diagnostic, UsageDiagnostic):
                seen.append(diagnostic)

    logger = logging.getLogger("usagetally")
    handler = _Collect(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
