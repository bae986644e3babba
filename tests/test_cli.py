"""The ``usagetally replay`` command: output, exit status, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from usagetally._cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"


def expected(name: str) -> object:
    return json.loads((EXAMPLES / "expected" / f"{name}.json").read_text())


def test_json_prints_the_final_usage_per_stream(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [EXAMPLES / "compaction.sse", EXAMPLES / "advisor.sse"]
    assert main(["replay", "--json", *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [expected("compaction"), expected("advisor")]


def test_table_shows_iterations_billed_totals_and_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(EXAMPLES / "compaction.sse")]) == 0
    out = capsys.readouterr().out
    assert "compaction.sse: complete" in out
    assert "[0] compaction" in out
    assert "billed total                203000      4500" in out
    assert "context window: 23000 tokens" in out
    assert "diagnostics: none" in out


def test_advisor_table_splits_billed_tokens_by_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(EXAMPLES / "advisor.sse")]) == 0
    out = capsys.readouterr().out
    assert "billed claude-opus-4-7" in out


def cut_stream(tmp_path: Path) -> Path:
    data = (EXAMPLES / "plain.sse").read_bytes()
    path = tmp_path / "cut.sse"
    path.write_bytes(data[: data.index(b"event: message_delta")])
    return path


def test_stream_error_exits_1_with_one_line_and_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cut_stream(tmp_path)
    assert main(["replay", "--json", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "before any message_delta" in captured.err
    assert str(path) in captured.err


def test_partial_prints_the_partial_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cut_stream(tmp_path)
    assert main(["replay", "--json", "--partial", str(path)]) == 1
    partial = json.loads(capsys.readouterr().out)
    assert partial["output_tokens"] == 1
    assert partial["input_tokens"] == expected("plain")["input_tokens"]  # type: ignore[index]
    assert main(["replay", "--partial", str(path)]) == 1
    assert "cut.sse: PARTIAL" in capsys.readouterr().out


def test_strict_turns_diagnostics_into_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (EXAMPLES / "compaction.sse").read_text()
    # Make the final top level disagree with the iterations.
    broken = text.replace('"output_tokens":1000,"iterations"', '"output_tokens":1001,"iterations"')
    assert broken != text
    path = tmp_path / "inconsistent.sse"
    path.write_text(broken)
    assert main(["replay", str(path)]) == 0
    assert "diagnostic: top_level_mismatch" in capsys.readouterr().out
    assert main(["replay", "--strict", str(path)]) == 1
    assert "top_level_mismatch" in capsys.readouterr().err


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.sse")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bad_arguments_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay"])
    assert info.value.code == 2


def test_console_entry_reads_stdin_without_traceback() -> None:
    data = (EXAMPLES / "plain.sse").read_bytes()
    ok = subprocess.run(
        [sys.executable, "-m", "usagetally", "replay", "--json", "-"],
        input=data,
        capture_output=True,
        check=False,
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == expected("plain")
    broken = subprocess.run(
        [sys.executable, "-m", "usagetally", "replay", "-"],
        input=b"event: message_start\ndata: {oops\n\n",
        capture_output=True,
        check=False,
    )
    assert broken.returncode == 1
    assert b"Traceback" not in broken.stderr
    assert broken.stderr.decode().startswith("usagetally: <stdin>: message_start data is not")
