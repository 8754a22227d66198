"""How a stage's time is spread over the batches of an epoch: evenly, or in a few stalls.

Only what the per-epoch statistics allow: ``count``, ``total``, ``max`` and the percentiles of
``ocr.perf.stats.summarize`` (numpy's linear interpolation). From them, exactly: the slowest
batch's share of the stage's time and what the other batches took together; and as a lower bound,
how many batches exceeded a duration (a percentile above it means the order statistic just above
that percentile's position exceeds it too). Each is computed per steady epoch, then the median
over the epochs is kept. Logged ``perf/*`` keys carry no count or max, so sources without
``perf_summary.json`` give none of this.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.figures import batch_size, per_sample, steady

STALL_S = 0.010  # a batch that waits longer than this "waited"


@dataclass(frozen=True)
class StageSpread:
    stage: str
    batches: int  # per epoch (median)
    slowest_s: float  # the slowest batch of an epoch
    slowest_share: float  # ... its share of the stage's time in the epoch
    rest_s: float  # the other batches together
    rest_epoch_share: float  # ... as a share of the epoch's wall time
    over_at_least: int | None  # batches per epoch above STALL_S, a lower bound (one rank only)


def batches_over(stats: dict[str, float], limit: float) -> int | None:
    """Least number of batches longer than ``limit`` that the percentiles and max prove."""
    n = int(stats.get("count") or 0)
    if n < 1 or stats.get("max") is None:
        return None
    least = 1 if stats["max"] > limit else 0
    for q, key in ((50, "median"), (95, "p95"), (99, "p99")):
        value = stats.get(key)
        if value is None or value <= limit:
            continue
        position = (n - 1) * q / 100
        low = math.floor(position)
        # the value lies between sorted[low] and sorted[low + 1]: the latter (or sorted[low] itself
        # when the position is whole) exceeds the limit, and so does every batch after it
        first_over = low if position == low else low + 1
        least = max(least, n - first_over)
    return least


def stage_spread(analysis: Analysis, phase: str, stage: str) -> StageSpread | None:
    # one batch has no spread; a max above the total is not one epoch's statistics
    epochs = [
        e
        for e in steady(analysis.epochs(phase))
        if e.wall_s
        and {"count", "total", "max"} <= set(e.stages.get(stage, {}))
        and e.stages[stage]["count"] >= 2
        and 0 < e.stages[stage]["max"] <= e.stages[stage]["total"] * (1 + 1e-9)
    ]
    if not epochs:
        return None
    stats = [e.stages[stage] for e in epochs]
    single_rank = all(len(e.rank_data_wait_share) <= 1 for e in epochs)
    over = [batches_over(s, STALL_S) for s in stats] if single_rank else []
    over_known = [o for o in over if o is not None]
    return StageSpread(
        stage,
        round(statistics.median(s["count"] for s in stats)),
        statistics.median(s["max"] for s in stats),
        statistics.median(s["max"] / s["total"] for s in stats),
        statistics.median(s["total"] - s["max"] for s in stats),
        statistics.median(
            (s["total"] - s["max"]) / (e.wall_s or 1.0) for s, e in zip(stats, epochs, strict=True)
        ),
        round(statistics.median(over_known)) if over_known and len(over_known) == len(stats) else None,
    )


def worker_means(analysis: Analysis, phase: str) -> dict[str, float]:
    """Each data-loading stage's mean time per sample (collate, timed per batch, spread over it)."""
    config = analysis.config
    return {
        stage: per_sample(stage, mean, phase, config)
        for stage, mean in analysis.stage_figures(phase, "worker", "mean_s").items()
    }


def batch_worker_time(analysis: Analysis, phase: str) -> float | None:
    """Worker time to build one batch: batch size x the per-sample stage means, plus collate."""
    means = worker_means(analysis, phase)
    if not means:
        return None
    size = batch_size(phase, analysis.config)
    return sum(size * mean for mean in means.values())


def one_batch_advice(analysis: Analysis, phase: str, spread: StageSpread) -> tuple[str, bool]:
    """What a wait held by one batch per epoch means, from how it compares with one batch's worker time.

    Returns the advice and whether the samples' cost explains the stall (then cheaper samples help).
    """
    text = (
        f"one batch per epoch holds most of the wait ({fmt.pct(spread.slowest_share)}): typically the "
        "epoch's first, which the workers start from an empty queue and prefetching cannot hide; more "
        "workers cannot make one batch arrive sooner, and it weighs this much because an epoch is only "
        f"{spread.batches} batches"
    )
    build = batch_worker_time(analysis, phase)
    if not build:
        return text, True
    ratio = spread.slowest_s / build
    if ratio <= 1.5:
        return (
            text + f"; it lasts about one batch's worker time ({fmt.sec(spread.slowest_s)} vs "
            f"{fmt.sec(build)}), so a cheaper per-sample pipeline shortens it",
            True,
        )
    return (
        text + f"; it lasts {ratio:.1f}x one batch's worker time ({fmt.sec(spread.slowest_s)} vs "
        f"{fmt.sec(build)}), so {'most' if ratio >= 2 else 'part'} of it is outside the timed worker "
        "stages: starting the epoch's iterator, passing the batch back from the worker process and "
        "pinning it are the candidates (the current profiler times iter(DataLoader) as loader_start)",
        False,
    )
