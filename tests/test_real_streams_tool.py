"""``tools/real_streams.py``, the real-stream check, on streams written here.

The recorded corpus is other people's data and lives outside the repository; these tests
build a small corpus of their own in a temporary folder, with one stream per named case,
and check that the tool accepts each named difference, refuses any other, and passes
quietly when the corpus is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import real_streams  # noqa: E402
from support import EXAMPLES  # noqa: E402

from usagetally.testing import (  # noqa: E402
    content_block_start,
    content_block_stop,
    message_delta,
    message_start,
    message_stop,
    sse_bytes,
    text_delta,
    text_stream,
)


def run(corpus: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = real_streams.main(["--corpus", str(corpus), "--seed", "7", *args])
    return status, capsys.readouterr().out


def corpus_of(tmp_path: Path, streams: dict[str, bytes]) -> Path:
    folder = tmp_path / "real-streams"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")  # not a stream: left out
    for name, data in streams.items():
        (folder / name).write_bytes(data)
    return folder


def plain() -> bytes:
    return sse_bytes(text_stream(["Hello", "!"], input_tokens=30, output_tokens=9))


def test_an_absent_corpus_passes_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path / "nowhere", capsys)
    assert status == 0
    assert out == f"real-streams: no folder {tmp_path / 'nowhere'}, nothing to check\n"


def test_the_bundled_examples_agree_on_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = corpus_of(tmp_path, {p.name: p.read_bytes() for p in EXAMPLES.glob("*.sse")})
    status, out = run(corpus, capsys)
    assert out == "real-streams: 7 files, 7 agree, 0 named differences, 0 unexplained (seed 7)\n"
    assert status == 0


def named_streams() -> dict[str, bytes]:
    start = message_start(input_tokens=30, message_id="msg_a")
    other = message_start(input_tokens=55, message_id="msg_b")
    body = [content_block_start(), text_delta("Hi"), content_block_stop()]
    end = [message_delta(output_tokens=9), message_stop()]
    no_content = sse_bytes([start, *body, *end]).replace(b'"content":[],', b"", 1)
    with_null = plain().replace(b'"input_tokens":30,', b'"input_tokens":30,"speed":null,', 1)
    return {
        "no-blank-line.sse": plain()[:-2],
        "repeated-start.sse": sse_bytes([start, start, *body, *end]),
        "spliced-start.sse": sse_bytes([start, content_block_start(), other, *body, *end]),
        "no-content.sse": no_content,
        "null-on-start.sse": with_null,
        "new-field-on-delta.sse": sse_bytes(
            [start, *body, message_delta(output_tokens=9, new_count=3), message_stop()]
        ),
    }


def test_each_named_case_is_recognised_and_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = corpus_of(tmp_path, {"plain.sse": plain(), **named_streams()})
    status, out = run(corpus, capsys, "--verbose")
    assert out.splitlines()[-1] == (
        "real-streams: 7 files, 1 agree, 6 named differences (field-the-sdk-drops-from-a-delta"
        " 1, message-without-content 1, no-final-blank-line 1, null-kept-by-the-sdk 1,"
        " repeated-message-start 1, spliced-message-start 1), 0 unexplained (seed 7)"
    )
    assert status == 0
    assert "UNEXPLAINED" not in out
    assert "no-blank-line.sse:\n  [no-final-blank-line] the SDK (warn)\n" in out
    assert "    usagetally: IncompleteStreamError: the stream ended before message_stop" in out


def test_a_difference_no_case_explains_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cut before message_stop: the SDK hands out the usage, usagetally says it is incomplete.
    corpus = corpus_of(tmp_path, {"plain.sse": plain(), "cut.sse": plain()[:-31]})
    status, out = run(corpus, capsys)
    assert status == 1
    assert out.splitlines()[0] == "cut.sse:"
    assert "  [UNEXPLAINED] the SDK (warn)" in out
    assert out.splitlines()[-1] == (
        "real-streams: 2 files, 1 agree, 0 named differences, 1 unexplained (seed 7)"
    )


def test_a_case_explains_only_the_difference_it_predicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No blank line after message_stop, but no message_delta either: adding the blank line
    # still leaves usagetally refusing the stream, so the case does not cover it.
    events = [message_start(), content_block_start(), content_block_stop(), message_stop()]
    corpus = corpus_of(tmp_path, {"no-delta.sse": sse_bytes(events)[:-2]})
    status, out = run(corpus, capsys)
    assert status == 1
    assert "[UNEXPLAINED] the SDK (strict)" in out


def test_strict_refusals_are_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A count going down between deltas: a warning by default, refused by --strict.
    events = [
        message_start(),
        message_delta(output_tokens=9, stop_reason=None),
        message_delta(output_tokens=5),
        message_stop(),
    ]
    corpus = corpus_of(tmp_path, {"down.sse": sse_bytes(events)})
    status, out = run(corpus, capsys)
    assert status == 1
    assert "  [UNEXPLAINED] the SDK (strict)\n    usagetally: InconsistentUsageError" in out
    assert "the SDK (warn)" not in out


def test_blocks_read_the_sse_rules_literally() -> None:
    data = b': comment\r\nevent: ping\r\ndata: {}\r\n\r\ndata: {"type":"message_stop"}\n'
    first, last = real_streams.blocks(data)
    assert (first.name, first.data, first.terminated) == ("ping", "{}", True)
    assert data[first.start : first.end] == b"event: ping\r\ndata: {}"
    assert (last.name, last.kind, last.terminated) == (None, "message_stop", False)


def test_every_named_case_is_documented_in_the_guarantees() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "guarantees.md").read_text("utf-8")
    section = page.split("## Recorded API streams", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [row.split("`")[1] for row in rows]
    assert documented == [case.name for case in real_streams.CASES]
    for name in documented:
        assert f"- **`{name}`**:" in section  # and why usagetally's answer is right
