"""Replay the recorded API streams and compare usagetally with the anthropic SDK.

Run: ``make real-streams`` (or ``.venv/bin/python tools/real_streams.py``). Options:
``--corpus DIR`` (default ``../shared/real-streams`` beside the repository), ``--seed N`` to
replay one run's random split points, ``--verbose`` to show the named differences too,
``--json PATH`` to write every file's outcomes.

Every file of the corpus (``manifest.json`` aside) is read

- by the command line: ``usagetally replay --json`` over all the files in one subprocess,
  with and without ``--strict``;
- by :meth:`UsageAccumulator.feed`, whole and at random split points (seeded; the seed is
  printed), under the ``"warn"`` and ``"strict"`` policies;
- by :meth:`UsageAccumulator.feed_event`, fed the anthropic SDK's event objects converted to
  mappings (``to_dict()``), under both policies;
- by the SDK: ``client.beta.messages.stream(...)`` over ``httpx2.MockTransport`` serving the
  file's bytes as ``text/event-stream`` (:func:`usagetally.testing.anthropic_client`), then
  ``get_final_message().usage.to_dict()``.

usagetally's paths must agree with one another exactly: the command line prints the usage
the API returns or the message of the error it raises, every split gives the outcome of the
whole file, and the events path gives the same usage or the same error class. Against the
SDK, the final usage in wire form (``converter.unstructure(final)``, which must equal
``to_sdk_usage(final).to_dict()``) must equal the SDK's key for key, unknown fields kept and
a null never equal to an absent key; when either side raises, the outcome classes are
compared (an SDK ``APIStatusError`` from an ``error`` event matches ``StreamErrorEvent`` of
the same ``error_type``, its ``RuntimeError`` on events before ``message_start`` matches
``EventOrderError``).

A difference with the SDK is accepted only when it is a named case of ``docs/guarantees.md``
("Recorded API streams"). Each case is recognised by a predicate on the stream's events,
never by a file name, and proved by a counterfactual: the case says what usagetally would
return without the quirk, or what the SDK would, and the two must then agree exactly. The
exit status is 1 on any other difference, 0 otherwise, and 0 when the corpus is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import attrs

from usagetally import (
    BetaMessageDeltaUsage,
    StreamError,
    StreamErrorEvent,
    UsageAccumulator,
    UsageError,
    converter,
    to_sdk_usage,
)
from usagetally.testing import anthropic_client

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / ".." / "shared" / "real-streams"
POLICIES = ("warn", "strict")
SPLITS = 4  # random chunkings per file and policy, besides the whole file
# Events the SDK's messages.stream() helper adds of its own: not on the wire, never fed.
HELPER_EVENTS = frozenset({"text", "thinking", "input_json", "citation", "signature", "compaction"})


# -- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one reader made of one stream: a final usage, or an error.

    ``usage`` is the final usage in wire form on success. On failure ``error`` is the
    exception's class name and ``message`` its text; ``where`` is (event index, byte offset),
    ``partial`` the partial usage in wire form and ``error_type`` the type of an ``error``
    event, when the reader gives them.
    """

    usage: dict[str, Any] | None = None
    error: str | None = None
    message: str | None = None
    where: tuple[int | None, int | None] | None = None
    partial: dict[str, Any] | None = None
    error_type: str | None = None
    diagnostics: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def brief(self) -> str:
        if self.ok:
            return "usage " + json.dumps(self.usage, sort_keys=True)
        return f"{self.error}: {self.message}"


def _wire(usage: Any) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(usage)
    return result


def _failed(exc: UsageError, acc: UsageAccumulator) -> Outcome:
    diagnostics = tuple(d.code for d in acc.diagnostics)
    if not isinstance(exc, StreamError):
        return Outcome(error=type(exc).__name__, message=str(exc), diagnostics=diagnostics)
    return Outcome(
        error=type(exc).__name__,
        message=str(exc),
        where=(exc.event_index, exc.byte_offset),
        partial=None if exc.partial is None else _wire(exc.partial),
        error_type=exc.error_type if isinstance(exc, StreamErrorEvent) else None,
        diagnostics=diagnostics,
    )


