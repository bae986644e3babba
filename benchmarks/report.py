"""The page ``benchmarks/run.py`` writes: the targets, ``docs/performance.md`` and its chart.

:class:`Report` holds everything one run measured; :func:`evaluate` checks issue 5's targets
on it (and, where one is missed, profiles usagetally and says what limits it); :func:`render`
writes the page, one function per section (the ``_section_*`` functions, in the page's order);
:func:`draw` draws the chart and :func:`dump_json` keeps the raw values as a pyperf suite.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pyperf
import targets as issue16
from contenders import REFERENCE, Contender
from harness import Series, Settings, paired_ratios, ping_check, profile_feed
from memory import Memory
from workloads import Workload

TEXT_WORKLOAD = "text-20000"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, LookupError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = []
    for dist in ("usagetally", "anthropic", "httpx2", "httpx-sse", "pydantic", "anyio", "pyperf"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
    }


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _x(ratio: float) -> str:
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x"


@dataclass
class Target:
    key: str
    workload: str
    text: str
    figure: str
    met: bool
    limit: str = ""


@dataclass
class Report:
    mode: str
    settings: Settings
    workloads: list[Workload]
    contenders: list[Contender]
    series: dict[str, dict[str, Series]]
    structure: dict[str, Series]
    sweep: dict[str, dict[str, Series]]
    sweep_contenders: list[Contender]
    memory: list[Memory]
    started: datetime.datetime
    seconds: float
    load: tuple[tuple[float, float, float], tuple[float, float, float]]
    profiles: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    ping_check: list[tuple[Workload, dict[str, Series]]] = field(default_factory=list)
    practical: issue16.Results | None = None  # issue 16's targets (benchmarks/targets.py)

    def median(self, workload: str, key: str) -> float:
        return statistics.median(self.series[workload][key].values)

    def ratio(self, workload: str, key: str, ref: str = REFERENCE) -> float:
        return statistics.median(paired_ratios(self.series[workload], key, ref))


def _across(a: Series, b: Series) -> float:
    """The median over rounds of b/a, two workloads of the same round."""
    return statistics.median(y / x for x, y in zip(a.values, b.values, strict=True))


def evaluate(report: Report) -> None:
    """Check the issue's targets, and profile usagetally where one is missed."""
    _speed_targets(report)
    _linear_and_memory_targets(report)
    _explain_missed(report)


def _add(report: Report, key: str, workload: str, text: str, figure: str, met: bool) -> None:
    report.targets.append(Target(key, workload, text, figure, met))


def _speed_targets(report: Report) -> None:
    """The ratios against the SDK, httpx-sse, the hand-written accumulator and the floor."""
    names = [w.name for w in report.workloads]
    text = TEXT_WORKLOAD if TEXT_WORKLOAD in names else names[0]
    streams = names[:3]
    r = report.ratio(text, "sdk-stream")
    _add(
        report,
        "sdk-stream",
        text,
        f"at least 100x faster than `messages.stream()` + `get_final_message()` (`{text}`)",
        _x(r),
        r >= 100,
    )
    r = report.ratio(text, "sdk-create")
    _add(
        report,
        "sdk-create",
        text,
        f"at least 30x faster than iterating `create(stream=True)` (`{text}`)",
        _x(r),
        r >= 30,
    )
    for name in streams:
        r = report.ratio(name, "httpx-sse")
        what = f"at least 8x faster than httpx-sse + `json.loads` (`{name}`)"
        _add(report, "httpx-sse", name, what, _x(r), r >= 8)
    for name in streams:
        r = 1 / report.ratio(name, "handwritten")
        what = f"at most 2x the hand-written accumulator (`{name}`)"
        _add(report, "handwritten", name, what, _x(r), r <= 2)
    for name in streams:
        r = 1 / report.ratio(name, "floor")
        what = f"within 3x of the `bytes.split` floor (`{name}`)"
        _add(report, "floor", name, what, _x(r), r <= 3)


