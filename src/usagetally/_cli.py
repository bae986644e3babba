"""The ``usagetally`` command: replay captured streams and show their final usage.

Rules this module keeps (docs/cli.md is the user's page, with the exit status table):

- Each input is opened once, when its turn comes, and replayed as it is read, in chunks of at
  most 64 KiB, so that memory stays flat however long the capture and a named pipe's writer
  loses nothing.
- Every input gets its result, in order: a table, or one JSON object per stream with
  ``--json`` (JSON Lines). A failed input gets one too, so results never shift.
- Every failure is one line on stderr, written by :func:`_complain` alone: control characters,
  ANSI escapes and newlines are escaped, so that nothing read from a capture can forge a line
  or reach the terminal raw. Nothing of a failure ever goes to stdout when stderr is closed.
- No traceback reaches a user: a ``UsageError`` is a stream's failure, an ``OSError`` an
  input's or the output's, and anything else a last resort with an exit status of its own.
- With ``--split-concatenated``, a ``message_start`` after a complete stream starts a new
  stream at that event's byte offset (:class:`_InputReplay` says how, with the public API of
  :class:`UsageAccumulator` and :class:`SSEDecoder` only).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, NoReturn

import attrs

from . import __version__
from ._accumulator import Policy, UsageAccumulator
from ._converter import converter
from ._cost import Cost, PriceTable, billed_cost
from ._errors import (
    EventOrderError,
    EventTooLargeError,
    IncompleteStreamError,
    InconsistentUsageError,
    MalformedEventError,
    StreamError,
    StreamErrorEvent,
    UsageDiagnostic,
    UsageError,
)
from ._figures import (
    TokenCounts,
    UsageTotals,
    billed_totals,
    context_window_tokens,
    totals_by_model,
    totals_by_type,
)
from ._models import BetaUsage
from ._sse import SSEDecoder

__all__ = ["main"]

EXIT_OK = 0
EXIT_STREAM_FAILED = 1
EXIT_BAD_ARGUMENTS = 2
EXIT_INPUT_FAILED = 3
EXIT_OUTPUT_FAILED = 4
EXIT_INTERNAL_ERROR = 5
EXIT_INTERRUPTED = 130

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""The default of ``--max-event-size``: 16 MiB, far above any event the API sends."""

_CHUNK = 64 * 1024
_MAX_MESSAGE = 2000  # characters of one failure line, after escaping
_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20}
_UNITS.update({"g": 1 << 30, "gib": 1 << 30})


# -- arguments -------------------------------------------------------------------------------