def _finish(acc: UsageAccumulator) -> Outcome:
    usage = acc.finish()
    wire = _wire(usage)
    sdk_form = to_sdk_usage(usage).to_dict(mode="json", warnings=False)
    if sdk_form != wire:  # to_sdk_usage must keep the wire form exactly
        return Outcome(
            error="to_sdk_usage changed the usage",
            message=f"to_sdk_usage gives {sdk_form}, the wire form is {wire}",
        )
    return Outcome(usage=wire, diagnostics=tuple(d.code for d in acc.diagnostics))


def _replay(feed: Callable[[UsageAccumulator], None], policy: str) -> Outcome:
    acc = UsageAccumulator(policy="strict" if policy == "strict" else "warn")
    try:
        feed(acc)
        return _finish(acc)
    except UsageError as exc:
        return _failed(exc, acc)
    except Exception as exc:  # a bug: nothing but UsageError may escape
        return Outcome(error=f"crash: {type(exc).__name__}", message=str(exc))


def replay_bytes(chunks: Sequence[bytes], policy: str) -> Outcome:
    """Feed the chunks to a fresh accumulator and finish it."""

    def feed(acc: UsageAccumulator) -> None:
        for chunk in chunks:
            acc.feed(chunk)

    return _replay(feed, policy)


def replay_events(events: Sequence[Mapping[str, Any]], policy: str) -> Outcome:
    """Feed event mappings to a fresh accumulator with ``feed_event``, and finish it."""

    def feed(acc: UsageAccumulator) -> None:
        for event in events:
            acc.feed_event(event)

    return _replay(feed, policy)


def split_points(data: bytes, rng: random.Random) -> list[int]:
    """A few random cut points inside ``data``, sorted."""
    if len(data) < 2:
        return []
    count = rng.randint(1, min(12, len(data) - 1))
    return sorted(rng.sample(range(1, len(data)), count))


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """``data`` cut at ``points``."""
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- the SDK ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SdkReading:
    """The SDK's reading of one stream: its outcome and the wire events it yielded."""

    outcome: Outcome
    events: list[dict[str, Any]]
    finished: bool  # the SDK read the stream to its end without raising


async def sdk_read(data: bytes) -> SdkReading:
    """Read ``data`` with the SDK's beta stream helper."""
    import anthropic

    events: list[dict[str, Any]] = []
    try:
        async with (
            anthropic_client(data) as client,
            client.beta.messages.stream(
                model="claude-sonnet-4-6",
                max_tokens=1024,
                messages=[{"role": "user", "content": "Hello"}],
            ) as stream,
        ):
            async for event in stream:
                if event.type not in HELPER_EVENTS:
                    events.append(event.to_dict(warnings=False))
            message = await stream.get_final_message()
        usage = message.usage.to_dict(mode="json", warnings=False)
    except anthropic.APIStatusError as exc:
        body = exc.body
        error = body.get("error") if isinstance(body, dict) else None
        kind = error.get("type") if isinstance(error, dict) else None
        outcome = Outcome(error="APIStatusError", message=str(exc), error_type=kind)
        return SdkReading(outcome, events, finished=False)
    except Exception as exc:  # whatever the SDK raises is an outcome to compare
        return SdkReading(Outcome(error=type(exc).__name__, message=str(exc)), events, False)
    return SdkReading(Outcome(usage=usage), events, finished=True)


def sdk_read_all(streams: Sequence[bytes]) -> list[SdkReading]:
    """Read every stream with the SDK, one after the other, on one event loop."""

    async def read() -> list[SdkReading]:
        return [await sdk_read(data) for data in streams]

    return asyncio.run(read())


# -- the command line -------------------------------------------------------------------


def cli_replay(paths: Sequence[Path], *, strict: bool) -> tuple[list[Outcome], int, str]:
    """Run ``usagetally replay --json`` over every path in one subprocess.

    Returns:
        Each path's outcome (the usage printed on stdout, or the message on stderr), the
        exit status, and the output that could not be attributed to a path.

    """
    script = Path(sys.executable).with_name("usagetally")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "usagetally"]
    command += ["replay", "--json", *(["--strict"] if strict else []), *map(str, paths)]
    done = subprocess.run(command, capture_output=True, check=False)
    # stdout: one JSON Lines record per input (docs/cli.md); stderr: one line per failure.
    records: dict[str, dict[str, Any]] = {}
    stray: list[str] = []
    for line in done.stdout.decode("utf-8").splitlines():
        record = json.loads(line)
        if record.get("record") == "stream" and record.get("path") not in records:
            records[record["path"]] = record
        else:
            stray.append(f"stdout: {line}")
    names = {str(p) for p in paths}
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        head, _, rest = line.partition(": ")
        if head != "usagetally" or rest.partition(": ")[0] not in names:
            stray.append(f"stderr: {line}")
    outcomes = []
    for path in paths:
        record = records.get(str(path))
        if record is None:
            outcomes.append(Outcome(error="nothing printed", message=""))
        elif record["status"] == "complete":
            outcomes.append(Outcome(usage=record["usage"]))
        else:
            outcomes.append(Outcome(error="error", message=record["error"]["message"]))
    return outcomes, done.returncode, "\n".join(stray)