def _linear_and_memory_targets(report: Report) -> None:
    """A line four times longer against the shorter one; peak memory on the big stream."""
    lines = [w.name for w in report.workloads if w.name.startswith("line-")]
    if len(lines) == 2:
        small, big = lines
        r = _across(report.series[small]["feed"], report.series[big]["feed"])
        what = f"`{big}` costs at most 6x `{small}` (linear: 4x, quadratic: 16x)"
        _add(report, "linear", big, what, _x(r), r <= 6)
    for m in report.memory:
        if m.key in ("feed", "accumulate"):
            mb = m.rss["growth_kib"] / 1024
            _add(
                report,
                "memory",
                "",
                f"peak RSS growth under 10 MB on the {m.rss['bytes'] / 1e6:.0f} MB stream "
                f"(`{m.key}`)",
                f"{mb:.1f} MB",
                mb < 10,
            )


def _explain_missed(report: Report) -> None:
    """Profile a missed target's workload, say what limits it; time server-tools bare."""
    by_name = {w.name: w for w in report.workloads}
    for t in report.targets:
        if t.met:
            continue
        if t.workload in by_name and t.workload not in report.profiles:
            report.profiles[t.workload] = profile_feed(by_name[t.workload])
        t.limit = LIMITS.get((t.key, t.workload)) or LIMITS.get((t.key, ""), "")
        if t.workload == "server-tools" and not report.ping_check:
            report.ping_check = ping_check(by_name[t.workload], report.settings)


# What limits a target when it is missed, found by profiling during development (cProfile,
# counting what the decoder scans, and timing variants of the core); shown only for a
# missed target, next to the profile of the run itself.
_PING_LIMIT = (
    "the pings. `ping` was in the accumulator's keep set (`_KEPT` in "
    "`src/usagetally/_accumulator.py`, kept so that a gap in event indices after "
    "`message_stop` means a forbidden event), so the decoder's pass-over scanner "
    "(`_PassOver.skip` and `_pass_region` in `src/usagetally/_sse.py`), which passes over whole "
    "`content_block_*` events on the bytes, stops at every ping: each is split into lines, "
    "built as a `ServerSentEvent` and dispatched. A ping amid skippable events also makes "
    "`_pass_region`'s counting check fail, and the region is shrunk and counted again until "
    "the ping is cornered (about nine failed checks per isolated ping with 64 KiB chunks, "
    "each counting LFs, blocks and every known event name): on this workload `_pass_region` "
    "examines 2.6x the stream's bytes (1.1x on `text-20000`). The table below, from this "
    "run, shows the same stream without its pings. During development, on 21 MB of the "
    "lazy big stream (one ping every 500 deltas), `feed` ran at 124 MB/s, and at 339 MB/s "
    "with `ping` taken out of the keep set. The fix belongs in the core: pass over `ping` "
    "on the bytes until `message_stop` (and only then widen the decoder's `keep` to see "
    "every later event), and when a region check fails, pass the region up to the first "
    "event that cannot be skipped instead of shrinking it"
)
# Why a stream with several passed-over names costs more passes than the hand-written's two
# searches (found by counting the scanner's calls in cProfile, as the profiles below show).
_NAMES_LIMIT = (
    "the counting proof's passes. The scanner passes a region over after counting its LFs "
    "and, for each passed-over name in turn until the count is made up, the occurrences of "
    'that name\'s `event: NAME\\ndata: {"type":"NAME"` (`_pass_region` in '
    "`src/usagetally/_sse.py`); a region of one name costs two passes, one of four names five, "
    "against the hand-written accumulator's two searches for the usage events' names. "
    "Server-tool and compaction streams mix `content_block_start`, `_delta`, `_stop` and "
    "pings in every region. Fewer passes would need a proof that pairs each event line with "
    "its data's type without one count per name"
)
LIMITS: dict[tuple[str, str], str] = {
    ("handwritten", "server-tools"): _NAMES_LIMIT,
    ("handwritten", "compaction"): _NAMES_LIMIT,
    ("httpx-sse", "server-tools"): _PING_LIMIT,
    ("floor", "server-tools"): _PING_LIMIT,
    ("linear", ""): (
        "the cache, not the algorithm. The 1 KiB pieces of the line are held until its LF "
        "arrives (`SSEDecoder._partial`) and joined once, so the work is linear, but a 4 MiB "
        "line no longer fits in this CPU's 2 MiB L2 cache per core while a 1 MiB line does. "
        "The sweep above shows it: from 4 to 8 MiB the cost doubles, and joining the same "
        "chunks with no parsing at all (`b''.join`) takes the same step from 1 to 4 MiB. "
        "A decoder could avoid holding a data line of an event it will not keep only when "
        "the `event:` line came first and no later one can change the type, which the spec "
        "does not promise"
    ),
}


