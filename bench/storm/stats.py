"""Percentiles for the storm (nearest rank, like bench/stats.py)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.stats import percentile


def ms_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    if not seconds:
        return {"n": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 1),
        "p99": round(percentile(ms, 99), 1),
        "mean": round(sum(ms) / len(ms), 1),
        "max": round(max(ms), 1),
        "n": len(ms),
    }


def value_summary(values: Sequence[float], digits: int = 2) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "mean": round(sum(values) / len(values), digits),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }
