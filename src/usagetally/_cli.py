"""The ``usagetally`` command: replay captured streams and show their final usage.

Exit status: 0 when every stream gave a final usage, 1 when a stream failed (one line on
stderr per failure, never a traceback), 2 on bad arguments or an unreadable file, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from . import __version__
from ._accumulator import UsageAccumulator
from ._converter import converter
from ._errors import StreamError, UsageDiagnostic, UsageError
from ._figures import TokenCounts, billed_totals, context_window_tokens, totals_by_model
from ._models import BetaUsage

__all__ = ["main"]

_CHUNK = 64 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="usagetally",
        description="Exact final usage from Anthropic Messages API streams.",
    )
    parser.add_argument("--version", action="version", version=f"usagetally {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay = commands.add_parser(
        "replay",
        help="replay captured SSE streams and print their final usage",
        description="Replay captured text/event-stream bodies and print their final usage.",
    )
    replay.add_argument(
        "paths", nargs="+", metavar="PATH", help="a captured stream, or - for stdin"
    )
    replay.add_argument(
        "--json", action="store_true", help="print only the final usage in wire form, one per line"
    )
    replay.add_argument(
        "--strict", action="store_true", help="turn consistency diagnostics into errors"
    )
    replay.add_argument(
        "--partial", action="store_true", help="on a stream error, still print the partial usage"
    )
    replay.add_argument(
        "--max-event-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="refuse events larger than this many bytes",
    )
    return parser


class _ReadError(Exception):
    """A file could not be read (the command exits 2)."""


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise _ReadError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _chunks(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """Yield the file in chunks as it is read, so that memory stays flat whatever its size."""
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except OSError as exc:
            raise _ReadError(f"cannot read {name}: {exc.strerror or exc}") from exc
        if not chunk:
            return
        yield chunk


def _row(label: str, counts: TokenCounts) -> str:
    return (
        f"  {label:<24}{counts.input_tokens:>10}{counts.output_tokens:>10}"
        f"{counts.cache_read_input_tokens:>12}{counts.cache_creation_input_tokens:>13}"
    )


def _table(
    name: str,
    usage: BetaUsage,
    acc: UsageAccumulator,
    diagnostics: Sequence[UsageDiagnostic],
    *,
    status: str,
) -> str:
    header = [f"{name}: {status}"]
    facts = [f"model {acc.model or '?'}", f"{acc.events_seen} events"]
    for field in ("service_tier", "speed", "inference_geo"):
        value = getattr(usage, field)
        if value is not None:
            facts.append(f"{field} {value}")
    header.append("  " + ", ".join(facts))
    lines = [
        *header,
        f"  {'':<24}{'input':>10}{'output':>10}{'cache read':>12}{'cache write':>13}",
        _row("top level", TokenCounts.of(usage)),
    ]
    for i, entry in enumerate(usage.iterations or ()):
        label = f"[{i}] {entry.type}"
        model = getattr(entry, "model", None)
        lines.append(_row(label, TokenCounts.of(entry)) + (f"  {model}" if model else ""))
    lines.append(_row("billed total", billed_totals(usage)))
    by_model = totals_by_model(usage, model=acc.model)
    if len(by_model) > 1:
        for model, counts in by_model.items():
            lines.append(_row(f"  billed {model or '?'}", counts))
    if usage.cache_creation is not None:
        split = usage.cache_creation
        lines.append(
            f"  cache write by TTL: 5m {split.ephemeral_5m_input_tokens}, "
            f"1h {split.ephemeral_1h_input_tokens}"
        )
    if usage.output_tokens_details is not None:
        lines.append(f"  thinking tokens: {usage.output_tokens_details.thinking_tokens}")
    if usage.server_tool_use is not None:
        tools = usage.server_tool_use
        lines.append(
            f"  server tools: web_search_requests {tools.web_search_requests}, "
            f"web_fetch_requests {tools.web_fetch_requests}"
        )
    lines.append(f"  context window: {context_window_tokens(usage)} tokens")
    if diagnostics:
        lines.extend(f"  diagnostic: {d}" for d in diagnostics)
    else:
        lines.append("  diagnostics: none")
    return "\n".join(lines)


def _replay(name: str, chunks: Iterable[bytes], args: argparse.Namespace) -> bool:
    acc = UsageAccumulator(
        policy="strict" if args.strict else "warn", max_event_size=args.max_event_size
    )
    try:
        for chunk in chunks:
            acc.feed(chunk)
        usage = acc.finish()
    except StreamError as exc:
        print(f"usagetally: {name}: {exc}", file=sys.stderr)
        if args.partial and exc.partial is not None:
            if args.json:
                print(json.dumps(converter.unstructure(exc.partial)))
            else:
                print(_table(name, exc.partial, acc, acc.diagnostics, status="PARTIAL"))
        return False
    if args.json:
        print(json.dumps(converter.unstructure(usage)))
    else:
        print(_table(name, usage, acc, acc.diagnostics, status="complete"))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Each file is replayed as it is read, in 64 KiB chunks, so that memory stays flat however
    long the capture. Every path is opened once before anything is printed, so that a missing
    or unreadable file is reported up front.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 1 when a stream failed, 2 on bad arguments or an
        unreadable file, 130 when interrupted (Ctrl-C).

    """
    args = _parser().parse_args(argv)
    try:
        return _replay_all(args)
    except _ReadError as exc:
        print(f"usagetally: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("usagetally: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`usagetally replay ... | head`): say nothing
        # more, and keep Python from complaining when it flushes stdout at exit.
        _silence_stdout()
        return 1


def _replay_all(args: argparse.Namespace) -> int:
    for path in args.paths:
        if path != "-":
            _open(path).close()
    ok = True
    for index, path in enumerate(args.paths):
        if index and not args.json:
            print()
        try:
            if path == "-":
                ok = _replay("<stdin>", _chunks(sys.stdin.buffer, "<stdin>"), args) and ok
            else:
                with _open(path) as f:
                    ok = _replay(path, _chunks(f, path), args) and ok
        except UsageError as exc:  # a local misuse; reported, never a traceback
            print(f"usagetally: {path}: {exc}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def run() -> None:
    """Console-script entry point: exit with :func:`main`'s status."""
    sys.exit(main())