def _sentence(text: str) -> str:
    return "What limits it: " + text + "."


def render(report: Report, chart: str | None) -> str:
    """``docs/performance.md`` for this report; ``chart`` is the chart's path from the page."""
    sections = [
        _section_intro(report),
        _section_machine(report, chart),
        _section_workloads(report),
        _section_results(report),
        _section_sweep(report),
        _section_structure(report),
        _section_memory(report),
        _section_targets(report),
        _section_practical(report),
        _section_rerun(),
    ]
    return "".join(sections)


def _labels(report: Report) -> dict[str, str]:
    return {c.key: c.label for c in report.contenders}


def _section_intro(report: Report) -> str:
    """The title, what the page measures, and when and how this run was made."""
    out = [
        "# Performance\n",
        "<!-- Generated by benchmarks/run.py; do not edit by hand. Rerun: make bench -->\n\n"
        "How long it takes to get the final usage out of a streamed Messages API response: "
        "usagetally side by side with what you would use instead, on the same bytes, in the "
        "same chunks, in one process. Lower is better; the ratio columns say how many times "
        "longer a contender takes than usagetally, as the median of the ratios taken within "
        "each round.\n\n",
        f"Run of {report.started:%Y-%m-%d %H:%M} UTC, mode `{report.mode}` "
        f"({report.settings.rounds} rounds after a warm-up and calibration; "
        f"each value repeats a call until it lasts {report.settings.min_time * 1e3:.0f} ms); "
        f"the whole run took {report.seconds:.0f} s.\n",
    ]
    if report.mode == "smoke":
        out.append("**Smoke run: tiny workloads, the figures mean nothing.**\n")
    return "".join(out)


def _section_machine(report: Report, chart: str | None) -> str:
    """## Machine: CPU, OS, Python, packages, the load; then the chart."""
    m = machine()
    load0, load1 = report.load
    out = [
        "\n## Machine\n\n",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM\n",
        f"- OS: {m['os']}\n- Python: {m['python']}\n- Packages: {m['packages']}\n",
        f"- Load average (1, 5, 15 min): {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} at the "
        f"start, {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} at the end. This is a shared "
        "2-core machine where other work (test suites) runs at the same time: medians and "
        "ratios within a round are reported because they resist that noise; absolute times "
        "will differ on your machine, the ratios much less.\n",
    ]
    if chart:
        out.append(f"\n![Median time per workload and contender (log scale)]({chart})\n")
    return "".join(out)


def _section_workloads(report: Report) -> str:
    """## Workloads: one row per stream."""
    out = ["\n## Workloads\n\n"]
    out.append("| workload | what | bytes | events | chunks |\n|---|---|---:|---:|---|\n")
    for w in report.workloads:
        out.append(
            f"| `{w.name}` | {w.description} | {len(w.data):,} | {w.events:,} | "
            f"{len(w.chunks):,} of {w.chunk_size // 1024} KiB |\n"
        )
    out.append(
        "\nAll are generated by `benchmarks/workloads.py`, deterministically (fixed seeds), as "
        "valid Anthropic SSE with realistic text deltas; every contender returns the same "
        "final usage on each (the runner checks it before timing, and so does "
        "`tests/test_benchmarks_smoke.py`).\n"
    )
    return "".join(out)


def _section_results(report: Report) -> str:
    """## Results: per workload, every contender's time and its ratios to usagetally."""
    out = ["\n## Results\n\n"]
    labels = _labels(report)
    for w in report.workloads:
        out.append(f"\n### `{w.name}`\n\n")
        out.append(
            "| contender | median (ms) | stdev (ms) | vs `feed` | vs `accumulate` |\n"
            "|---|---:|---:|---:|---:|\n"
        )
        series = report.series[w.name]
        for c in report.contenders:
            sr = series[c.key]
            bench = sr.benchmark(f"{w.name}/{c.key}")
            rf = "1" if c.key == "feed" else _x(report.ratio(w.name, c.key, "feed"))
            ra = "1" if c.key == "accumulate" else _x(report.ratio(w.name, c.key, "accumulate"))
            out.append(
                f"| {labels[c.key]} | {_ms(bench.median())} | {_ms(bench.stdev())} "
                f"| {rf} | {ra} |\n"
            )
    return "".join(out)


