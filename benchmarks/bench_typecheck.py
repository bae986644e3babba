"""What checking passed-over events' leading ``"type"`` costs (issue: event name against type).

Run: ``.venv/bin/python benchmarks/bench_typecheck.py [--repeat N]``

The decoder as the accumulator drives it (``keep`` = the usage events) is timed with
``check_type=True`` (what ``UsageAccumulator`` uses: a passed-over event's data must start with
``{"type":"NAME"``) and with ``check_type=False`` (no check), on the standard workloads, fed in
their chunks. Both run in this process, interleaved and repeated; the figure is the ratio of
the medians of process CPU time (``time.process_time``), so load on the machine affects both.
"""

from __future__ import annotations

import argparse
import statistics
import time

from workloads import standard_workloads

from usagetally import SSEDecoder

KEEP = ("message_start", "message_delta", "message_stop", "error", "message")


def run(chunks: list[bytes], check: bool) -> float:
    decoder = SSEDecoder(keep=KEEP, check_type=check, unchecked=("ping",))
    start = time.process_time()
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.end()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    for workload in standard_workloads(args.scale):
        with_check: list[float] = []
        without: list[float] = []
        for _ in range(args.repeat):
            with_check.append(run(workload.chunks, True))
            without.append(run(workload.chunks, False))
        ratio = statistics.median(with_check) / statistics.median(without)
        print(
            f"{workload.name:24} {len(workload.data) / 1e6:7.2f} MB  "
            f"checked {statistics.median(with_check) * 1e3:8.2f} ms  "
            f"unchecked {statistics.median(without) * 1e3:8.2f} ms  ratio {ratio:.3f}"
        )


if __name__ == "__main__":
    main()
