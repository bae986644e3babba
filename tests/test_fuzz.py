"""Fuzzing the accumulator with whole generated streams (tests/stream_strategies.py).

Properties:

- A valid stream gives exactly its expected usage under ``policy="strict"``, whatever the
  chunking and whichever way it is fed (bytes, ``feed_sse``, ``feed_event``).
- On a broken stream (bytes flipped, cut, inserted, repeated; events dropped, duplicated,
  swapped, moved, renamed or foreign) only ``UsageError`` subclasses escape, and any chunking
  gives the same outcome (usage, or error class, index, offset, partial and message).
- Under ``policy="off"`` the outcome is the one the reference reader predicts: the same error
  class at the same event and byte, with the partial usage the events before it imply.
- Under ``policy="strict"`` the partial usage of any error is what the events before the
  failing event imply (a final check reports the whole usage).

Profiles: a quick one in the test gate (deterministic, about 10 s for the file), and
``--fuzz-long`` (``make fuzz-long``): 100,000 examples per property, random, with the seed
printed (rerun one with ``USAGETALLY_FUZZ_SEED=<seed> make fuzz-long``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from stream_strategies import (
    CUTS,
    Outcome,
    Stream,
    chunk,
    frame_mutations,
    matches,
    mutated_streams,
    outcome_of,
    parse_sse,
    reference_outcome,
    valid_streams,
)

import usagetally
from usagetally import BetaUsage, Policy, StreamError, UsageAccumulator

Test = Callable[..., None]
Fuzz = Callable[[Test], Test]

QUICK_EXAMPLES = 100
LONG_EXAMPLES = 100_000

settings.register_profile(
    "usagetally-fuzz-quick",
    max_examples=QUICK_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "usagetally-fuzz-long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz(request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    """Apply the quick profile, or with ``--fuzz-long`` the long one with a printed seed."""
    if not request.config.getoption("--fuzz-long", default=False):
        yield settings(settings.get_profile("usagetally-fuzz-quick"))
        return
    chosen = int(os.environ.get("USAGETALLY_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")

    def say(line: str) -> None:
        # Around the capture of the test's output, so that the seed is always shown.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            (reporter.write_line if reporter is not None else print)(line)

    say(f"\nfuzz-long: seed {chosen} (rerun: USAGETALLY_FUZZ_SEED={chosen} make fuzz-long)")
    long = settings(settings.get_profile("usagetally-fuzz-long"))
    started = time.monotonic()

    def apply(test: Test) -> Test:
        return seed(chosen)(long(test))

    RUNS.clear()
    yield apply
    for name, runs in sorted(RUNS.items()):
        say(f"fuzz-long: {name}: {runs} examples run")
    say(f"fuzz-long: module done in {time.monotonic() - started:.0f} s")


RUNS: Counter[str] = Counter()
"""Examples run per property (calls of its body, shrinking included), reported by --fuzz-long."""


def count() -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    RUNS[test] += 1


def feed_bytes(pieces: list[bytes], policy: Policy) -> Callable[[], BetaUsage]:
    def run() -> BetaUsage:
        acc = UsageAccumulator(policy=policy)
        for piece in pieces:
            acc.feed(piece)
        return acc.finish()

    return run


def accumulated(data: bytes, policy: Policy, cuts: list[int] | None = None) -> Outcome:
    return outcome_of(feed_bytes(chunk(data, cuts) if cuts else [data], policy))


def test_valid_streams_give_exactly_the_expected_usage(fuzz: Fuzz) -> None:
    @fuzz
    @given(valid_streams())
    def check(stream: Stream) -> None:
        count()
        data = stream.to_bytes()
        acc = UsageAccumulator(policy="strict")
        acc.feed(data)
        result = outcome_of(acc.finish)
        assert result == Outcome(usage=stream.expected)
        assert acc.complete
        assert [d.code for d in acc.diagnostics] == (["cache_split_stale"] if stream.stale else [])
        # The generator and the reference reader agree on what was sent.
        events = parse_sse(data)
        assert [name for name, _, _ in events] == [
            frame.event_name if frame.style.named else "message" for frame in stream.frames
        ]
        merged = reference_outcome(events).usage
        assert stream.expected is not None
        assert merged == stream.expected

    check()


def test_valid_streams_any_chunking_and_feeding_mode(fuzz: Fuzz) -> None:
    @fuzz
    @given(valid_streams(), CUTS)
    def check(stream: Stream, cuts: list[int]) -> None:
        count()
        expected = Outcome(usage=stream.expected)
        assert accumulated(stream.to_bytes(), "strict", cuts) == expected

        def by_events() -> BetaUsage:
            acc = UsageAccumulator(policy="strict")
            for event in stream.events():
                acc.feed_event(event)
            return acc.finish()

        def by_sse() -> BetaUsage:
            acc = UsageAccumulator(policy="strict")
            for name, data, _ in parse_sse(stream.to_bytes()):
                acc.feed_sse(name, data)
            return acc.finish()

        assert outcome_of(by_events) == expected
        assert outcome_of(by_sse) == expected

    check()


def test_broken_streams_raise_only_usage_errors_whatever_the_chunking(
    fuzz: Fuzz,
) -> None:
    @fuzz
    @given(mutated_streams(), CUTS, st.sampled_from(["strict", "off"]))
    def check(data: bytes, cuts: list[int], policy: Policy) -> None:
        count()
        whole = accumulated(data, policy)
        if whole.error is not None:
            assert issubclass(getattr(usagetally, whole.error), StreamError)
        chunked = accumulated(data, policy, cuts)
        assert chunked == whole
        assert chunked.message == whole.message

    check()


def test_broken_streams_give_the_reference_outcome(fuzz: Fuzz) -> None:
    @fuzz
    @given(mutated_streams())
    def check(data: bytes) -> None:
        count()
        expected = reference_outcome(parse_sse(data))
        actual = accumulated(data, "off")
        assert matches(actual, expected), (actual, expected)

    check()


def test_event_mutations_fed_as_events_give_the_reference_outcome(
    fuzz: Fuzz,
) -> None:
    @fuzz
    @given(st.data())
    def check(data: st.DataObject) -> None:
        count()
        stream = data.draw(frame_mutations(data.draw(valid_streams())))
        events = stream.events()

        def run() -> BetaUsage:
            acc = UsageAccumulator(policy="off")
            for event in events:
                acc.feed_event(event)
            return acc.finish()

        # feed_event dispatches on the JSON type: like unnamed events on the wire.
        expected = reference_outcome([("message", json.dumps(e), None) for e in events])
        actual = outcome_of(run)
        assert matches(actual, expected), (actual, expected)

    check()


def test_partial_usage_is_what_the_events_before_the_failure_imply(
    fuzz: Fuzz,
) -> None:
    @fuzz
    @given(mutated_streams())
    def check(data: bytes) -> None:
        count()
        actual = accumulated(data, "strict")
        if actual.error is None:
            return
        assert actual.event_index is not None
        events = parse_sse(data)
        before = reference_outcome(events[: actual.event_index])
        implied = before.usage if before.error is None else before.partial
        partial = actual.partial
        assert partial == implied, (actual, before)

    check()