def _section_sweep(report: Report) -> str:
    """### Long lines: cost against size (nothing when the run has no sweep)."""
    if not report.sweep:
        return ""
    sizes = list(report.sweep)
    out = ["\n### Long lines: cost against size\n\n"]
    out.append(
        "| contender | "
        + " | ".join(f"`{n}` (ms)" for n in sizes)
        + f" | `{sizes[2]}` / `{sizes[0]}` | `{sizes[3]}` / `{sizes[2]}` |\n"
        + "|---|"
        + "---:|" * (len(sizes) + 2)
        + "\n"
    )
    for c in report.sweep_contenders:
        meds = [_ms(statistics.median(report.sweep[n][c.key].values)) for n in sizes]
        r41 = _across(report.sweep[sizes[0]][c.key], report.sweep[sizes[2]][c.key])
        r84 = _across(report.sweep[sizes[2]][c.key], report.sweep[sizes[3]][c.key])
        out.append(f"| {c.label} | " + " | ".join(meds) + f" | {_x(r41)} | {_x(r84)} |\n")
    out.append(
        "\nThe same event with a data line of each size, fed in 1 KiB chunks, timed the "
        "same way as above (the ratios are medians of ratios within a round). Linear time "
        "doubles with each step; quadratic time quadruples. `b''.join` of the chunks "
        "parses nothing: it is the cost of holding and joining the line once, which is "
        "what the memory hierarchy of the machine charges for a line of that size.\n"
    )
    return "".join(out)


def _section_structure(report: Report) -> str:
    """### Structuring one usage with four iterations: the converter against pydantic."""
    st = report.structure
    ours = st["usagetally"].benchmark("structure/usagetally")
    sdk = st["sdk"].benchmark("structure/sdk")
    r = statistics.median(
        a / b for a, b in zip(st["sdk"].values, st["usagetally"].values, strict=True)
    )
    return (
        "\n### Structuring one usage with four iterations\n\n"
        "| contender | median (µs) | stdev (µs) | ratio |\n|---|---:|---:|---:|\n"
        f"| usagetally `converter.structure(payload, BetaUsage)` | {ours.median() * 1e6:.2f} "
        f"| {ours.stdev() * 1e6:.2f} | 1 |\n"
        f"| SDK `BetaUsage.model_validate(payload)` | {sdk.median() * 1e6:.2f} "
        f"| {sdk.stdev() * 1e6:.2f} | {_x(r)} |\n"
        "\nThe payload and the two calls are those of `benchmarks/bench_structure.py`: a "
        "`BetaUsage` with four iterations (compaction, message, advisor_message, message), "
        "each with its cache split, plus `server_tool_use` and `output_tokens_details`; here "
        "the two alternate in one process. Structuring is paid two or three times per stream "
        "(each `message_start` and `message_delta`), never per event.\n"
    )


def _section_memory(report: Report) -> str:
    """### Memory on the 200 MB stream: one row per subprocess, then the method."""
    labels = _labels(report)
    gen = next((m for m in report.memory if m.key == "generate"), None)
    gen_seconds = gen.rss["seconds"] if gen else 0.0
    out = [
        "\n### Memory on the 200 MB stream\n\n",
        "| contender | stream | peak RSS growth | Python heap peak | time (one run) "
        "| throughput |\n"
        "|---|---:|---:|---:|---:|---:|\n",
    ]
    for mem in report.memory:
        heap = f"{mem.traced['traced_bytes'] / 1e6:.2f} MB" if mem.traced else "not measured"
        seconds = mem.rss["seconds"]
        size = mem.rss["bytes"]
        if mem.key == "generate":
            label = "the generator alone (included in every row below)"
            speed = f"{size / 1e6 / max(seconds, 1e-9):,.0f} MB/s"
        else:
            label = labels.get(mem.key, mem.key)
            speed = f"{size / 1e6 / max(seconds - gen_seconds, 1e-9):,.0f} MB/s"
        out.append(
            f"| {label} | {size / 1e6:.0f} MB | {mem.rss['growth_kib'] / 1024:.1f} MB | {heap} "
            f"| {seconds:.2f} s | {speed} |\n"
        )
    method = report.memory[0].rss["method"] if report.memory else "none"
    out.append(_memory_method(method))
    return "".join(out)


