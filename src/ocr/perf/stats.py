"""Summary statistics of stage durations, and their merge across DDP ranks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

STAT_KEYS = ("count", "total", "mean", "median", "p95", "p99", "std", "min", "max")


def summarize(values: Sequence[float]) -> dict[str, float]:
    """count, total, mean, median, p95, p99, std, min, max of durations in seconds."""
    if not len(values):
        return {k: 0.0 for k in STAT_KEYS}
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "count": float(arr.size),
        "total": float(arr.sum()),
        "mean": float(arr.mean()),
        "median": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def merge_rank_stats(per_rank: Sequence[dict[str, float]]) -> dict[str, float]:
    """Combine one stage's statistics from several ranks.

    Counts and totals add; the mean and standard deviation are pooled exactly; the median, p95 and
    p99 take the maximum over ranks (the slowest rank sets the pace of a synchronous step).
    """
    ranks = [s for s in per_rank if s.get("count", 0) > 0]
    if not ranks:
        return {k: 0.0 for k in STAT_KEYS}
    if len(ranks) == 1:
        return dict(ranks[0])
    count = sum(s["count"] for s in ranks)
    total = sum(s["total"] for s in ranks)
    mean = total / count
    second_moment = sum(s["count"] * (s["std"] ** 2 + s["mean"] ** 2) for s in ranks) / count
    return {
        "count": count,
        "total": total,
        "mean": mean,
        "median": max(s["median"] for s in ranks),
        "p95": max(s["p95"] for s in ranks),
        "p99": max(s["p99"] for s in ranks),
        "std": math.sqrt(max(0.0, second_moment - mean**2)),
        "min": min(s["min"] for s in ranks),
        "max": max(s["max"] for s in ranks),
    }