# -- reading a stream's events, for the predicates ----------------------------------------


@dataclass(frozen=True)
class Block:
    """One event block of a stream, read literally by the SSE rules.

    ``start`` and ``end`` delimit its lines in the bytes (the blank line after it excluded);
    ``terminated`` says whether a blank line follows, which is what dispatches it.
    """

    start: int
    end: int
    name: str | None
    data: str | None
    terminated: bool

    @property
    def json(self) -> Any:
        if self.data is None:
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None

    @property
    def kind(self) -> str | None:
        """The event's SSE name, or the ``type`` of its JSON when it has none."""
        if self.name not in (None, "message"):
            return self.name
        body = self.json
        kind = body.get("type") if isinstance(body, dict) else None
        return kind if isinstance(kind, str) else None


_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def blocks(data: bytes) -> list[Block]:
    """The event blocks of ``data`` (comment-only blocks left out)."""
    out: list[Block] = []
    start: int | None = None
    name: str | None = None
    lines: list[str] = []
    end = 0
    for match in _LINE.finditer(data):
        raw = match.group()
        line = raw.rstrip(b"\r\n")
        if not line:
            if start is not None:
                out.append(Block(start, end, name, "\n".join(lines) if lines else None, True))
            start, name, lines = None, None, []
            continue
        if line.startswith(b":"):
            continue
        if start is None:
            start = match.start()
        end = match.start() + len(line)
        key, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if key == b"event":
            name = text
        elif key == b"data":
            lines.append(text)
    if start is not None:
        out.append(Block(start, end, name, "\n".join(lines) if lines else None, False))
    return out


def _usage_objects(events: Sequence[Block]) -> Iterator[Mapping[str, Any]]:
    """The usage objects the wire carries: on message_start and on each message_delta."""
    for block in events:
        body = block.json
        if not isinstance(body, dict):
            continue
        if block.kind == "message_start" and isinstance(body.get("message"), dict):
            body = body["message"]
        elif block.kind != "message_delta":
            continue
        usage = body.get("usage")
        if isinstance(usage, dict):
            yield usage


def null_paths(value: Any, prefix: str = "") -> set[str]:
    """The JSON paths inside ``value`` whose value is null."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found |= {path} if item is None else null_paths(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found |= null_paths(item, f"{prefix}[{i}]")
    return found


def drop_nulls(value: Any) -> Any:
    """``value`` with every null-valued key left out, at every depth."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# -- one file ---------------------------------------------------------------------------