def _memory_method(method: str) -> str:
    return (
        "\nMethod: each row runs in a fresh subprocess "
        "(`benchmarks/run.py --memory-child NAME`). It first consumes a 1 MB stream (imports, "
        "caches and the generator's pool are then in place), collects garbage and reads its "
        "resident set (`VmRSS` in `/proc/self/status`); it then resets the kernel's peak "
        "(`echo 5 > /proc/self/clear_refs`, so that `VmHWM` restarts from the current RSS) "
        "and consumes the stream, which `benchmarks/workloads.py` generates lazily in 64 KiB "
        "chunks from a pool of about 1.4 MB, copying one block (about 1 MB) at a time to set "
        "its index. Growth is `VmHWM` after minus `VmRSS` before: what the process needed on "
        "top of what it had, generator included. Where the reset is not allowed the runner "
        "falls back on `getrusage(RUSAGE_SELF).ru_maxrss` after minus `VmRSS` before, an upper "
        "bound. The heap column comes from a second run under `tracemalloc` (peak traced "
        "memory minus traced memory before; the generator's block copies are in it). Method "
        f"used in this run: {method}. Throughput subtracts the generator's own time. The SDK "
        "is left out: `get_final_message()` keeps the whole text, and building it from 1.5 "
        "million deltas takes hours.\n"
    )


def _section_targets(report: Report) -> str:
    """## Targets: issue 5's, met or missed; then what limits the missed ones."""
    out = ["\n## Targets\n\n"]
    out.append(
        "Targets of issue 5, ratios from this run.\n\n| target | measured | |\n|---|---:|---|\n"
    )
    for t in report.targets:
        out.append(f"| {t.text} | {t.figure} | {'met' if t.met else '**missed**'} |\n")
    missed = [t for t in report.targets if not t.met]
    if missed:
        out.append(_section_missed(report, missed))
    return "".join(out)


def _section_missed(report: Report, missed: list[Target]) -> str:
    """### What limits the missed targets: the limits, the ping check, the profiles."""
    out = ["\n### What limits the missed targets\n"]
    limits: dict[str, list[Target]] = {}
    for t in missed:
        limits.setdefault(t.limit, []).append(t)
    for limit, ts in limits.items():
        out.append("\n" + "".join(f"- {t.text}: {t.figure}\n" for t in ts))
        out.append(
            f"\n{_sentence(limit) if limit else 'Not analysed yet; see the profile below.'}\n"
        )
    if report.ping_check:
        out.append(_ping_table(report.ping_check))
    for name, prof in report.profiles.items():
        out.append(
            f"\nProfile of `UsageAccumulator.feed` on `{name}` in this run (cProfile, per "
            f"stream, the functions with the most own time):\n\n```text\n{prof}\n```\n"
        )
    return "".join(out)


def _ping_table(ping: list[tuple[Workload, dict[str, Series]]]) -> str:
    """The server-tool loop with and without its pings, side by side."""
    out = [
        "\nThe same server-tool loop with and without its pings, timed side by side "
        "in this run:\n\n"
        "| stream | events | `feed` (ms) | httpx-sse (ms) | floor (ms) "
        "| `feed` / floor | httpx-sse / `feed` |\n|---|---:|---:|---:|---:|---:|---:|\n"
    ]
    for w, series in ping:
        med = {k: statistics.median(v.values) for k, v in series.items()}
        to_floor = 1 / statistics.median(paired_ratios(series, "floor"))
        sse = statistics.median(paired_ratios(series, "httpx-sse"))
        out.append(
            f"| `{w.name}` | {w.events:,} | {_ms(med['feed'])} "
            f"| {_ms(med['httpx-sse'])} | {_ms(med['floor'])} | {_x(to_floor)} "
            f"| {_x(sse)} |\n"
        )
    return "".join(out)


def _section_practical(report: Report) -> str:
    """## Targets of issue 16: the practical floor (nothing when they were not measured)."""
    if report.practical is None:
        return ""
    out = [
        "\n## Targets of issue 16: the practical floor\n\n",
        "Each figure is a ratio of process CPU times taken side by side in this run by "
        "`benchmarks/targets.py` (interleaved cases, order rotating each round, median of "
        "the per-round ratios; its docstring says how each is taken). The hand-written "
        "accumulator finds the usage events by name and `json.loads` only their data "
        "lines: correct on canonical streams only.\n\n"
        "| target | measured | limit | |\n|---|---:|---:|---|\n",
    ]
    for f in report.practical.figures:
        op = ">=" if f.higher_is_better else "<="
        out.append(
            f"| {f.name} | {f.measured:.2f}{f.unit} | {op} {f.target:g}{f.unit} "
            f"| {'met' if f.met else '**missed**'} |\n"
        )
    for problem in report.practical.problems:
        out.append(f"\n- {problem}\n")
    missed = {f.group for f in report.practical.figures if not f.met}
    if missed:
        out.append("\n### What limits the missed ones\n\n")
        out.extend(f"- {_PRACTICAL_LIMITS[g]}\n" for g in sorted(missed) if g in _PRACTICAL_LIMITS)
    return "".join(out)


