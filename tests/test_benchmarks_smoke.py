"""The benchmarks at a tiny size, so that they never rot.

Nothing here is about time. What is checked is what the figures rest on: every contender of
``benchmarks/run.py`` reads every workload of ``benchmarks/workloads.py`` to the same final
usage (a differential check of usagetally against the anthropic SDK and httpx-sse), the lazy
200 MB stream is what it claims to be, and a whole smoke run writes its page and chart.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import run as bench  # noqa: E402
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
    return bench.check_agreement(small_workloads)


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
    report = bench.main(["--smoke", "--quiet", "--output-dir", str(tmp_path)])
    page = (tmp_path / "performance.md").read_text()
    assert (tmp_path / "_static" / "performance.png").read_bytes().startswith(b"\x89PNG")
    for w in report.workloads:
        assert f"`{w.name}`" in page
    assert "## Targets" in page
    assert len(report.targets) >= 9
    assert report.memory[-1].rss["usage_ok"]


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
