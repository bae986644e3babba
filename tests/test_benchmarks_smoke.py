"""The benchmarks at a tiny size, so that they never rot.

Nothing here is about time. What is checked is what the figures rest on: every contender of
``benchmarks/contenders.py`` reads every workload of ``benchmarks/workloads.py`` to the same
final usage (a differential check of usagetally against the anthropic SDK and httpx-sse), the
lazy 200 MB stream is what it claims to be, a whole smoke run of ``benchmarks/run.py`` writes its
page and chart, and ``benchmarks/report.py`` renders a report of known figures into the
sections and rows of ``docs/performance.md``.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import contenders  # noqa: E402
import harness  # noqa: E402
import memory  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import targets  # noqa: E402
import workloads  # noqa: E402

import usagetally  # noqa: E402

SCALE = 0.01
CONTENDERS = {"feed", "accumulate", "sdk-stream", "sdk-create", "httpx-sse", "handwritten"}


@pytest.fixture(scope="module")
def small_workloads() -> list[workloads.Workload]:
    return workloads.standard_workloads(SCALE)


@pytest.fixture(scope="module")
def usages(small_workloads: list[workloads.Workload]) -> dict[str, dict[str, Any]]:
    return harness.check_agreement(small_workloads)


def test_workloads_are_deterministic(small_workloads: list[workloads.Workload]) -> None:
    again = workloads.standard_workloads(SCALE)
    assert [w.data for w in again] == [w.data for w in small_workloads]
    assert len({w.name for w in small_workloads}) == len(small_workloads)


def test_every_contender_gives_the_same_final_usage(
    small_workloads: list[workloads.Workload], usages: dict[str, dict[str, Any]]
) -> None:
    for w in small_workloads:
        assert set(usages[w.name]) == CONTENDERS, w.name
        for key, usage in usages[w.name].items():
            assert usage == w.usage, f"{w.name}: {key}"


def test_the_usages_are_not_trivial(usages: dict[str, dict[str, Any]]) -> None:
    tools = usages["server-tools"]["feed"]
    assert tools["server_tool_use"]["web_search_requests"] >= 2
    assert len(tools["iterations"]) == tools["server_tool_use"]["web_search_requests"] + 1
    assert [it["type"] for it in usages["compaction"]["sdk-stream"]["iterations"]] == [
        "compaction",
        "message",
    ]


def test_long_lines_are_exact(small_workloads: list[workloads.Workload]) -> None:
    small, big = (w for w in small_workloads if w.name.startswith("line-"))
    longest = [max(len(line) for line in w.data.split(b"\n")) for w in (small, big)]
    assert longest[1] == 4 * longest[0]
    assert longest[0] % 1024 == 0
    for w in (small, big):
        assert all(len(chunk) == workloads.LONG_LINE_CHUNK for chunk in w.chunks[:-1])


def test_the_big_stream_is_lazy_valid_and_sized() -> None:
    total = 3_000_000
    acc = usagetally.UsageAccumulator()
    size = chunks = 0
    for chunk in workloads.big_stream_chunks(total):
        assert len(chunk) <= workloads.STREAM_CHUNK
        chunks += 1
        size += len(chunk)
        acc.feed(chunk)
    assert size == workloads.big_stream_size(total) >= total
    assert chunks == -(-size // workloads.STREAM_CHUNK)
    assert usagetally.converter.unstructure(acc.finish()) == workloads.big_stream_usage(total)


def test_a_smoke_run_writes_the_page_and_the_chart(tmp_path: Path) -> None:
    result = run.main(["--smoke", "--quiet", "--output-dir", str(tmp_path)])
    page = (tmp_path / "performance.md").read_text()
    assert (tmp_path / "_static" / "performance.png").read_bytes().startswith(b"\x89PNG")
    for w in result.workloads:
        assert f"`{w.name}`" in page
    assert "## Targets" in page
    assert len(result.targets) >= 9
    assert result.memory[-1].rss["usage_ok"]


def test_the_practical_floor_and_the_reframed_streams_give_the_same_usage() -> None:
    # What issue 16's ratios rest on: the hand-written accumulator is right on the canonical
    # streams it is timed on, and every reframed stream carries the same usage.
    w = workloads.tool_heavy(2, chars=2_000)
    assert targets.handwritten(w.chunks) == targets.ut_feed(w.chunks) == w.usage
    assert targets.scan_floor(w.chunks) == w.data.count(b"\n")
    for how in targets.FRAMINGS:
        reframed = targets._reframe(w.data, how)
        assert reframed != w.data
        assert targets.ut_feed(list(workloads.chunked(reframed, 1000))) == w.usage, how
    for name, data in targets.small_streams():
        chunks = targets._events(data)
        assert b"".join(chunks) == data, name
        assert targets.ut_feed(chunks) == targets.ut_feed([data]), name


# -- the page, from a report of known figures ------------------------------------------------

MS = 1e-3  # the reference (feed) takes 1 ms in every round of the synthetic report


def _series(seconds: float) -> harness.Series:
    return harness.Series(loops=1, warmup=seconds, values=[seconds] * 3)


def _synthetic_report(ws: list[workloads.Workload]) -> report.Report:
    """Every contender at a fixed multiple of ``feed``; httpx-sse only 4x slower (missed)."""
    times = {"feed": 1, "accumulate": 1, "sdk-stream": 200, "sdk-create": 50, "httpx-sse": 4,
             "handwritten": 0.4, "floor": 0.5, "scan": 0.1}  # fmt: skip

    async def unused(w: workloads.Workload) -> None:
        raise AssertionError("the page is rendered from the figures, nothing is called")

    cs = [
        contenders.FEED,
        contenders.Contender("accumulate", "`accumulate`", unused, is_async=True),
        contenders.Contender("sdk-stream", "SDK `stream()`", unused, is_async=True),
        contenders.Contender("sdk-create", "SDK `create()`", unused, is_async=True),
        contenders.HTTPX_SSE,
        contenders.HANDWRITTEN,
        contenders.FLOOR,
        contenders.SCAN,
    ]
    sweep_cs = contenders.sweep_contenders()
    big = {"bytes": 200_000_000, "method": "VmHWM reset"}
    result = report.Report(
        mode="quick",
        settings=harness.SMOKE,
        workloads=ws,
        contenders=cs,
        series={w.name: {c.key: _series(times[c.key] * MS) for c in cs} for w in ws},
        structure={"usagetally": _series(3e-6), "sdk": _series(9e-6)},
        sweep={f"line-{k}MiB": {c.key: _series(k * MS) for c in sweep_cs} for k in (1, 2, 4, 8)},
        sweep_contenders=sweep_cs,
        memory=[
            memory.Memory("generate", {**big, "seconds": 0.5, "growth_kib": 900}, None),
            memory.Memory("feed", {**big, "seconds": 1.5, "growth_kib": 2048}, None),
            memory.Memory("accumulate", {**big, "seconds": 2.5, "growth_kib": 20480}, None),
        ],
        started=datetime.datetime(2026, 1, 2, 3, 4),
        seconds=12.0,
        load=((1.0, 1.5, 2.0), (1.1, 1.6, 2.1)),
    )
    # Known in advance, so that evaluate() neither profiles nor times anything.
    result.profiles = {w.name: f"profile of {w.name}" for w in ws}
    server_tools = next(w for w in ws if w.name == "server-tools")
    result.ping_check = [
        (server_tools, {key: _series(times[key] * MS) for key in ("feed", "httpx-sse", "floor")})
    ]
    report.evaluate(result)
    result.practical = targets.Results(
        [targets.Figure("import", "import", 0.5, 1.0, higher_is_better=True, unit=" ms")],
        ["a problem the targets found"],
    )
    return result


def _headings(page: str) -> list[str]:
    """The page's headings, less those of one workload or of missed targets only."""
    return [
        line
        for line in page.splitlines()
        if line.startswith("#") and not line.startswith(("### `", "### What limits"))
    ]


