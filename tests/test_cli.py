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


def test_an_unreadable_path_is_reported_before_anything_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = str(EXAMPLES / "plain.sse")
    assert main(["replay", good, str(tmp_path / "missing.sse")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"usagetally: cannot read {tmp_path / 'missing.sse'}: No such file or directory\n"
    )
    assert main(["replay", good, str(tmp_path)]) == 2  # a directory
    assert "Is a directory" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM, Linux only")
def test_a_long_capture_is_replayed_as_it_is_read(tmp_path: Path) -> None:
    # 96 MiB of text deltas between a start and an end: if the command read the whole file
    # before replaying it, its peak memory would grow by as much.
    data = (EXAMPLES / "plain.sse").read_bytes()
    head, tail = data.split(b"event: message_delta", 1)
    delta = (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"' + b"x" * 900 + b'"}}\n\n'
    )
    path = tmp_path / "long.sse"
    with open(path, "wb") as f:
        f.write(head)
        block = delta * 1024
        for _ in range(96 * 1024 * 1024 // len(block)):
            f.write(block)
        f.write(b"event: message_delta" + tail)
    # VmHWM is the peak of this process image alone; ru_maxrss would also count the pytest
    # process the child was forked from, as Linux carries it across exec.
    code = (
        "import re, sys\n"
        "from usagetally._cli import main\n"
        "status = main(['replay', '--json', sys.argv[1]])\n"
        "with open('/proc/self/status') as f:\n"
        "    peak_kib = int(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
        "print(status, peak_kib // 1024, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    status, peak_mib = map(int, result.stderr.split())
    assert status == 0
    assert json.loads(result.stdout) == expected("plain")
    assert peak_mib < 80, f"peak RSS {peak_mib} MiB for a {path.stat().st_size >> 20} MiB capture"


def test_interrupted_exits_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import usagetally._cli as cli

    def interrupted(*args: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_replay", interrupted)
    assert main(["replay", str(EXAMPLES / "plain.sse")]) == 130
    assert capsys.readouterr().err == "usagetally: interrupted\n"


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `usagetally replay ... | head -1`: the pipe closes while the tables are being written.
    paths = [str(EXAMPLES / "compaction.sse")] * 400  # far more than a pipe buffer holds
    with subprocess.Popen(
        [sys.executable, "-m", "usagetally", "replay", *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 1
    assert first.endswith(b"compaction.sse: complete\n")
    assert stderr == b""
