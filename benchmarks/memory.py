"""Peak memory on the 200 MB stream, each contender in a fresh subprocess.

:func:`measure_memory` runs ``benchmarks/run.py --memory-child NAME --bytes N`` once per
contender (and once more under ``tracemalloc`` for the heap); the child, :func:`memory_child`,
consumes a 1 MB stream as a warm-up, reads its resident set, resets the kernel's peak and
consumes the lazy stream of ``benchmarks/workloads.py``, then prints what that cost as one
JSON line. ``benchmarks/README.md`` (section Memory) describes the method; the page says which
of its two peaks was used.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from contenders import accumulate_chunks, feed_chunks, httpx_sse_chunks
from workloads import big_stream_chunks, big_stream_size, big_stream_usage

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).with_name("run.py")  # its --memory-child option calls memory_child


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise LookupError(name)


def _reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM) of this process; False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") <= _status_kib("VmRSS") + 64


def _consume(key: str, chunks: Iterable[bytes]) -> dict[str, Any]:
    if key == "feed":
        return feed_chunks(chunks)
    if key == "accumulate":
        return anyio.run(accumulate_chunks, chunks)
    if key == "httpx-sse":
        return httpx_sse_chunks(chunks)
    if key == "generate":
        for _ in chunks:
            pass
        return {}
    raise ValueError(key)


def memory_child(key: str, total: int, use_tracemalloc: bool) -> None:
    """Consume the lazy stream once, after a warm-up, and print what it cost as JSON."""
    _consume(key, big_stream_chunks(1))  # warm-up (1 MB): pool, code paths, caches
    gc.collect()
    if use_tracemalloc:
        tracemalloc.start()
    baseline = _status_kib("VmRSS")
    reset = _reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0] if use_tracemalloc else 0
    start = time.perf_counter()
    usage = _consume(key, big_stream_chunks(total))
    seconds = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if use_tracemalloc else 0
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "key": key,
        "bytes": big_stream_size(total),
        "seconds": seconds,
        "growth_kib": peak - baseline,
        "method": "VmHWM reset" if reset else "ru_maxrss (an upper bound)",
        "traced_bytes": traced_peak - traced_before,
        "usage_ok": key == "generate" or usage == big_stream_usage(total),
    }
    print(json.dumps(result))


def run_memory_child(key: str, total: int, use_tracemalloc: bool = False) -> dict[str, Any]:
    args = [sys.executable, str(RUNNER), "--memory-child", key, "--bytes", str(total)]
    if use_tracemalloc:
        args.append("--tracemalloc")
    done = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["usage_ok"]:
        raise SystemExit(f"memory run of {key}: wrong final usage")
    return result


@dataclass
class Memory:
    key: str
    rss: dict[str, Any]
    traced: dict[str, Any] | None


def measure_memory(
    total: int, keys: Iterable[str], traced: bool, log: Callable[[str], None]
) -> list[Memory]:
    out = []
    for key in ("generate", *keys):
        log(f"memory: {key}")
        rss = run_memory_child(key, total)
        heap = run_memory_child(key, total, True) if traced and key != "httpx-sse" else None
        out.append(Memory(key, rss, heap))
    return out
