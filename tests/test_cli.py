"""The ``usagetally replay`` command: output, exit status, hostile inputs, no tracebacks.

Every case runs in-process through ``main(argv)`` where that is enough, and in a subprocess
where the case is about the process itself (closed descriptors, pipes, memory, exit status).
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from support import EXAMPLES, NAMES, expected, transcript

from usagetally import (
    UsageAccumulator,
    UsageTotals,
    billed_totals,
    context_window_tokens,
    totals_by_model,
    totals_by_type,
)
from usagetally._cli import DEFAULT_MAX_EVENT_SIZE, main

REAL_STREAMS = Path(__file__).resolve().parent.parent.parent / "shared" / "real-streams"


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def cli(
    *args: str, input: bytes | None = None, timeout: float = 60, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "usagetally", *args],
        input=input,
        capture_output="stdout" not in kwargs and "stderr" not in kwargs,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def no_traceback(*outputs: bytes | str) -> None:
    for output in outputs:
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        assert "Traceback" not in text
        assert "Exception ignored" not in text


def cut(data: bytes, marker: bytes = b"event: message_delta") -> bytes:
    return data[: data.index(marker)]


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# -- --json ------------------------------------------------------------------------------------


def test_json_writes_one_object_per_input_with_usage_and_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = [str(EXAMPLES / f"{name}.sse") for name in NAMES]
    assert main(["replay", "--json", *paths]) == 0
    records = lines(capsys.readouterr().out)
    assert [r["path"] for r in records] == paths
    for name, record in zip(NAMES, records, strict=True):
        assert record["record"] == "stream"
        assert record["stream"] == 0
        assert record["status"] == "complete"
        assert record["error"] is None
        assert record["usage"] == expected(name)
        assert record["diagnostics"] == []
        assert record["events"] > 0


def test_json_figures_are_the_library_figures(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("advisor", "compaction", "fallback"):
        acc = UsageAccumulator()
        acc.feed(transcript(name))
        usage = acc.finish()
        assert main(["replay", "--json", str(EXAMPLES / f"{name}.sse")]) == 0
        (record,) = lines(capsys.readouterr().out)
        figures = record["figures"]
        assert record["model"] == acc.model
        assert figures["context_window_tokens"] == context_window_tokens(usage)
        billed = billed_totals(usage)
        assert figures["billed_totals"] == {
            "input_tokens": billed.input_tokens,
            "output_tokens": billed.output_tokens,
            "cache_creation_input_tokens": billed.cache_creation_input_tokens,
            "cache_read_input_tokens": billed.cache_read_input_tokens,
        }
        by_model = totals_by_model(usage, model=acc.model)
        assert [m["model"] for m in figures["totals_by_model"]] == list(by_model)
        assert [m["output_tokens"] for m in figures["totals_by_model"]] == [
            c.output_tokens for c in by_model.values()
        ]
        by_type = totals_by_type(usage)
        assert {k: v["input_tokens"] for k, v in figures["totals_by_type"].items()} == {
            k: v.input_tokens for k, v in by_type.items()
        }


def test_a_failed_input_still_gets_its_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = str(EXAMPLES / "plain.sse")
    missing = str(tmp_path / "missing.sse")
    broken = write(tmp_path, "cut.sse", cut(transcript("plain")))
    assert main(["replay", "--json", plain, missing, broken, str(tmp_path), plain]) == 3
    captured = capsys.readouterr()
    records = lines(captured.out)
    assert [(r["path"], r["status"]) for r in records] == [
        (plain, "complete"),
        (missing, "error"),
        (broken, "incomplete"),
        (str(tmp_path), "error"),
        (plain, "complete"),
    ]
    assert records[1]["error"] == {
        "class": "FileNotFoundError",
        "message": "cannot open: No such file or directory",
        "event_index": None,
        "byte_offset": None,
    }
    assert records[1]["usage"] is None
    assert records[1]["figures"] is None
    error = records[2]["error"]
    assert error["class"] == "IncompleteStreamError"
    assert error["event_index"] == 12
    assert error["byte_offset"] is None
    assert "before any message_delta" in error["message"]
    # The partial usage is kept: the start's input and its placeholder output.
    assert records[2]["usage"]["input_tokens"] == expected("plain")["input_tokens"]
    assert records[2]["usage"]["output_tokens"] == 1
    assert records[2]["figures"]["billed_totals"]["input_tokens"] == 21
    assert records[3]["error"]["class"] == "IsADirectoryError"
    assert captured.err.splitlines() == [
        f"usagetally: {missing}: cannot open: No such file or directory",
        f"usagetally: {broken}: {error['message']}",
        f"usagetally: {tmp_path}: cannot open: Is a directory",
    ]


def test_json_error_names_class_event_byte_and_details(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = transcript("plain").replace(b'"output_tokens":42', b'"output_tokens":"42"')
    path = write(tmp_path, "bad.sse", data)
    assert main(["replay", "--json", path]) == 1
    (record,) = lines(capsys.readouterr().out)
    assert record["status"] == "error"
    error = record["error"]
    assert error["class"] == "MalformedEventError"
    assert error["json_path"] == "usage.output_tokens"
    assert error["event_index"] == 12
    assert error["byte_offset"] == data.index(b"event: message_delta")
    assert record["usage"]["output_tokens"] == 1  # what was counted before it


# -- --total -----------------------------------------------------------------------------------


def test_total_is_the_sum_over_inputs_through_usage_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = write(tmp_path, "cut.sse", cut(transcript("advisor")))
    paths = [str(EXAMPLES / f"{name}.sse") for name in NAMES] + [broken]
    assert main(["replay", "--json", "--total", *paths]) == 1
    *records, total = lines(capsys.readouterr().out)
    assert len(records) == len(paths)
    reference = UsageTotals()
    for name in NAMES:
        acc = UsageAccumulator()
        acc.feed(transcript(name))
        reference.add(acc.finish(), model=acc.model)
    partial = UsageAccumulator()
    partial.feed(cut(transcript("advisor")))
    assert partial.usage is not None
    reference.add(partial.usage, model=partial.model, complete=False)
    assert total["record"] == "total"
    assert total["streams"] == {"complete": len(NAMES), "incomplete": 1, "error": 0}
    assert total["partial_included"] == 1
    assert total["billed_totals"]["input_tokens"] == reference.total.input_tokens
    assert total["billed_totals"]["output_tokens"] == reference.total.output_tokens
    assert {m["model"]: m["input_tokens"] for m in total["totals_by_model"]} == {
        k: v.input_tokens for k, v in reference.by_model.items()
    }
    assert total["server_tool_requests"] == reference.server_tool_requests

    assert main(["replay", "--total", *paths]) == 1
    table = capsys.readouterr().out.split("\n\ntotal: ")[1]
    assert table.startswith(f"{len(paths)} streams ({len(NAMES)} complete, 1 incomplete")
    assert "includes the partial usage of 1 failed stream" in table
    assert f"billed total  {reference.total.input_tokens:>6}" in table


# -- the table ---------------------------------------------------------------------------------


def columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def count_ends(table: str) -> list[list[tuple[int, ...]]]:
    """Where each count ends, in terminal columns, for every row of each counts grid."""
    grids: list[list[tuple[int, ...]]] = []
    in_grid = False
    for line in table.splitlines():
        if line.rstrip().endswith("cache write"):
            in_grid = True
            header = line.rstrip()
            titles = re.finditer(r"\S+(?: \S+)?(?=  |$)", header)
            grids.append([tuple(columns(header[: m.end()]) for m in titles)])
            continue
        match = re.fullmatch(r"(.*?\S) +(\d+) +(\d+) +(\d+) +(\d+)(?:  .*)?", line)
        if in_grid and match:
            grids[-1].append(tuple(columns(line[: match.end(i)]) for i in range(2, 6)))
        else:
            in_grid = False
    return grids


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("claude-x", "advisor_message"),
        ("a-model-name-much-longer-than-the-label-column-ever-was-20991231", "advisor_message"),
        ("模型\\u001b[31m", "a_new_iteration_type_with_a_long_name_of_the_future"),
        ("claude-y", "新しい種類"),
    ],
)
def test_the_table_stays_aligned_for_any_model_name_and_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, kind: str
) -> None:
    data = transcript("advisor").replace(b"claude-opus-4-7", model.encode())
    data = data.replace(b'"advisor_message"', f'"{kind}"'.encode())
    path = write(tmp_path, "advisor.sse", data)
    assert main(["replay", "--total", path, str(EXAMPLES / "fallback.sse")]) == 0
    out = capsys.readouterr().out
    assert model.replace("\\u001b", "\\x1b") in out
    assert kind in out
    grids = count_ends(out)
    assert len(grids) == 3  # two streams and the total
    for ends in grids:
        # The four column titles and each row's four counts end at the same columns.
        assert len({e[-4:] for e in ends}) == 1, out
        assert len(ends) >= 3  # the titles and at least two rows


def test_the_table_shows_iterations_billed_totals_and_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(EXAMPLES / "compaction.sse")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLES / 'compaction.sse'}: complete\n")
    assert re.search(r"\n  \[0\] compaction +180000 +3500 +0 +0\n", out)
    assert re.search(r"\n  billed total +203000 +4500 +0 +0\n", out)
    assert "context window: 23000 tokens" in out
    assert "diagnostics: none" in out


def test_absent_values_are_shown_as_absent_never_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = transcript("web-search")
    stripped = re.sub(rb',"web_fetch_requests":\d+', b"", data)
    assert stripped != data
    path = write(tmp_path, "web.sse", stripped)
    assert main(["replay", path]) == 0
    out = capsys.readouterr().out
    assert "server tools: web_search_requests 1, web_fetch_requests -" in out
    assert main(["replay", "--partial", *map(str, EXAMPLES.glob("*.sse"))]) == 0
    assert "None" not in capsys.readouterr().out + out


def test_partial_shows_the_partial_usage_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "cut.sse", cut(transcript("plain")))
    assert main(["replay", path]) == 1
    out = capsys.readouterr().out
    assert out == f"{path}: incomplete (IncompleteStreamError at event 12)\n"
    assert main(["replay", "--partial", path]) == 1
    out = capsys.readouterr().out
    assert "partial usage (what was counted before the failure; not final)" in out
    assert re.search(r"\n  top level +21 +1 +0 +0\n", out)


def test_strict_turns_diagnostics_into_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = transcript("compaction")
    broken = text.replace(
        b'"output_tokens":1000,"iterations"', b'"output_tokens":1001,"iterations"'
    )
    assert broken != text
    path = write(tmp_path, "inconsistent.sse", broken)
    assert main(["replay", path]) == 0
    assert "diagnostic: top_level_mismatch" in capsys.readouterr().out
    assert main(["replay", "--json", path]) == 0
    assert [d["code"] for d in lines(capsys.readouterr().out)[0]["diagnostics"]] == [
        "top_level_mismatch"
    ]
    assert main(["replay", "--json", "--strict", path]) == 1
    captured = capsys.readouterr()
    (record,) = lines(captured.out)
    assert record["error"]["class"] == "InconsistentUsageError"
    assert record["error"]["code"] == "top_level_mismatch"
    assert "top_level_mismatch" in captured.err


# -- exit status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "--max-event-size", "-5", "x.sse"],
        ["replay", "--max-event-size", "0", "x.sse"],
        ["replay", "--max-event-size", "lots", "x.sse"],
        ["replay", "--max-event-size", "9" * 5000, "x.sse"],
        ["replay", "--max-event-size", "3TiB", "x.sse"],
        ["replay", "--no-such-flag", "x.sse"],
        ["replay"],
        [],
        ["unknown-command"],
        ["replay", "--max-event-size", "\x1b[31m\nusagetally: forged", "x.sse"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("usagetally: ")
    assert "--help" in captured.err
    assert "\x1b" not in captured.err


def test_bad_values_exit_2_in_a_subprocess_too() -> None:
    result = cli("replay", "--max-event-size", "-5", str(EXAMPLES / "plain.sse"))
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr == (
        b"usagetally: argument --max-event-size: must be a positive number of bytes, such as"
        b" 1048576 or 16MiB; got '-5' (see 'usagetally replay --help')\n"
    )


def test_max_event_size_takes_binary_suffixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = transcript("plain")
    path = write(tmp_path, "plain.sse", data)
    for value, limit in [("100", 100), ("1k", 1024), ("2KiB", 2048), ("1MiB", 1 << 20)]:
        code = main(["replay", "--json", "--max-event-size", value, path])
        (record,) = lines(capsys.readouterr().out)
        if limit < 600:  # the message_start event is about 500 bytes
            assert code == 1
            assert record["error"]["class"] == "EventTooLargeError"
            assert record["error"]["limit"] == limit
        else:
            assert code == 0


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("usagetally ")
    assert main(["replay", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--split-concatenated" in out
    assert "default 16MiB" in out


def test_exit_status_is_the_highest_of_stream_input_and_internal_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = str(EXAMPLES / "plain.sse")
    broken = write(tmp_path, "cut.sse", cut(transcript("plain")))
    missing = str(tmp_path / "missing.sse")
    assert main(["replay", good]) == 0
    assert main(["replay", good, broken]) == 1
    assert main(["replay", missing, good]) == 3
    assert main(["replay", broken, missing, broken]) == 3
    capsys.readouterr()
    # An unexpected exception inside the library: status 5, one line, the others still run.
    original = UsageAccumulator.feed

    def feed(self: UsageAccumulator, chunk: bytes) -> None:
        if b"thinking" in chunk:
            raise RuntimeError("unexpected\nusagetally: forged")
        original(self, chunk)

    monkeypatch.setattr(UsageAccumulator, "feed", feed)
    thinking = str(EXAMPLES / "thinking.sse")
    assert main(["replay", "--json", broken, thinking, missing, good]) == 5
    captured = capsys.readouterr()
    records = lines(captured.out)
    assert [r["status"] for r in records] == ["incomplete", "error", "error", "complete"]
    assert records[1]["error"]["class"] == "RuntimeError"
    assert records[1]["error"]["message"].startswith("internal error (a bug in usagetally")
    assert captured.err.count("\n") == 3
    assert "unexpected\\nusagetally: forged" in captured.err


def test_memory_error_is_one_line_and_exit_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def feed(self: UsageAccumulator, chunk: bytes) -> None:
        raise MemoryError

    monkeypatch.setattr(UsageAccumulator, "feed", feed)
    assert main(["replay", "--json", str(EXAMPLES / "plain.sse")]) == 5
    captured = capsys.readouterr()
    (record,) = lines(captured.out)
    assert record["error"] == {
        "class": "MemoryError",
        "message": "out of memory",
        "event_index": None,
        "byte_offset": None,
    }
    assert captured.err == f"usagetally: {EXAMPLES / 'plain.sse'}: out of memory\n"


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /dev/zero, Linux only")
def test_running_out_of_memory_for_real_is_exit_5_without_traceback() -> None:
    # A limit far above the memory allowed, on a capture without line endings.
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))

    result = cli("replay", "--max-event-size", "8GiB", "/dev/zero", preexec_fn=limit_memory)
    no_traceback(result.stderr, result.stdout)
    assert result.returncode == 5
    assert result.stderr == b"usagetally: /dev/zero: out of memory\n"
    assert result.stdout == b"/dev/zero: error (MemoryError)\n"


def test_interrupted_exits_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(self: UsageAccumulator, chunk: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(UsageAccumulator, "feed", interrupted)
    assert main(["replay", str(EXAMPLES / "plain.sse")]) == 130
    assert capsys.readouterr().err == "usagetally: interrupted\n"


# -- hostile input -----------------------------------------------------------------------------


def test_deep_json_is_one_line_never_a_traceback(tmp_path: Path) -> None:
    deep = b'"x":' + b"[" * 100_000 + b"]" * 100_000 + b","
    data = transcript("plain").replace(
        b'"usage":{"input_tokens":21', b'"usage":{' + deep + b'"input_tokens":21'
    )
    assert data != transcript("plain")
    path = write(tmp_path, "deep.sse", data)
    result = cli("replay", "--json", path)
    no_traceback(result.stderr, result.stdout)
    # 1 once the core refuses the depth with a typed error; 5 (the last resort) before.
    assert result.returncode in (1, 5)
    assert result.stderr.count(b"\n") == 1
    (record,) = lines(result.stdout.decode())
    assert record["status"] == "error"


def test_a_lone_surrogate_and_escapes_in_model_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = transcript("plain").replace(
        b'"model":"claude-sonnet-4-6"', b'"model":"claude\\ud800\\u001b[2J\\nusagetally: x"'
    )
    path = write(tmp_path, "surrogate.sse", data)
    result = cli("replay", path)
    no_traceback(result.stderr)
    assert result.returncode == 0
    assert b"model claude\\ud800\\x1b[2J\\nusagetally: x, 14 events" in result.stdout
    assert b"\x1b" not in result.stdout
    result = cli("replay", "--json", path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["model"] == "claude\ud800\x1b[2J\nusagetally: x"


def test_an_error_event_cannot_forge_lines_or_reach_the_terminal(tmp_path: Path) -> None:
    message = "boom\\nusagetally: other.sse: forged\\r\\u001b[2J\\u009b\\u2028"
    data = cut(transcript("plain")) + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"' + message.encode() + b'"}}\n\n'
    )
    path = write(tmp_path, "error.sse", data)
    result = cli("replay", "--json", path)
    assert result.returncode == 1
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"usagetally: {path}: the API sent an error event: overloaded_error: ")
    assert "boom\\nusagetally: other.sse: forged\\r\\x1b[2J\\x9b\\u2028" in line
    assert all(c.isprintable() for c in line)
    record = json.loads(result.stdout)
    assert record["error"]["error_type"] == "overloaded_error"
    assert (
        record["error"]["error_message"] == "boom\nusagetally: other.sse: forged\r\x1b[2J\x9b\u2028"
    )


def test_a_huge_error_message_is_cut_on_stderr_not_in_json(tmp_path: Path) -> None:
    data = cut(transcript("plain")) + (
        b'event: error\ndata: {"type":"error","error":{"type":"x","message":"'
        + b"y" * 100_000
        + b'"}}\n\n'
    )
    result = cli("replay", "--json", write(tmp_path, "big.sse", data))
    assert result.returncode == 1
    assert len(result.stderr) < 3000
    assert result.stderr.endswith(b"more characters)\n")
    assert len(json.loads(result.stdout)["error"]["error_message"]) == 100_000


def test_a_path_with_control_characters_is_escaped(tmp_path: Path) -> None:
    path = str(tmp_path / "a\x1b[31m\nb.sse")
    result = cli("replay", path)
    assert result.returncode == 3
    assert result.stderr.count(b"\n") == 1
    assert b"\x1b" not in result.stderr + result.stdout
    assert b"a\\x1b[31m\\nb.sse: cannot open: No such file or directory" in result.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("flag", ["--json", "--split-concatenated"])
def test_a_capture_without_line_endings_stays_within_the_default_limit(flag: str) -> None:
    code = (
        "import re, sys\n"
        "from usagetally._cli import main\n"
        f"status = main(['replay', '--json', '{flag}', '/dev/zero'])\n"
        "with open('/proc/self/status') as f:\n"
        "    peak_kib = int(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
        "print(status, peak_kib // 1024, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    *message, figures = result.stderr.splitlines()
    status, peak_mib = map(int, figures.split())
    assert status == 1
    name = "/dev/zero [stream 0]" if "split" in flag else "/dev/zero"
    assert message == [
        f"usagetally: {name}: an event is larger than max_event_size ({DEFAULT_MAX_EVENT_SIZE}"
        " bytes) (at event 0, byte 0)"
    ]
    record = json.loads(result.stdout)
    assert record["error"]["limit"] == DEFAULT_MAX_EVENT_SIZE == 16 << 20
    # The interpreter and the library take about 20 MiB; the event is refused at 16 MiB.
    assert peak_mib < 20 + 3 * (DEFAULT_MAX_EVENT_SIZE >> 20), peak_mib


# -- closed and failing descriptors ------------------------------------------------------------


def test_closed_stdin_is_an_unreadable_input() -> None:
    result = cli("replay", "--json", "-", str(EXAMPLES / "plain.sse"), stdin=subprocess.DEVNULL)
    assert result.returncode == 1  # /dev/null is an empty stream, not a closed one
    result = subprocess.run(
        [sys.executable, "-m", "usagetally", "replay", "--json", "-", str(EXAMPLES / "plain.sse")],
        capture_output=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    no_traceback(result.stderr)
    assert result.returncode == 3
    assert result.stderr == b"usagetally: <stdin>: standard input is closed\n"
    first, second = lines(result.stdout.decode())
    assert (first["path"], first["status"], second["status"]) == ("-", "error", "complete")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_a_full_disk_on_stdout_exits_4_with_one_line(flag: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        result = cli(
            "replay", *flag, str(EXAMPLES / "plain.sse"), stdout=full, stderr=subprocess.PIPE
        )
    no_traceback(result.stderr)
    assert result.returncode == 4
    assert result.stderr == b"usagetally: cannot write the output: No space left on device\n"


def test_closed_stdout_exits_4_before_reading_anything(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # opening it would block: the command must stop before
    result = subprocess.run(
        [sys.executable, "-m", "usagetally", "replay", str(fifo)],
        stderr=subprocess.PIPE,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    no_traceback(result.stderr)
    assert result.returncode == 4
    assert result.stderr == b"usagetally: cannot write the output: standard output is closed\n"


@pytest.mark.parametrize("flag", [[], ["--json"]])
def test_with_stderr_closed_failures_never_reach_stdout(tmp_path: Path, flag: list[str]) -> None:
    broken = write(tmp_path, "cut.sse", cut(transcript("plain")))
    args = [*flag, str(EXAMPLES / "plain.sse"), broken, str(tmp_path / "missing.sse")]
    result = subprocess.run(
        [sys.executable, "-m", "usagetally", "replay", *args],
        stdout=subprocess.PIPE,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 3
    out = result.stdout.decode()
    assert "usagetally:" not in out
    if flag:  # nothing but the records, which carry the errors as data
        assert [r["status"] for r in lines(out)] == ["complete", "incomplete", "error"]
    else:
        assert "cannot open" not in out
        assert "before any message_delta" not in out


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
        assert process.wait(timeout=60) == 4
    assert first.endswith(b"compaction.sse: complete\n")
    assert stderr == b""


# -- pipes and stdin ---------------------------------------------------------------------------


def test_stdin_is_read_as_a_stream() -> None:
    result = cli("replay", "--json", "-", input=transcript("plain"))
    assert result.returncode == 0
    record = json.loads(result.stdout)
    assert (record["path"], record["usage"]) == ("-", expected("plain"))
    broken = cli("replay", "-", input=b"event: message_start\ndata: {oops\n\n")
    assert broken.returncode == 1
    no_traceback(broken.stderr)
    assert broken.stderr.decode().startswith("usagetally: <stdin>: message_start data is not")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_named_pipes_are_read_once_and_never_hang(tmp_path: Path) -> None:
    # Each pipe's writer writes once and closes: an input opened twice would lose the data
    # or wait for a second writer forever.
    for attempt in range(6):
        fifos = [tmp_path / f"{attempt}-{i}.sse" for i in range(2)]
        for fifo in fifos:
            os.mkfifo(fifo)
        names = ["plain", "advisor"]

        def writer(fifo: Path, name: str) -> None:
            with open(fifo, "wb") as f:
                f.write(transcript(name))

        threads = [
            threading.Thread(target=writer, args=(fifo, name), daemon=True)
            for fifo, name in zip(fifos, names, strict=True)
        ]
        for thread in threads:
            thread.start()
        result = cli(
            "replay",
            "--json",
            str(fifos[0]),
            str(EXAMPLES / "thinking.sse"),
            str(fifos[1]),
            timeout=30,
        )
        for thread in threads:
            thread.join(timeout=5)
        assert result.returncode == 0, result.stderr
        usages = [r["usage"] for r in lines(result.stdout.decode())]
        assert usages == [expected("plain"), expected("thinking"), expected("advisor")]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM, Linux only")
@pytest.mark.parametrize("flag", ["--json", "--split-concatenated"])
def test_a_long_capture_is_replayed_as_it_is_read(tmp_path: Path, flag: str) -> None:
    # 96 MiB of text deltas between a start and an end: if the command read the whole file
    # before replaying it, its peak memory would grow by as much.
    data = transcript("plain")
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
        "status = main(['replay', '--json', sys.argv[2], sys.argv[1]])\n"
        "with open('/proc/self/status') as f:\n"
        "    peak_kib = int(re.search(r'VmHWM:\\s*(\\d+) kB', f.read()).group(1))\n"
        "print(status, peak_kib // 1024, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), flag], capture_output=True, text=True, check=True
    )
    status, peak_mib = map(int, result.stderr.split())
    assert status == 0
    assert json.loads(result.stdout)["usage"] == expected("plain")
    assert peak_mib < 80, f"peak RSS {peak_mib} MiB for a {path.stat().st_size >> 20} MiB capture"


# -- concatenated recordings -------------------------------------------------------------------


def split(
    data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, list[dict[str, Any]], str]:
    path = write(tmp_path, "joined.sse", data)
    code = main(["replay", "--json", *flags, path])
    captured = capsys.readouterr()
    return code, lines(captured.out), captured.err


def test_a_concatenated_file_is_recognised_and_the_flag_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = transcript("plain")
    code, records, err = split(first + transcript("advisor"), tmp_path, capsys)
    assert code == 1
    (record,) = records
    error = record["error"]
    assert error["class"] == "EventOrderError"
    assert (error["event_index"], error["byte_offset"]) == (14, len(first))
    assert error["hint"].startswith("this file holds several responses: --split-concatenated")
    (line,) = err.splitlines()
    assert line.endswith(
        f"message_start event after message_stop (at event 14, byte {len(first)}); this file "
        "holds several responses: --split-concatenated replays each response as its own stream"
    )


def test_the_flag_is_named_for_a_large_first_response_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first response spans many chunks; the hint comes from reading the file again.
    first = padded(transcript("plain"), 300_000)
    code, records, _ = split(first + transcript("thinking"), tmp_path, capsys)
    assert code == 1
    assert records[0]["error"]["byte_offset"] == len(first)
    assert records[0]["error"]["hint"].startswith("this file holds several responses")
    piped = cli("replay", "-", input=first + transcript("thinking"))
    assert piped.returncode == 1
    assert b"--split-concatenated" in piped.stderr  # from stdin: "if this file holds ..."


def test_a_second_message_start_inside_one_response_is_not_a_concatenation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = transcript("plain")
    start = data[: data.index(b"event: ping")]
    doubled = start + data  # message_start twice, one message_stop
    for flags in ([], ["--split-concatenated"]):
        code, records, err = split(doubled, tmp_path, capsys, *flags)
        assert code == 1
        (record,) = records
        assert record["error"]["class"] == "EventOrderError"
        assert record["error"]["byte_offset"] == len(start)
        assert "hint" not in record["error"]
        assert "--split-concatenated" not in err


def padded(stream: bytes, size: int) -> bytes:
    """The stream with text deltas added until it is at least ``size`` bytes long."""
    head, tail = stream.split(b"event: message_delta", 1)
    delta = (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
        b'"text":"' + b"x" * 200 + b'"}}\n\n'
    )
    count = max(0, (size - len(stream)) // len(delta) + 1)
    return head + delta * count + b"event: message_delta" + tail


def check_split(records: list[dict[str, Any]], names: Sequence[str]) -> None:
    assert [r["stream"] for r in records] == list(range(len(names)))
    assert [r["status"] for r in records] == ["complete"] * len(names)
    assert [r["usage"] for r in records] == [expected(n) for n in names]


def test_split_concatenated_replays_each_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(12)
    for _ in range(5):
        names = [rng.choice(NAMES) for _ in range(rng.randint(2, 6))]
        parts = [transcript(n) for n in names]
        if rng.random() < 0.5:  # CRLF line endings, and pings between the responses
            parts = [p.replace(b"\n", b"\r\n") for p in parts]
        joined = b"event: ping\ndata: {}\n\n".join(parts)
        code, records, err = split(joined, tmp_path, capsys, "--split-concatenated")
        assert (code, err) == (0, "")
        check_split(records, names)
        total_events = [r["events"] for r in records]
        assert all(n > 0 for n in total_events)


@pytest.mark.parametrize("shift", range(-40, 41, 3))
def test_split_at_a_chunk_boundary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shift: int
) -> None:
    # The second message_start straddles the 64 KiB and 128 KiB boundaries of the reads.
    first = padded(transcript("advisor"), 65536 * 2 - 600)
    first = (
        first[: first.index(b"event: message_delta")]
        + b": "
        + b"c" * (65536 * 2 + shift - len(first) - 3)
        + b"\n\n"
        + first[first.index(b"event: message_delta") :]
    )
    assert abs(len(first) - 65536 * 2) < 50
    code, records, _ = split(
        first + transcript("fallback") + transcript("plain"),
        tmp_path,
        capsys,
        "--split-concatenated",
    )
    assert code == 0
    check_split(records, ["advisor", "fallback", "plain"])


def test_split_streams_name_their_place_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = transcript("plain")
    bad = plain.replace(b'"output_tokens":42', b'"output_tokens":-1')
    code, records, err = split(plain + plain + bad, tmp_path, capsys, "--split-concatenated")
    assert code == 1
    assert [r["status"] for r in records] == ["complete", "complete", "error"]
    error = records[2]["error"]
    delta_at = bad.index(b"event: message_delta")
    assert error["byte_offset"] == 2 * len(plain) + delta_at
    assert error["event_index"] == 2 * 14 + 12
    assert error["message"].endswith(f"(at event {2 * 14 + 12}, byte {2 * len(plain) + delta_at})")
    assert err == f"usagetally: {tmp_path / 'joined.sse'} [stream 2]: {error['message']}\n"


def test_split_with_total_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "joined.sse", transcript("plain") + transcript("thinking"))
    assert main(["replay", "--split-concatenated", "--total", path]) == 0
    out = capsys.readouterr().out
    assert f"{path} [stream 0]: complete" in out
    assert f"{path} [stream 1]: complete" in out
    assert "total: 2 streams (2 complete, 0 incomplete, 0 error)" in out


def real_streams() -> list[Path]:
    if not REAL_STREAMS.is_dir():
        pytest.skip(f"{REAL_STREAMS} is not there (other people's data, never committed)")
    return sorted(REAL_STREAMS.glob("*.sse"))


def test_split_concatenated_real_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every recorded stream that replays complete on its own, and ends with its blank line,
    # concatenated into one file: each must come out as it did alone.
    alone = []
    for path in real_streams():
        data = path.read_bytes()
        if not data.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
            continue
        assert main(["replay", "--json", str(path)]) in (0, 1)
        (record,) = lines(capsys.readouterr().out)
        if record["status"] == "complete":
            alone.append((data, record))
    assert len(alone) > 300
    joined = write(tmp_path, "all.sse", b"".join(data for data, _ in alone))
    assert main(["replay", "--json", "--split-concatenated", joined]) == 0
    records = lines(capsys.readouterr().out)
    assert len(records) == len(alone)
    for (_, before), after in zip(alone, records, strict=True):
        assert after["usage"] == before["usage"]
        assert after["figures"] == before["figures"]
        assert after["model"] == before["model"]
        assert after["events"] == before["events"]


def test_a_duplicated_message_start_in_a_real_stream_is_not_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = [p for p in real_streams() if "duplicate-message-start" in p.name]
    if not paths:
        pytest.skip("no recording with a duplicated message_start")
    for path in paths:
        assert main(["replay", "--json", str(path)]) == 1
        alone = lines(capsys.readouterr().out)
        assert main(["replay", "--json", "--split-concatenated", str(path)]) == 1
        assert lines(capsys.readouterr().out) == alone


# -- --prices: the exact cost -----------------------------------------------------------------

PRICES = EXAMPLES / "prices.json"


def test_prices_add_the_exact_cost_to_each_json_record_and_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from decimal import Decimal

    from usagetally import PriceTable, billed_cost

    table = PriceTable.load(PRICES)
    paths = [str(EXAMPLES / f"{name}.sse") for name in NAMES]
    assert main(["replay", "--json", "--total", "--prices", str(PRICES), *paths]) == 0
    records = lines(capsys.readouterr().out)
    totals = UsageTotals(prices=table)
    for path, record in zip(paths, records, strict=False):
        acc = UsageAccumulator()
        acc.feed(Path(path).read_bytes())
        usage = acc.finish()
        cost = billed_cost(usage, model=acc.model, prices=table)
        assert record["cost"] == cost.as_dict()
        totals.add(usage, model=acc.model)
    assert totals.cost is not None
    assert records[-1]["record"] == "total"
    assert records[-1]["cost"] == totals.cost.as_dict()
    assert Decimal(records[-1]["cost"]["total"]) == sum(
        (Decimal(r["cost"]["total"]) for r in records[:-1]), Decimal(0)
    )


def test_prices_in_the_table_stay_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--prices", str(PRICES), str(EXAMPLES / "advisor.sse")]) == 0
    out = capsys.readouterr().out
    assert "cost: 0.0577836 USD" in out
    header = next(line for line in out.splitlines() if "cost USD" in line)
    billed = [line for line in out.splitlines() if line.lstrip().startswith("billed")]
    assert billed
    assert all(
        line.index(amount) + len(amount) == header.index("cost USD") + len("cost USD")
        for line, amount in zip(billed, ["0.0577836", "0.0133686", "0.044415"], strict=True)
    )


def test_a_model_the_table_lacks_is_unpriced_never_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "prices.json"
    table.write_text(json.dumps({"models": {"claude-opus-4-7": {"input": "5", "output": "25"}}}))
    assert main(["replay", "--json", "--prices", str(table), str(EXAMPLES / "plain.sse")]) == 0
    (record,) = lines(capsys.readouterr().out)
    assert record["cost"]["error"]["class"] == "MissingPriceError"
    assert "claude-sonnet-4-6" in record["cost"]["error"]["message"]
    assert main(["replay", "--prices", str(table), str(EXAMPLES / "plain.sse")]) == 0
    assert "cost: unpriced (MissingPriceError" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    ['{"models": {"x": {"input": "-1", "output": "1"}}}', "not json"],
    ids=["negative", "json"],
)
def test_a_bad_price_table_exits_2_with_one_line(tmp_path: Path, content: str) -> None:
    table = tmp_path / "prices.json"
    table.write_text(content)
    done = cli("replay", "--prices", str(table), str(EXAMPLES / "plain.sse"))
    assert done.returncode == 2
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    assert line.startswith(f"usagetally: --prices: {table}")
