"""The quick run of the scaling campaign (``benchmarks/scaling.py``), in the test gate.

Three small sizes (32 KiB to 512 KiB, 16 times apart) and a looser growth limit (2.5x) than
the full campaign's (64 KiB to 16 MiB, 1.5x), so that a loaded machine does not fail it, while
anything quadratic still does: before the fixes of issue 13, untyped events in one chunk,
pings among them and growing unknown fields grew far more than that over these sizes.
The memory bounds are the full campaign's.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import scaling  # noqa: E402


def test_every_shape_scales_linearly_with_bounded_memory() -> None:
    rows = scaling.run(
        scaling.QUICK_SIZES,
        rounds=scaling.QUICK_ROUNDS,
        repeat_bytes=scaling.QUICK_REPEAT_BYTES,
        quiet=True,
    )
    assert {row.shape.name for row in rows} == {shape.name for shape in scaling.SHAPES}
    assert all(len(row.sizes) == len(scaling.QUICK_SIZES) for row in rows)
    failures = [failure for row in rows for failure in row.failures(scaling.QUICK_FACTOR)]
    assert failures == []


def test_the_criteria_can_fail() -> None:
    shape = scaling.SHAPES[0]
    row = scaling.Row(shape, "whole", [1000, 16000], [10.0, 26.0], [100, 5000], [4000, 4000])
    failures = row.failures(scaling.QUICK_FACTOR)
    assert len(failures) == 2
    assert "time per byte grew 2.60x" in failures[0]
    assert "peak memory" in failures[1]
    assert (
        scaling.Row(shape, "whole", [1000, 16000], [10.0, 24.0], [1, 2], [4, 4]).failures(
            scaling.QUICK_FACTOR
        )
        == []
    )
