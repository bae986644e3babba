"""Time usagetally side by side with what users would use instead, and write the results.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``). Options: ``--quick`` for a
short run, ``--smoke`` for the test gate (tiny sizes, nothing written unless
``--output-dir`` is given), ``--json PATH`` to keep the raw values as a pyperf suite.

Every contender reads the same bytes, in the same chunks, and returns the final usage in
wire form; all of them are timed in one process, inside one asyncio event loop, in
interleaved rounds (the order rotates each round) so that noise from the shared machine hits
every contender alike. Ratios are taken within a round, contender against usagetally, and
their median is reported. Statistics (median, standard deviation) are pyperf's. Peak memory
on the 200 MB stream is measured in a fresh subprocess per contender. See
``benchmarks/README.md`` for why the runner does not use ``pyperf.Runner``'s worker
processes.

This file is the command line; the work is in ``contenders.py`` (what is timed),
``harness.py`` (how it is timed), ``memory.py`` (peak memory, in subprocesses that this
file's ``--memory-child`` option runs) and ``report.py`` (the targets, the page, the chart).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import targets as issue16
from contenders import MEMORY_CONTENDERS, sweep_contenders, sweep_workloads
from harness import FULL, QUICK, SMOKE, frozen_heap, measure, measure_contenders, structure_bench
from memory import measure_memory, memory_child
from report import Report, draw, dump_json, evaluate, render
from workloads import BIG_STREAM_BYTES, standard_workloads

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, for the test gate")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where performance.md and _static/performance.png go (default: docs/, "
        "nothing for --smoke)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write a pyperf suite here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--memory-child", choices=(*MEMORY_CONTENDERS, "generate"))
    parser.add_argument("--bytes", type=int, default=BIG_STREAM_BYTES)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--ratios", action="store_true", help="only issue 16's ratios (benchmarks/targets.py)"
    )
    return parser


def main(argv: list[str] | None = None) -> Report:
    args = _parser().parse_args(argv)
    if args.ratios:
        issue16.main(["--quick"] if args.quick else [])
        raise SystemExit(0)
    if args.memory_child:
        memory_child(args.memory_child, args.bytes, args.tracemalloc)
        raise SystemExit(0)

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    settings, mode_name = (SMOKE, "smoke") if args.smoke else (FULL, "full")
    if args.quick:
        settings, mode_name = QUICK, "quick"
    output: Path | None = args.output_dir
    if output is None and not args.smoke:
        output = ROOT / "docs"
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    load0 = os.getloadavg()
    log(f"generating workloads (scale {settings.scale})")
    workloads = standard_workloads(settings.scale)
    cs, series = anyio.run(measure_contenders, workloads, settings, log)
    log("long-line sweep")
    sweep_ws = sweep_workloads(settings.scale)
    sweep_cs = sweep_contenders()
    sweep = anyio.run(measure, sweep_ws, sweep_cs, settings, log)
    del sweep_ws
    log("structure micro-benchmark")
    with frozen_heap():
        structure = structure_bench(settings.structure_rounds, settings.min_time)
    memory = measure_memory(settings.big_bytes, settings.memory, settings.traced, log)
    report = Report(
        mode=mode_name,
        settings=settings,
        workloads=workloads,
        contenders=cs,
        series=series,
        structure=structure,
        sweep=sweep,
        sweep_contenders=sweep_cs,
        memory=memory,
        started=started,
        seconds=0.0,
        load=(load0, load0),
    )
    evaluate(report)
    if not args.smoke:
        log("issue 16's targets (benchmarks/targets.py)")
        report.practical = issue16.measure_targets(quick=args.quick, log=log)
    report.seconds = time.perf_counter() - clock
    report.load = (load0, os.getloadavg())
    _write(report, output, args.json, log)
    if not args.quiet:
        for t in report.targets:
            print(f"{'met   ' if t.met else 'MISSED'} {t.figure:>10}  {t.text}")
    return report


def _write(
    report: Report, output: Path | None, json_path: Path | None, log: Callable[[str], None]
) -> None:
    """The page and its chart under ``output``, the pyperf suite at ``json_path``."""
    if output is not None:
        chart = output / "_static" / "performance.png"
        draw(report, chart)
        (output / "performance.md").write_text(render(report, "_static/performance.png"))
        log(f"wrote {output / 'performance.md'} and {chart}")
    if json_path is not None:
        dump_json(report, json_path)


if __name__ == "__main__":
    main()