@dataclass
class Stream:
    """One recorded stream and everything read from it."""

    name: str
    data: bytes
    events: list[Block] = field(default_factory=list)
    api: dict[str, Outcome] = field(default_factory=dict)  # policy -> whole-file outcome
    splits: dict[str, list[tuple[list[int], Outcome]]] = field(default_factory=dict)
    fed_events: dict[str, Outcome] = field(default_factory=dict)  # policy -> feed_event
    cli: dict[str, Outcome] = field(default_factory=dict)
    sdk: SdkReading | None = None
    differences: list[Difference] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``check`` names the comparison, under ``policy``.

    ``cases`` are the named cases that explain it (empty: unexplained).
    """

    check: str
    policy: str
    ours: Outcome
    theirs: Outcome
    cases: tuple[str, ...] = ()


def _cli_agrees(cli: Outcome, api: Outcome) -> bool:
    if api.ok:
        return cli.ok and cli.usage == api.usage
    return not cli.ok and cli.message == api.message


def _sdk_class(outcome: Outcome) -> tuple[str, str | None]:
    if outcome.ok:
        return ("usage", None)
    if outcome.error == "APIStatusError":
        return ("StreamErrorEvent", outcome.error_type)
    if outcome.error == "RuntimeError":
        return ("EventOrderError", None)
    return (f"the SDK's {outcome.error}", None)


def agrees_with_sdk(ours: Outcome, theirs: Outcome) -> bool:
    """The comparison rule against the SDK (module docstring)."""
    if ours.ok and theirs.ok:
        return ours.usage == theirs.usage
    if ours.ok or theirs.ok:
        return False
    return (ours.error, ours.error_type) == _sdk_class(theirs)


def compare(stream: Stream) -> list[Difference]:
    """Every disagreement of one stream, none explained yet."""
    found: list[Difference] = []
    assert stream.sdk is not None
    for policy in POLICIES:
        whole = stream.api[policy]
        for points, outcome in stream.splits[policy]:
            if outcome != whole:
                found.append(Difference(f"split at {points}", policy, outcome, whole))
        if not _cli_agrees(stream.cli[policy], whole):
            found.append(Difference("command line", policy, stream.cli[policy], whole))
        fed = stream.fed_events.get(policy)
        if fed is not None and (
            (fed.usage != whole.usage) if fed.ok and whole.ok else fed.error != whole.error
        ):
            found.append(Difference("feed_event of the SDK's events", policy, fed, whole))
        if not agrees_with_sdk(whole, stream.sdk.outcome):
            found.append(Difference("the SDK", policy, whole, stream.sdk.outcome))
    return found


# -- named cases (each documented in docs/guarantees.md, "Recorded API streams") ----------


@dataclass(frozen=True)
class Case:
    """A named difference with the SDK.

    ``applies`` is the predicate on the stream. The counterfactual is one or more of
    ``ours`` (the bytes usagetally would need to give the SDK's answer), ``sdk`` (the bytes
    the SDK would need to give ours) and ``normalise`` (both outcomes with the difference
    taken out, and nothing else).
    """

    name: str
    applies: Callable[[Stream], bool]
    ours: Callable[[bytes], bytes] | None = None
    sdk: Callable[[bytes], bytes] | None = None
    normalise: Callable[[Stream, Outcome, Outcome], tuple[Outcome, Outcome]] | None = None


def _ends_without_blank_line(stream: Stream) -> bool:
    # The last event is never dispatched by the SSE rules; it is the stream's message_stop.
    return bool(stream.events) and (
        not stream.events[-1].terminated and stream.events[-1].kind == "message_stop"
    )


def _add_blank_line(data: bytes) -> bytes:
    return data + (b"\n" if data.endswith((b"\n", b"\r")) else b"\n\n")


def _starts_before_stop(stream: Stream) -> list[Block]:
    """The dispatched message_start events before the first message_stop."""
    starts = []
    for block in stream.events:
        if not block.terminated or block.kind == "message_stop":
            break
        if block.kind == "message_start":
            starts.append(block)
    return starts


def _repeated_start(stream: Stream) -> bool:
    # The same message_start event, byte for byte, more than once before message_stop.
    starts = _starts_before_stop(stream)
    return len(starts) > 1 and len({b.data for b in starts}) == 1


def _message_id(block: Block) -> object:
    body = block.json
    message = body.get("message") if isinstance(body, dict) else None
    return message.get("id") if isinstance(message, dict) else None


def _spliced_start(stream: Stream) -> bool:
    # A message_start of another message before the first one's message_stop.
    starts = _starts_before_stop(stream)
    return len({_message_id(b) for b in starts}) > 1


def _without_later_starts(data: bytes) -> bytes:
    """Leave out every message_start after the first (the SDK's accumulator ignores them)."""
    events = blocks(data)
    later = {id(b) for b in _starts_before_stop(Stream("", data, events))[1:]}
    kept = []
    for block, after in zip(events, [*events[1:], None], strict=True):
        if id(block) not in later:
            kept.append(data[block.start : len(data) if after is None else after.start])
    return data[: events[0].start] + b"".join(kept) if events else data


def _start_without_content(stream: Stream) -> bool:
    # message_start's message has no content list, and content blocks follow.
    kinds = [b.kind for b in stream.events]
    if "message_start" not in kinds or "content_block_start" not in kinds:
        return False
    body = stream.events[kinds.index("message_start")].json
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, dict) and not isinstance(message.get("content"), list)


