"""Summary statistics of stage durations, and their merge across DDP ranks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

from ocr.perf.schema import StageStats

_EMPTY = StageStats(count=0.0, total=0.0, mean=0.0, median=0.0, p95=0.0, p99=0.0, std=0.0, min=0.0, max=0.0)


def summarize(values: Sequence[float]) -> StageStats:
    """count, total, mean, median, p95, p99, std, min, max of durations in seconds."""
    if not len(values):
        return _EMPTY.copy()
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


def merge_rank_stats(per_rank: Sequence[StageStats | dict[str, float]]) -> StageStats:
    """Combine one stage's statistics from several ranks.

    Counts and totals add; the mean and standard deviation are pooled exactly; the median, p95 and
    p99 take the maximum over ranks (the slowest rank sets the pace of a synchronous step).
    """
    # a rank that never ran the stage sends {} (the merge takes each rank's entry or nothing)
    ranks = [cast(StageStats, s) for s in per_rank if s.get("count", 0) > 0]
    if not ranks:
        return _EMPTY.copy()
    if len(ranks) == 1:
        return ranks[0].copy()
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


def stage_total(stages: Mapping[str, StageStats], stage: str) -> float:
    """A stage's total seconds in an epoch; 0 when the epoch never ran it."""
    stats = stages.get(stage)
    return stats["total"] if stats is not None else 0.0