# What limits each group of issue 16's targets when one is missed, from profiling during
# development (cProfile of the same calls; the figures quoted are measured in this run).
_PRACTICAL_LIMITS = {
    "large": (
        "Large streams: " + _NAMES_LIMIT + ". The text stream (one name in most regions) is "
        "within its target; tool-heavy and server-tool streams are not."
    ),
    "small": (
        "Small streams: the fixed cost of one stream. Decoding alone (the accumulator's "
        "decoder, timed in the same run and shown with each figure) is about 1.2 to 3 "
        "times the hand-written accumulator's whole time; the larger part is the rest: "
        "building the accumulator and its decoder, one `feed` call per chunk, and "
        "structuring the usage into the typed, checked models (`converter.structure` of "
        "`message_start` and each delta, the merge, the consistency checks, `finish`), work "
        "the hand-written one does not do (it overwrites a dict). Streams of many events in "
        "one chunk per event come closest, as the scanner counts whole chunks at the door."
    ),
    "framing": (
        "Framings: CRLF and CR are within their targets (`skip_framed` counts them as "
        "`skip` counts LF). Blocks with `id` or comment lines are matched by one regular "
        "expression per run (`_framed_run`): in C, but byte by byte, against counting at "
        "memory speed; a counting proof that pins a variable `id` line to its block was not "
        "found. Blocks without an `event:` line must be decoded one by one: their type is "
        "their data's, and the catalogue's `malformed_json_unnamed_content_block` must fail. "
        "`json.loads` of every event alone, measured in the same run, is shown with each of "
        "those figures: it is already more than ten times the target."
    ),
    "worker": (
        "Worker: a send takes its item in the caller's task and a stream without callbacks is "
        "finished by its close, so what remains is one coroutine call per item and the "
        "`async with` of each stream, against a bare `acc.feed`; on asyncio this is just below "
        "the target, on trio about at it."
    ),
}


def _section_rerun() -> str:
    """## How to rerun."""
    return (
        "\n## How to rerun\n\n"
        "```sh\nmake bench                                   # the full run, rewrites this page\n"
        ".venv/bin/python benchmarks/run.py --quick    # fewer rounds\n"
        ".venv/bin/python benchmarks/run.py --json results.json  # also keep the raw values\n"
        ".venv/bin/python benchmarks/run.py --ratios   # only issue 16's ratios\n"
        "```\n\n"
        "The raw values are a pyperf suite: `python -m pyperf stats results.json`, or "
        "`python -m pyperf compare_to old.json new.json` between two runs. "
        "`benchmarks/README.md` describes the contenders, the workloads and why the "
        "runner measures in one process.\n"
    )


def draw(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [w.name for w in report.workloads]
    cs = report.contenders
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    width = 0.8 / len(cs)
    for i, c in enumerate(cs):
        xs = [j + (i - (len(cs) - 1) / 2) * width for j in range(len(names))]
        ys = [report.median(n, c.key) * 1e3 for n in names]
        errs = [
            statistics.stdev(report.series[n][c.key].values) * 1e3
            if len(report.series[n][c.key].values) > 1
            else 0.0
            for n in names
        ]
        label = c.label.replace("`", "")
        ax.bar(xs, ys, width, yerr=errs, label=label, capsize=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("median time per stream (ms, log scale)")
    ax.set_title("Final usage of a stream: usagetally and the alternatives (lower is better)")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.legend(fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def dump_json(report: Report, path: Path) -> None:
    suite = pyperf.BenchmarkSuite(
        [
            sr.benchmark(f"{w}/{key}")
            for w, by_key in report.series.items()
            for key, sr in by_key.items()
        ]
        + [sr.benchmark(f"structure/{key}") for key, sr in report.structure.items()]
    )
    suite.dump(str(path), replace=True)