def _with_empty_content(data: bytes) -> bytes:
    """The stream with ``"content": []`` added to message_start's message."""
    for block in blocks(data):
        body = block.json
        if block.kind == "message_start" and isinstance(body, dict):
            body["message"] = {**body["message"], "content": []}
            event = f"event: {block.name}\n" if block.name is not None else ""
            text = f"{event}data: {json.dumps(body)}".encode()
            return data[: block.start] + text + data[block.end :]
    return data


def _sdk_nulls_from_the_wire(stream: Stream) -> bool:
    # The SDK's usage holds nulls, each one a null the wire sent at the same place.
    assert stream.sdk is not None
    usage = stream.sdk.outcome.usage
    if usage is None:
        return False
    sent: set[str] = set()
    for obj in _usage_objects(stream.events):
        sent |= null_paths(obj)
    kept = null_paths(usage)
    return bool(kept) and kept <= sent


def _without_nulls(stream: Stream, ours: Outcome, theirs: Outcome) -> tuple[Outcome, Outcome]:
    return ours, replace(theirs, usage=drop_nulls(theirs.usage)) if theirs.ok else theirs


# The usage fields the SDK's accumulator copies from a message_delta (anthropic 2.12.0,
# lib/streaming/_beta_messages.py, accumulate_event): the fields of its MessageDeltaUsage, which
# are BetaMessageDeltaUsage's; it leaves any other field out.
SDK_DELTA_FIELDS = frozenset(a.name for a in attrs.fields(BetaMessageDeltaUsage)) - {
    "unknown_fields"
}


def _uncopied_delta_fields(stream: Stream) -> set[str]:
    found: set[str] = set()
    for block in stream.events:
        body = block.json
        if block.kind == "message_delta" and isinstance(body, dict):
            usage = body.get("usage")
            if isinstance(usage, dict):
                found |= {k for k, v in usage.items() if v is not None} - SDK_DELTA_FIELDS
    return found


def _without_uncopied(stream: Stream, ours: Outcome, theirs: Outcome) -> tuple[Outcome, Outcome]:
    fields = _uncopied_delta_fields(stream)

    def drop(outcome: Outcome) -> Outcome:
        if not outcome.ok or outcome.usage is None:
            return outcome
        return replace(outcome, usage={k: v for k, v in outcome.usage.items() if k not in fields})

    return drop(ours), drop(theirs)


CASES = (
    Case("no-final-blank-line", _ends_without_blank_line, ours=_add_blank_line),
    Case("message-without-content", _start_without_content, sdk=_with_empty_content),
    Case("null-kept-by-the-sdk", _sdk_nulls_from_the_wire, normalise=_without_nulls),
    Case("repeated-message-start", _repeated_start, ours=_without_later_starts),
    Case("spliced-message-start", _spliced_start, ours=_without_later_starts),
    Case(
        "field-the-sdk-drops-from-a-delta",
        lambda stream: bool(_uncopied_delta_fields(stream)),
        normalise=_without_uncopied,
    ),
)


def explain(stream: Stream, difference: Difference) -> Difference:
    """The difference, with the named cases that explain it (if they do, together)."""
    if difference.check != "the SDK":
        return difference  # usagetally disagreeing with itself is never explained
    cases = [c for c in CASES if c.applies(stream)]
    if not cases:
        return difference
    ours_data = sdk_data = stream.data
    for case in cases:
        if case.ours is not None:
            ours_data = case.ours(ours_data)
        if case.sdk is not None:
            sdk_data = case.sdk(sdk_data)
    ours = replay_bytes([ours_data], difference.policy)
    theirs = difference.theirs
    if sdk_data != stream.data:
        (reading,) = sdk_read_all([sdk_data])
        theirs = reading.outcome
    for case in cases:
        if case.normalise is not None:
            ours, theirs = case.normalise(stream, ours, theirs)
    if not agrees_with_sdk(ours, theirs):
        return difference
    return replace(difference, cases=tuple(c.name for c in cases))


# -- the run ----------------------------------------------------------------------------


def corpus_files(corpus: Path) -> list[Path]:
    """Every file of the corpus but its manifest, in name order."""
    return sorted(p for p in corpus.iterdir() if p.is_file() and p.name != "manifest.json")


