"""Percentiles and timing helpers shared by the benchmark suites."""

from __future__ import annotations

import time
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/mean of samples given in seconds, reported in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p99": round(percentile(ms, 99), 3),
        "mean": round(sum(ms) / len(ms), 3),
        "n": len(ms),
    }


def now() -> float:
    return time.perf_counter()