def test_the_page_has_the_sections_and_rows_of_docs_performance(
    small_workloads: list[workloads.Workload],
) -> None:
    result = _synthetic_report(small_workloads)
    page = report.render(result, "_static/performance.png")
    committed = (Path(__file__).resolve().parent.parent / "docs" / "performance.md").read_text()
    assert _headings(page) == _headings(committed)
    assert page.startswith("# Performance\n<!-- Generated by benchmarks/run.py;")
    assert "Run of 2026-01-02 03:04 UTC, mode `quick` (2 rounds" in page
    assert "![Median time per workload and contender (log scale)](_static/performance.png)" in page
    assert "Smoke run" not in page
    for w in small_workloads:
        assert f"| `{w.name}` | {w.description} | {len(w.data):,} | {w.events:,} |" in page
        assert f"\n### `{w.name}`\n" in page
    text = small_workloads[0].name
    assert f"| {contenders.FEED.label} | 1.00 | 0.000 | 1 | 1.00x |" in page
    assert f"| {contenders.HTTPX_SSE.label} | 4.00 | 0.000 | 4.00x | 4.00x |" in page
    # The targets: met, missed, and what limits the missed ones.
    sdk = f"`messages.stream()` + `get_final_message()` (`{text}`) | 200x | met |"
    assert sdk in page
    httpx_sse = "| at least 8x faster than httpx-sse + `json.loads` (`server-tools`) | 4.00x "
    assert httpx_sse + "| **missed** |" in page
    assert "\nWhat limits it: the pings. `ping` was in the accumulator's keep set" in page
    assert "(`accumulate`) | 20.0 MB | **missed** |" in page
    assert "(`feed`) | 2.0 MB | met |" in page
    assert "\nNot analysed yet; see the profile below.\n" in page
    events = result.ping_check[0][0].events
    assert f"| `server-tools` | {events:,} | 1.00 | 4.00 | 0.500 | 2.00x | 4.00x |" in page
    assert "```text\nprofile of server-tools\n```" in page
    # The sweep, the structure micro-benchmark, the memory table, issue 16's figures.
    assert "| `line-1MiB` (ms) | `line-2MiB` (ms) | `line-4MiB` (ms) | `line-8MiB` (ms) |" in page
    assert "| usagetally `converter.structure(payload, BetaUsage)` | 3.00 | 0.00 | 1 |" in page
    assert "| SDK `BetaUsage.model_validate(payload)` | 9.00 | 0.00 | 3.00x |" in page
    generator = "| the generator alone (included in every row below) | 200 MB | 0.9 MB "
    assert generator + "| not measured | 0.50 s | 400 MB/s |" in page
    assert "| `accumulate` | 200 MB | 20.0 MB | not measured | 2.50 s | 100 MB/s |" in page
    assert "| import | 0.50 ms | >= 1 ms | **missed** |" in page
    assert "\n- a problem the targets found\n" in page


def test_the_page_of_a_smoke_run_with_every_target_met(
    small_workloads: list[workloads.Workload],
) -> None:
    result = _synthetic_report(small_workloads)
    result.mode = "smoke"
    result.practical = None
    result.sweep = {}
    for t in result.targets:
        t.met = True
    page = report.render(result, None)
    assert "**Smoke run: tiny workloads, the figures mean nothing.**" in page
    for absent in ("![", "### What limits", "**missed**", "### Long lines", "issue 16: the"):
        assert absent not in page
    assert "\n## Targets\n" in page
    assert page.endswith("runner measures in one process.\n")