class _BadArguments(Exception):
    """The command line is wrong (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, through the one printer, instead of argparse's usage block.
        raise _BadArguments(f"{_clean(message, 200)} (see '{self.prog} --help')")


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d{1,15})\s*([A-Za-z]{0,3})\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of bytes, such as 1048576 or 16MiB; got {text!r}"
        )
    return int(match.group(1)) * _UNITS[unit]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="usagetally",
        description="Exact final usage from Anthropic Messages API streams.",
    )
    parser.add_argument("--version", action="version", version=f"usagetally {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay = commands.add_parser(
        "replay",
        help="replay captured SSE streams and print their final usage",
        description=(
            "Replay captured text/event-stream bodies and print their final usage. "
            "Exit status: 0 every stream complete, 1 a stream failed, 2 bad arguments, "
            "3 an input could not be read, 4 the output could not be written, "
            "5 internal error, 130 interrupted."
        ),
    )
    replay.add_argument(
        "paths", nargs="+", metavar="PATH", help="a captured stream, or - for stdin"
    )
    replay.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per stream (JSON Lines): path, status, error, usage, figures",
    )
    replay.add_argument("--total", action="store_true", help="add the billed sum over all inputs")
    replay.add_argument(
        "--strict", action="store_true", help="turn consistency diagnostics into errors"
    )
    replay.add_argument(
        "--partial",
        action="store_true",
        help="in the table, show the partial usage of a failed stream (--json always has it)",
    )
    replay.add_argument(
        "--split-concatenated",
        action="store_true",
        help="replay a file holding several responses (a message_start after a complete "
        "stream) as several streams",
    )
    replay.add_argument(
        "--prices",
        metavar="TABLE",
        help="a price table (JSON or TOML, see docs/cost.md): add the exact cost in USD",
    )
    replay.add_argument(
        "--max-event-size",
        type=_size,
        default=DEFAULT_MAX_EVENT_SIZE,
        metavar="BYTES",
        help="refuse events larger than this (default 16MiB; suffixes K, M, G are binary)",
    )
    return parser


# -- printing --------------------------------------------------------------------------------

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _clean(text: str, limit: int | None = None) -> str:
    r"""Return ``text`` with every unprintable character escaped, on one line.

    Control characters (ESC of ANSI sequences included), line and paragraph separators,
    format characters and lone surrogates become ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``.

    >>> print(_clean("ok\n\x1b[31musagetally: forged\ud800"))
    ok\n\x1b[31musagetally: forged\ud800
    """
    if not text.isprintable():
        out = []
        for char in text:
            if char.isprintable():
                out.append(char)
            elif char in _NAMED_ESCAPES:
                out.append(_NAMED_ESCAPES[char])
            else:
                code = ord(char)
                out.append(
                    f"\\x{code:02x}"
                    if code < 0x100
                    else f"\\u{code:04x}"
                    if code < 0x10000
                    else f"\\U{code:08x}"
                )
        text = "".join(out)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def _width(text: str) -> int:
    """Return how many terminal columns a cleaned text takes (wide characters take two)."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _write(stream: IO[str], text: str) -> None:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    stream.flush()


def _complain(message: str) -> None:
    """Write one failure line on stderr: the only way a failure is reported.

    With stderr closed (or failing) the line is dropped: it never goes to stdout.
    """
    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # stderr closed under us, or full
        _write(stream, f"usagetally: {_clean(message, _MAX_MESSAGE)}\n")


class _OutputFailed(Exception):
    """Stdout could not be written (exit 4); ``quiet`` when its reader went away."""

    def __init__(self, message: str, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


def _emit(text: str) -> None:
    stream = sys.stdout
    if stream is None:
        raise _OutputFailed("cannot write the output: standard output is closed")
    try:
        _write(stream, text)
    except BrokenPipeError as exc:
        raise _OutputFailed("the reader of the output went away", quiet=True) from exc
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise _OutputFailed(f"cannot write the output: {why}") from exc


def _silence_stdout() -> None:
    # Python flushes stdout at exit; after a failed write that flush would fail again and
    # print "Exception ignored ...". Point the descriptor at /dev/null first.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no stdout, or one without a descriptor
        pass


# -- results ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Failure:
    """Why a stream has no final usage."""

    kind: str  # the exception's class name
    message: str
    exit_status: int = EXIT_STREAM_FAILED
    event_index: int | None = None
    byte_offset: int | None = None
    details: Mapping[str, Any] = attrs.Factory(dict)
    hint: str | None = None


@attrs.frozen(kw_only=True)
class _Result:
    """One stream of one input, as the table and the JSON line show it."""

    path: str
    stream: int
    split: bool
    status: str  # complete, incomplete or error
    usage: BetaUsage | None = None
    model: str | None = None
    events: int = 0
    diagnostics: tuple[UsageDiagnostic, ...] = ()
    failure: _Failure | None = None

    @property
    def name(self) -> str:
        name = "<stdin>" if self.path == "-" else self.path
        return f"{name} [stream {self.stream}]" if self.split else name

    @property
    def exit_status(self) -> int:
        return EXIT_OK if self.failure is None else self.failure.exit_status


def _details(exc: StreamError) -> dict[str, Any]:
    if isinstance(exc, MalformedEventError) and exc.path is not None:
        return {"json_path": exc.path}
    if isinstance(exc, StreamErrorEvent):
        return {"error_type": exc.error_type, "error_message": exc.error_message}
    if isinstance(exc, EventTooLargeError):
        return {"limit": exc.limit}
    if isinstance(exc, InconsistentUsageError):
        return {"code": exc.diagnostic.code}
    return {}


def _internal(exc: BaseException) -> _Failure:
    if isinstance(exc, MemoryError):
        message = "out of memory"
    elif isinstance(exc, RecursionError):
        message = "a value is nested too deeply to be read"
    else:
        message = f"internal error (a bug in usagetally {__version__}): {exc}"
    return _Failure(kind=type(exc).__name__, message=message, exit_status=EXIT_INTERNAL_ERROR)


# -- replaying -------------------------------------------------------------------------------


class _InputFailed(Exception):
    """An input could not be opened or read (exit 3); the OSError is the cause."""


def _open(path: str) -> IO[bytes]:
    if path == "-":
        stdin = sys.stdin
        if stdin is None or not hasattr(stdin, "buffer"):
            raise _InputFailed("standard input is closed")
        return stdin.buffer
    try:
        return open(path, "rb", buffering=0)  # closed by _InputReplay.results
    except OSError as exc:
        raise _InputFailed(f"cannot open: {exc.strerror or exc}") from exc


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    """Yield what the source has, as it comes (a pipe's data is not waited for)."""
    read = getattr(source, "read1", source.read)
    while True:
        try:
            chunk = read(_CHUNK)
        except OSError as exc:
            raise _InputFailed(f"cannot read: {exc.strerror or exc}") from exc
        except ValueError as exc:  # a closed file object
            raise _InputFailed(f"cannot read: {exc}") from exc
        if not chunk:
            return
        yield chunk


class _InputReplay:
    """Replays one input into one stream, or into several with ``--split-concatenated``.

    How a file is split, by the public API alone: the bytes go to an accumulator. When it
    raises an :class:`EventOrderError` at byte offset O, the block at O is decoded with an
    :class:`SSEDecoder` of its own; if it is a ``message_start``, and the stream before O is
    complete, O starts the next stream. To know the stream before O, a second accumulator
    (``lag``) is fed the same pieces, each once the first one accepted it: on the failure it
    lacks only the failing piece, and is fed that piece's bytes up to O. Its :meth:`finish`
    gives the earlier stream's exact result (an unfinished block at its end is dropped, by
    the SSE rules). The bytes from O are kept (the last ``max_event_size`` bytes before each
    piece, the size of one event at most) and fed to two new accumulators.

    Without the flag, the same failure names the flag, when the stream before O is known to
    be complete: complete before the failing piece, or replayed again from the bytes kept or
    by reading a seekable file again.
    """

    def __init__(self, path: str, args: argparse.Namespace) -> None:
        self.path = path
        self.split: bool = args.split_concatenated
        self.policy: Policy = "strict" if args.strict else "warn"
        self.limit: int = args.max_event_size
        self.keep = self.limit + 2 if self.split else _CHUNK  # bytes kept before a piece
        self.stream = 0
        self.base = 0  # byte offset of the current stream in the input
        self.event_base = 0  # index of its first event in the input
        self.acc = self._new()
        self.lag = self._new() if self.split else None
        self.was_complete = False
        self.tail: collections.deque[tuple[int, bytes]] = collections.deque()

    def _new(self) -> UsageAccumulator:
        return UsageAccumulator(policy=self.policy, max_event_size=self.limit)

    def results(self) -> Iterator[_Result]:
        try:
            source = _open(self.path)
        except _InputFailed as exc:
            yield self._result(
                self.acc,
                _Failure(kind=_cause_name(exc), message=str(exc), exit_status=EXIT_INPUT_FAILED),
            )
            return
        try:
            yield from self._replay(source)
        except Exception as exc:  # the last resort: no traceback, whatever went wrong
            yield self._result(None, _internal(exc))
        finally:
            if self.path != "-":
                source.close()

    def _replay(self, source: IO[bytes]) -> Iterator[_Result]:
        pos = 0
        try:
            for chunk in _chunks(source):
                self._remember(pos, chunk)
                work = [(pos, chunk)]
                pos += len(chunk)
                while work:
                    start, piece = work.pop()
                    try:
                        self.acc.feed(piece)
                    except StreamError as exc:
                        at = self._next_stream_at(exc, start, source)
                        if at is None or self.lag is None:
                            hint = self._hint(at, source)
                            yield self._failed(self.acc, exc, hint=hint)
                            return
                        yield self._finished(self.lag)
                        self._start_stream(at, exc)
                        work.append((at, self._slice(at, start + len(piece))))
                        continue
                    if self.lag is not None:
                        self.lag.feed(piece)
                    self.was_complete = self.acc.complete
        except _InputFailed as exc:
            usage = self.acc.usage
            failure = _Failure(
                kind=_cause_name(exc), message=str(exc), exit_status=EXIT_INPUT_FAILED
            )
            yield self._result(self.acc, failure, usage=usage)
            return
        yield self._finished(self.acc)

    # -- splitting ------------------------------------------------------------------------

    def _next_stream_at(self, exc: StreamError, start: int, source: IO[bytes]) -> int | None:
        """Return the offset of a ``message_start`` after a complete stream, refused by ``exc``."""
        if not isinstance(exc, EventOrderError) or exc.byte_offset is None:
            return None
        at = self.base + exc.byte_offset
        if not self._message_start_at(at):
            return None
        if self.lag is None:
            return at
        if at > start:
            self.lag.feed(self._slice(start, at))
        return at if self.lag.complete else None

    def _message_start_at(self, at: int) -> bool:
        if not self.tail or at < self.tail[0][0]:
            return False
        events = SSEDecoder().feed(self._slice(at, self.tail[-1][0] + len(self.tail[-1][1])))
        if not events:
            return False
        event = events[0]
        if event.event == "message":  # an untyped event goes by its JSON type
            try:
                data = event.json()
            except (ValueError, RecursionError):
                return False
            return isinstance(data, dict) and data.get("type") == "message_start"
        return event.event == "message_start"

    def _hint(self, at: int | None, source: IO[bytes]) -> str | None:
        if at is None:
            return None
        text = "--split-concatenated replays each response as its own stream"
        complete = self._complete_before(at, source)
        if complete is None:
            return "if this file holds several responses, " + text
        return "this file holds several responses: " + text if complete else None

    def _complete_before(self, at: int, source: IO[bytes]) -> bool | None:
        """Whether the bytes before ``at`` are a complete stream (None: cannot tell)."""
        if self.was_complete:
            return True
        probe = self._new()
        try:
            if self.tail and self.tail[0][0] == 0:
                probe.feed(self._slice(0, at))
            elif self.path != "-" and source.seekable():
                source.seek(0)
                done = 0
                while done < at:
                    chunk = source.read(min(_CHUNK, at - done))
                    if not chunk:
                        return None
                    probe.feed(chunk)
                    done += len(chunk)
            else:
                return None
        except UsageError:
            return False
        except OSError:
            return None
        return probe.complete

    def _start_stream(self, at: int, exc: StreamError) -> None:
        self.stream += 1
        self.event_base += exc.event_index or 0
        self.base = at
        self.acc = self._new()
        self.lag = self._new()
        self.was_complete = False

    # -- the bytes kept -------------------------------------------------------------------

    def _remember(self, pos: int, chunk: bytes) -> None:
        self.tail.append((pos, chunk))
        while len(self.tail) > 1 and self.tail[0][0] + len(self.tail[0][1]) <= pos - self.keep:
            self.tail.popleft()

    def _slice(self, begin: int, end: int) -> bytes:
        parts = []
        for offset, chunk in self.tail:
            lo, hi = max(begin, offset), min(end, offset + len(chunk))
            if lo < hi:
                parts.append(chunk[lo - offset : hi - offset])
        return b"".join(parts)

    # -- results --------------------------------------------------------------------------

    def _finished(self, acc: UsageAccumulator) -> _Result:
        try:
            usage = acc.finish()
        except StreamError as exc:
            return self._failed(acc, exc, hint=None)
        return self._result(acc, None, usage=usage)

    def _failed(self, acc: UsageAccumulator, exc: StreamError, *, hint: str | None) -> _Result:
        index = None if exc.event_index is None else exc.event_index + self.event_base
        offset = None if exc.byte_offset is None else exc.byte_offset + self.base
        message = str(exc)
        if self.stream:  # name the place in the input, not in the stream
            where = [f"event {index}"] if index is not None else []
            where += [f"byte {offset}"] if offset is not None else []
            message = f"{exc.reason} (at {', '.join(where)})" if where else exc.reason
        failure = _Failure(
            kind=type(exc).__name__,
            message=message,
            event_index=index,
            byte_offset=offset,
            details=_details(exc),
            hint=hint,
        )
        return self._result(acc, failure, usage=exc.partial)

    def _result(
        self,
        acc: UsageAccumulator | None,
        failure: _Failure | None,
        *,
        usage: BetaUsage | None = None,
    ) -> _Result:
        if failure is None:
            status = "complete"
        elif failure.kind == IncompleteStreamError.__name__:
            status = "incomplete"
        else:
            status = "error"
        diagnostics: tuple[UsageDiagnostic, ...] = ()
        if acc is not None:
            diagnostics = tuple(
                d
                if d.event_index is None or not self.event_base
                else attrs.evolve(d, event_index=d.event_index + self.event_base)
                for d in acc.diagnostics
            )
        return _Result(
            path=self.path,
            stream=self.stream,
            split=self.split,
            status=status,
            usage=usage,
            model=None if acc is None else acc.model,
            events=0 if acc is None else acc.events_seen,
            diagnostics=diagnostics,
            failure=failure,
        )


def _cause_name(exc: BaseException) -> str:
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else "OSError"


# -- rendering -------------------------------------------------------------------------------


def _counts(counts: TokenCounts) -> dict[str, int]:
    return attrs.asdict(counts)


def _by_model(totals: Mapping[str | None, TokenCounts]) -> list[dict[str, Any]]:
    return [{"model": model, **_counts(counts)} for model, counts in totals.items()]


def _figures(result: _Result) -> dict[str, Any] | None:
    usage = result.usage
    if usage is None:
        return None
    return {
        "billed_totals": _counts(billed_totals(usage)),
        "context_window_tokens": context_window_tokens(usage),
        "totals_by_model": _by_model(totals_by_model(usage, model=result.model)),
        "totals_by_type": {k: _counts(v) for k, v in totals_by_type(usage).items()},
    }


def _price(result: _Result, prices: PriceTable | None) -> Cost | UsageError | None:
    """Price a stream's (final or partial) usage; say why when it has no price."""
    if prices is None or result.usage is None:
        return None
    try:
        return billed_cost(result.usage, model=result.model, prices=prices)
    except UsageError as exc:  # a model or rate the table lacks: unpriced, never $0
        return exc


def _dollars(amount: object) -> str:
    return "-" if amount is None else f"{amount:f}"


def _cost_record(cost: Cost | UsageError | None) -> dict[str, Any] | None:
    if isinstance(cost, UsageError):
        return {"error": {"class": type(cost).__name__, "message": str(cost)}}
    return None if cost is None else cost.as_dict()


def _cost_lines(cost: Cost | UsageError | None) -> list[str]:
    if cost is None:
        return []
    if isinstance(cost, UsageError):
        return [f"  cost: unpriced ({type(cost).__name__}: {_clean(str(cost))})"]
    parts = ", ".join(f"{k} {v:f}" for k, v in cost.by_category.items() if v)
    lines = [f"  cost: {cost.total:f} USD" + (f" ({parts})" if parts else "")]
    lines += [f"  cost assumption: {_clean(a)}" for a in cost.assumptions]
    lines += [f"  unpriced: {_clean(u)}" for u in cost.unpriced]
    return lines


def _json_record(result: _Result, prices: PriceTable | None = None) -> dict[str, Any]:
    failure = result.failure
    error = None
    if failure is not None:
        error = {
            "class": failure.kind,
            "message": failure.message,
            "event_index": failure.event_index,
            "byte_offset": failure.byte_offset,
            **failure.details,
        }
        if failure.hint is not None:
            error["hint"] = failure.hint
    return {
        "record": "stream",
        "path": result.path,
        "stream": result.stream,
        "status": result.status,
        "error": error,
        "model": result.model,
        "events": result.events,
        "usage": None if result.usage is None else converter.unstructure(result.usage),
        "figures": _figures(result),
        **({} if prices is None else {"cost": _cost_record(_price(result, prices))}),
        "diagnostics": [
            {"code": d.code, "message": d.message, "event_index": d.event_index}
            for d in result.diagnostics
        ],
    }


_COLUMNS = ("input", "output", "cache read", "cache write")


def _cells(counts: TokenCounts) -> list[str]:
    return [
        str(counts.input_tokens),
        str(counts.output_tokens),
        str(counts.cache_read_input_tokens),
        str(counts.cache_creation_input_tokens),
    ]


def _grid(
    rows: Sequence[tuple[str, Sequence[str], str]], columns: Sequence[str] = _COLUMNS
) -> list[str]:
    """Align rows of (label, cells, note): the label left, the cells right, the note last.

    Each column is as wide as its widest cell, so that any label, model name or count keeps
    the columns straight. A further column (such as a cost) is one more title in
    ``columns`` and one more cell in each row.
    """
    table = [["", *columns, ""]] + [
        [_clean(label), *map(_clean, cells), _clean(note)] for label, cells, note in rows
    ]
    widths = [max(_width(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = []
    for row in table:
        cells = [row[0] + " " * (widths[0] - _width(row[0]))]
        cells += [" " * (w - _width(c)) + c for c, w in zip(row[1:-1], widths[1:], strict=True)]
        line = "  " + "  ".join(cells)
        lines.append(f"{line}  {row[-1]}" if row[-1] else line.rstrip())
    return lines


def _absent(value: object) -> str:
    return "-" if value is None else _clean(str(value))


def _usage_lines(usage: BetaUsage, model: str | None, cost: Cost | UsageError | None) -> list[str]:
    priced = isinstance(cost, Cost)
    columns = (*_COLUMNS, "cost USD") if priced else _COLUMNS
    blank = [""] if priced else []

    def dollars(amount: object) -> list[str]:
        return [_dollars(amount)] if priced else []

    top = TokenCounts.of(usage)
    rows: list[tuple[str, Sequence[str], str]] = [("top level", _cells(top) + blank, "")]
    for i, entry in enumerate(usage.iterations or ()):
        note = getattr(entry, "model", None) or ""
        rows.append((f"[{i}] {entry.type}", _cells(TokenCounts.of(entry)) + blank, note))
    total_cost = cost.total if isinstance(cost, Cost) else None
    rows.append(("billed total", _cells(billed_totals(usage)) + dollars(total_cost), ""))
    by_model = totals_by_model(usage, model=model)
    if len(by_model) > 1:
        by_cost = cost.by_model if isinstance(cost, Cost) else {}
        rows.extend(
            ("  billed", _cells(c) + dollars(by_cost.get(name or "")), name or "-")
            for name, c in by_model.items()
        )
    lines = _grid(rows, columns)
    if usage.cache_creation is not None:
        split = usage.cache_creation
        lines.append(
            f"  cache write by TTL: 5m {_absent(split.ephemeral_5m_input_tokens)}, "
            f"1h {_absent(split.ephemeral_1h_input_tokens)}"
        )
    if usage.output_tokens_details is not None:
        lines.append(f"  thinking tokens: {_absent(usage.output_tokens_details.thinking_tokens)}")
    if usage.server_tool_use is not None:
        tools = usage.server_tool_use
        lines.append(
            f"  server tools: web_search_requests {_absent(tools.web_search_requests)}, "
            f"web_fetch_requests {_absent(tools.web_fetch_requests)}"
        )
    lines.append(f"  context window: {context_window_tokens(usage)} tokens")
    return lines


def _table(result: _Result, *, partial: bool, prices: PriceTable | None = None) -> str:
    failure = result.failure
    head = f"{result.name}: {result.status}"
    if failure is not None:
        where = [f"event {failure.event_index}"] if failure.event_index is not None else []
        where += [f"byte {failure.byte_offset}"] if failure.byte_offset is not None else []
        head += f" ({failure.kind}{' at ' + ', '.join(where) if where else ''})"
    lines = [_clean(head)]
    usage = result.usage
    if usage is None or (failure is not None and not partial):
        return "\n".join(lines)
    facts = [f"model {_absent(result.model)}", f"{result.events} events"]
    for field in ("service_tier", "speed", "inference_geo"):
        value = getattr(usage, field)
        if value is not None:
            facts.append(f"{field} {_clean(str(value))}")
    lines.append("  " + ", ".join(facts))
    if failure is not None:
        lines.append("  partial usage (what was counted before the failure; not final):")
    cost = _price(result, prices)
    lines.extend(_usage_lines(usage, result.model, cost))
    lines.extend(_cost_lines(cost))
    if result.diagnostics:
        lines.extend(f"  diagnostic: {_clean(str(d))}" for d in result.diagnostics)
    else:
        lines.append("  diagnostics: none")
    return "\n".join(lines)


class _Total:
    """The sum over all inputs (``--total``), through :class:`UsageTotals`."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.totals = UsageTotals(prices=prices)
        self.statuses = {"complete": 0, "incomplete": 0, "error": 0}

    def add(self, result: _Result) -> None:
        self.statuses[result.status] += 1
        if result.usage is not None:
            self.totals.add(result.usage, model=result.model, complete=result.failure is None)

    def record(self) -> dict[str, Any]:
        return {
            "record": "total",
            "streams": dict(self.statuses),
            "partial_included": self.totals.incomplete,
            "billed_totals": _counts(self.totals.total),
            "totals_by_model": _by_model(self.totals.by_model),
            "server_tool_requests": self.totals.server_tool_requests,
            **(
                {}
                if self.totals.cost is None
                else {
                    "cost": self.totals.cost.as_dict(),
                    "unpriced_requests": self.totals.unpriced_requests,
                }
            ),
        }

    def table(self) -> str:
        s = self.statuses
        lines = [
            f"total: {sum(s.values())} streams ({s['complete']} complete, "
            f"{s['incomplete']} incomplete, {s['error']} error)"
        ]
        if self.totals.incomplete:
            lines.append(
                f"  includes the partial usage of {self.totals.incomplete} failed "
                f"stream{'s' if self.totals.incomplete > 1 else ''}"
            )
        cost = self.totals.cost

        def extra(amount: object) -> list[str]:
            return [] if cost is None else [_dollars(amount)]

        rows: list[tuple[str, Sequence[str], str]] = [
            ("billed total", _cells(self.totals.total) + extra(cost and cost.total), "")
        ]
        by_model = self.totals.by_model
        by_cost = {} if cost is None else cost.by_model
        if len(by_model) > 1 or (by_model and None not in by_model):
            rows.extend(
                ("  billed", _cells(c) + extra(by_cost.get(name or "")), name or "-")
                for name, c in by_model.items()
            )
        lines.extend(_grid(rows, _COLUMNS if cost is None else (*_COLUMNS, "cost USD")))
        tools = self.totals.server_tool_requests
        if tools:
            listed = ", ".join(f"{_clean(k)} {v}" for k, v in tools.items())
            lines.append(f"  server tools: {listed}")
        if self.totals.cost is not None:
            lines.extend(_cost_lines(self.totals.cost))
            if self.totals.unpriced_requests:
                lines.append(f"  unpriced streams: {self.totals.unpriced_requests}")
        return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------


def _report(result: _Result) -> None:
    failure = result.failure
    if failure is not None:
        line = f"{result.name}: {failure.message}"
        if failure.hint is not None:
            line += f"; {failure.hint}"
        _complain(line)


def _replay_all(args: argparse.Namespace) -> int:
    if sys.stdout is None:
        raise _OutputFailed("cannot write the output: standard output is closed")
    prices = None
    if args.prices is not None:
        try:
            prices = PriceTable.load(args.prices)
        except (UsageError, OSError) as exc:
            _complain(f"--prices: {exc}")
            return EXIT_BAD_ARGUMENTS
    status = EXIT_OK
    total = _Total(prices) if args.total else None
    first = True
    for path in args.paths:
        for result in _InputReplay(path, args).results():
            try:
                text = (
                    json.dumps(_json_record(result, prices))
                    if args.json
                    else _table(result, partial=args.partial, prices=prices)
                )
            except Exception as exc:  # rendering failed (a bug): still one line per stream
                result = attrs.evolve(result, status="error", usage=None, failure=_internal(exc))
                text = (
                    json.dumps(_json_record(result)) if args.json else _table(result, partial=False)
                )
            _report(result)
            _emit(text + "\n" if args.json or first else "\n" + text + "\n")
            first = False
            status = max(status, result.exit_status)
            if total is not None:
                total.add(result)
    if total is not None:
        _emit(json.dumps(total.record()) + "\n" if args.json else "\n" + total.table() + "\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 every stream complete, 1 a stream failed, 2 bad arguments, 3 an
        input could not be read, 4 the output could not be written, 5 an internal error,
        130 interrupted. When several apply, the highest of 1, 3 and 5 wins; 2, 4 and 130
        stop the command at once.

    """
    try:
        try:
            args = _parser().parse_args(argv)
        except _BadArguments as exc:
            _complain(str(exc))
            return EXIT_BAD_ARGUMENTS
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        # Diagnostics are shown in the results. They are also logged, but the library's
        # logger has only a NullHandler, so nothing reaches stderr around the one printer.
        return _replay_all(args)
    except KeyboardInterrupt:
        _complain("interrupted")
        return EXIT_INTERRUPTED
    except _OutputFailed as exc:
        if not exc.quiet:
            _complain(str(exc))
        _silence_stdout()
        return EXIT_OUTPUT_FAILED
    except Exception as exc:  # the last resort: no traceback ever reaches a user
        failure = _internal(exc)
        _complain(f"{failure.message} ({failure.kind})")
        return EXIT_INTERNAL_ERROR


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())