def replay_corpus(paths: Sequence[Path], seed: int) -> tuple[list[Stream], list[str]]:
    """Read every stream every way, and compare."""
    problems: list[str] = []
    streams = []
    for path in paths:
        data = path.read_bytes()
        streams.append(Stream(path.name, data, blocks(data)))
    readings = sdk_read_all([s.data for s in streams])
    for policy in POLICIES:
        outcomes, status, stray = cli_replay(paths, strict=policy == "strict")
        expected = 1 if any(not o.ok for o in outcomes) else 0
        if status != expected:
            problems.append(f"usagetally replay ({policy}) exited {status}, not {expected}")
        if stray:
            problems.append(f"usagetally replay ({policy}) printed, for no file:\n{stray}")
        for stream, outcome in zip(streams, outcomes, strict=True):
            stream.cli[policy] = outcome
    for stream, reading in zip(streams, readings, strict=True):
        stream.sdk = reading
        rng = random.Random(f"{seed}/{stream.name}")
        for policy in POLICIES:
            stream.api[policy] = replay_bytes([stream.data], policy)
            stream.splits[policy] = []
            for _ in range(SPLITS):
                points = split_points(stream.data, rng)
                outcome = replay_bytes(cut(stream.data, points), policy)
                stream.splits[policy].append((points, outcome))
            if reading.finished:
                stream.fed_events[policy] = replay_events(reading.events, policy)
        stream.differences = [explain(stream, d) for d in compare(stream)]
    return streams, problems


def summary(streams: Sequence[Stream], problems: Sequence[str], seed: int) -> tuple[str, bool]:
    """The summary line, and whether the run passes."""
    named: Counter[str] = Counter()
    agree = explained = unexplained = 0
    for stream in streams:
        if not stream.differences:
            agree += 1
        elif all(d.cases for d in stream.differences):
            explained += 1
            named.update({c for d in stream.differences for c in d.cases})
        else:
            unexplained += 1
    names = ", ".join(f"{n} {k}" for n, k in sorted(named.items(), key=lambda t: (-t[1], t[0])))
    line = (
        f"real-streams: {len(streams)} files, {agree} agree, {explained} named differences"
        + (f" ({names})" if names else "")
        + f", {unexplained} unexplained (seed {seed})"
    )
    return line, unexplained == 0 and not problems


def report(stream: Stream, *, verbose: bool) -> Iterator[str]:
    """The lines describing one stream's differences (the named ones only when verbose)."""
    shown = [d for d in stream.differences if verbose or not d.cases]
    if shown:
        yield f"{stream.name}:"
    for d in shown:
        yield f"  [{', '.join(d.cases) or 'UNEXPLAINED'}] {d.check} ({d.policy})"
        yield f"    usagetally: {d.ours.brief()}"
        yield f"    against:    {d.theirs.brief()}"


def as_json(stream: Stream) -> dict[str, Any]:
    """One stream's outcomes, for ``--json``."""

    def plain(outcome: Outcome) -> dict[str, Any]:
        return {k: v for k, v in vars(outcome).items() if v not in (None, ())}

    assert stream.sdk is not None
    return {
        "api": {p: plain(o) for p, o in stream.api.items()},
        "feed_event": {p: plain(o) for p, o in stream.fed_events.items()},
        "cli": {p: plain(o) for p, o in stream.cli.items()},
        "sdk": plain(stream.sdk.outcome),
        "differences": [
            {
                "check": d.check,
                "policy": d.policy,
                "cases": list(d.cases),
                "ours": plain(d.ours),
                "theirs": plain(d.theirs),
            }
            for d in stream.differences
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the folder of streams")
    parser.add_argument("--seed", type=int, default=None, help="the seed of the split points")
    parser.add_argument("--verbose", "-v", action="store_true", help="show named differences")
    parser.add_argument("--json", type=Path, default=None, dest="json_path", metavar="PATH")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    if not corpus.is_dir():
        print(f"real-streams: no folder {corpus}, nothing to check")
        return 0
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    streams, problems = replay_corpus(corpus_files(corpus), seed)
    for stream in streams:
        for line in report(stream, verbose=args.verbose):
            print(line)
    for problem in problems:
        print(f"real-streams: {problem}")
    if args.json_path is not None:
        outcomes = {s.name: as_json(s) for s in streams}
        args.json_path.write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    line, ok = summary(streams, problems, seed)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
