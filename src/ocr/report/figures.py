"""Headline figures: the flat ``{name: number}`` dict of the JSON export and the comparison.

The regression suite's baseline and the reference runs of ``ocr report --compare`` are such
exports, so names are stable and each is
documented here (``FIGURE_SPECS``) and in ``docs/report.md``. Conventions:

* times are seconds (``_s``), memory MB (``_mb``), shares and rates are fractions in [0, 1];
* per-phase figures describe the **steady state**: the median over a phase's epochs, leaving out
  the first one when there are several (it pays worker start-up, JIT compilation, cache filling)
  and any epoch cut short (``EpochPerf.partial``: a time limit stopping the run mid-epoch);
* peaks (``*_peak_mb``) are maxima over all epochs; accuracy (``val.*``) is the last epoch's;
* a figure that cannot be computed from the run is absent (never ``null``).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ocr.report.epoch_perf import EpochPerf, PerfData, group_by_phase
from ocr.report.run import RunData

STATS = ("mean", "median", "p95", "p99")
# The memory peaks of an epoch (<phase>.memory.<peak>) and of the run (memory.<peak>), each with the
# reading that stands in for it in summaries written before the profiler kept the peak.
MEMORY_PEAKS: dict[str, str | None] = {
    "rss_peak_mb": "rss_mb",
    "workers_rss_peak_mb": "workers_rss_mb",
    "workers_pss_peak_mb": "workers_pss_mb",
    "gpu_peak_mb": None,
}
PHASE_FIELDS = ("wall_s", "time_per_sample_s", "samples_per_s", "data_wait_share", "attributed_share")


@dataclass(frozen=True)
class FigureSpec:
    pattern: str  # <phase>, <stage> and <stat> are placeholders
    better: str | None  # "lower", "higher" or None (no verdict)
    doc: str

    def regex(self) -> re.Pattern[str]:
        escaped = re.escape(self.pattern)
        for name in ("phase", "stage", "stat"):
            escaped = escaped.replace(re.escape(f"<{name}>"), r"[A-Za-z0-9_]+")
        return re.compile(f"^{escaped}$")


FIGURE_SPECS: tuple[FigureSpec, ...] = (
    FigureSpec("<phase>.epochs", None, "epochs of the phase that were measured"),
    FigureSpec(
        "<phase>.wall_s", "lower", "wall time of one epoch (validation inside a training epoch excluded)"
    ),
    FigureSpec(
        "<phase>.time_per_sample_s", "lower", "device-seconds per sample: wall x world size / samples"
    ),
    FigureSpec("<phase>.samples_per_s", "higher", "throughput, samples per second"),
    FigureSpec("<phase>.data_wait_share", "lower", "share of the epoch the main process waited for a batch"),
    FigureSpec("<phase>.attributed_share", None, "share of the epoch covered by named stages"),
    FigureSpec(
        "<phase>.stage.<stage>.<stat>_s",
        "lower",
        "per-batch time of a main-process stage (mean/median/p95/p99)",
    ),
    FigureSpec("<phase>.stage.<stage>.share", None, "the stage's total time / epoch wall time"),
    FigureSpec("<phase>.worker.<stage>.<stat>_s", "lower", "per-sample time of a DataLoader worker stage"),
    FigureSpec(
        "<phase>.worker.<stage>.share", None, "the worker stage's share of per-sample worker time (means)"
    ),
    FigureSpec("<phase>.cache.hit_rate", "higher", "target-cache hit rate (steady epochs)"),
    FigureSpec("<phase>.cache.miss_cost_s", "lower", "mean targets time per sample in the mostly-miss epoch"),
    FigureSpec(
        "<phase>.cache.hit_cost_s", "lower", "mean targets time per sample in the last mostly-hit epoch"
    ),
    FigureSpec("<phase>.memory.rss_peak_mb", "lower", "peak main-process RSS"),
    FigureSpec("<phase>.memory.workers_rss_peak_mb", "lower", "peak RSS summed over DataLoader workers"),
    FigureSpec(
        "<phase>.memory.workers_pss_peak_mb",
        "lower",
        "peak PSS summed over child processes (shared pages split)",
    ),
    FigureSpec("<phase>.memory.gpu_peak_mb", "lower", "peak CUDA memory allocated"),
    FigureSpec("val_vs_train_ratio", "lower", "validate.time_per_sample_s / train.time_per_sample_s"),
    FigureSpec("cache.hit_rate", "higher", "target-cache hit rate over all epochs and phases"),
    FigureSpec("cache.hits", None, "cache hits over all epochs (hit rate x samples per epoch)"),
    FigureSpec("cache.misses", None, "cache misses over all epochs"),
    FigureSpec("cache.time_saved_s", "higher", "estimated net worker time the hits saved (may be < 0)"),
    FigureSpec("memory.rss_peak_mb", "lower", "peak main-process RSS over the run"),
    FigureSpec("memory.workers_rss_peak_mb", "lower", "peak DataLoader-worker RSS over the run"),
    FigureSpec("memory.workers_pss_peak_mb", "lower", "peak child-process PSS over the run"),
    FigureSpec("memory.gpu_peak_mb", "lower", "peak CUDA memory over the run"),
    FigureSpec("val.hmean", "higher", "validation hmean of the last epoch"),
    FigureSpec("val.hmean_best", "higher", "best validation hmean over the epochs"),
    FigureSpec("val.precision", "higher", "validation precision of the last epoch"),
    FigureSpec("val.recall", "higher", "validation recall of the last epoch"),
    FigureSpec("train.loss", "lower", "training loss (epoch mean) of the last epoch"),
)
_COMPILED = [(spec, spec.regex()) for spec in FIGURE_SPECS]


def spec_for(key: str) -> FigureSpec | None:
    return next((spec for spec, rx in _COMPILED if rx.match(key)), None)


def steady(epochs: list[EpochPerf]) -> list[EpochPerf]:
    """All epochs but the first (warm-up) when there are several, and none cut short (partial)."""
    rest = epochs[1:] if len(epochs) > 1 else epochs
    return [e for e in rest if not e.partial] or rest


def median_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def _put(out: dict[str, float], key: str, value: float | None) -> None:
    if value is not None and math.isfinite(value):
        out[key] = float(value)


PER_BATCH_WORKER_STAGES = frozenset({"collate"})  # timed once per batch, the others once per sample


def batch_size(phase: str, config: dict[str, Any]) -> float:
    """The phase's batch size from the key config (1 when unknown), to put collate per sample."""
    size = config.get("batch_size")
    if phase != "train":
        size = config.get("val_batch_size") or size
    return float(size) if isinstance(size, int | float) and size > 0 else 1.0


def per_sample(stage: str, seconds: float, phase: str, config: dict[str, Any]) -> float:
    return seconds / batch_size(phase, config) if stage in PER_BATCH_WORKER_STAGES else seconds


def worker_share(epoch: EpochPerf, stage: str, config: dict[str, Any]) -> float | None:
    """The stage's share of per-sample worker time (collate spread over the batch)."""
    means = {
        s: per_sample(s, v["mean"], epoch.phase, config)
        for s, v in epoch.worker_stages.items()
        if "mean" in v
    }
    total = sum(v for v in means.values() if v)
    mean = means.get(stage)
    return mean / total if mean is not None and total > 0 else None


def _phase_figures(
    out: dict[str, float], phase: str, epochs: list[EpochPerf], config: dict[str, Any]
) -> None:
    st = steady(epochs)
    out[f"{phase}.epochs"] = float(len(epochs))
    for name in PHASE_FIELDS:
        _put(out, f"{phase}.{name}", median_of(getattr(e, name) for e in st))
    # main-process stages (share of the epoch) and worker stages (share of per-sample worker time)
    for kind in ("stage", "worker"):
        per_epoch = [e.stages if kind == "stage" else e.worker_stages for e in st]
        for stage in sorted({s for stats in per_epoch for s in stats}):
            for stat in STATS:
                values = (stats.get(stage, {}).get(stat) for stats in per_epoch)
                _put(out, f"{phase}.{kind}.{stage}.{stat}_s", median_of(values))
            shares = (e.stage_share(stage) if kind == "stage" else worker_share(e, stage, config) for e in st)
            _put(out, f"{phase}.{kind}.{stage}.share", median_of(shares))
    _put(out, f"{phase}.cache.hit_rate", median_of(e.cache_hit_rate for e in st))
    for key, fallback in MEMORY_PEAKS.items():
        peaks = [e.memory.get(key, e.memory.get(fallback) if fallback else None) for e in epochs]
        _put(out, f"{phase}.memory.{key}", max((p for p in peaks if p is not None), default=None))


def cache_counts(epochs: list[EpochPerf]) -> tuple[int, int] | None:
    """(hits, misses): one lookup per sample, so hits = hit rate x samples in each epoch."""
    used = [e for e in epochs if e.cache_hit_rate is not None and e.samples]
    if not used:
        return None
    hits = sum(round((e.cache_hit_rate or 0.0) * (e.samples or 0.0)) for e in used)
    lookups = sum(round(e.samples or 0.0) for e in used)
    return hits, lookups - hits


@dataclass
class TimeSavedEstimate:
    phase: str
    hits: int
    miss_epoch: int
    miss_rate: float
    miss_cost_s: float  # mean targets time per sample in the mostly-miss epoch
    hit_epoch: int
    hit_rate: float
    hit_cost_s: float  # mean targets time per sample in the (last) mostly-hit epoch

    @property
    def gross_s(self) -> float:
        """What the hits would have cost as misses."""
        return self.hits * self.miss_cost_s

    @property
    def net_s(self) -> float:
        """Gross minus what the hits cost; negative when a hit is slower than computing."""
        return self.hits * (self.miss_cost_s - self.hit_cost_s)


def time_saved(epochs: list[EpochPerf]) -> list[TimeSavedEstimate]:
    """Per phase: hits x the misses' mean targets time, less what the hits cost.

    The worker ``targets`` stage times the lookup and, on a miss, the computation. The epoch with
    the lowest hit rate (below 50%) stands for a miss's cost; the last epoch with the highest hit
    rate (the warmest) for a hit's. Worker time (spread over the workers), not wall time.
    """
    out = []
    used = [e for e in epochs if e.cache_hit_rate is not None and e.samples and "targets" in e.worker_stages]
    for phase, eps in group_by_phase(used).items():
        miss = min(eps, key=lambda e: e.cache_hit_rate or 0.0)
        top = max(e.cache_hit_rate or 0.0 for e in eps)
        hit = [e for e in eps if (e.cache_hit_rate or 0.0) == top][-1]
        miss_rate, hit_rate = miss.cache_hit_rate or 0.0, hit.cache_hit_rate or 0.0
        if miss_rate >= 0.5 or hit_rate <= miss_rate:
            continue  # no epoch dominated by misses: a miss's cost is unknown
        miss_cost = miss.worker_stages["targets"].get("mean")
        hit_cost = hit.worker_stages["targets"].get("mean")
        if miss_cost is None or hit_cost is None:
            continue
        hits, _ = cache_counts(eps) or (0, 0)
        out.append(
            TimeSavedEstimate(phase, hits, miss.epoch, miss_rate, miss_cost, hit.epoch, hit_rate, hit_cost)
        )
    return out


def last_value(run: RunData, key: str, pick: Callable[[list[float]], float] | None = None) -> float | None:
    series = run.series(key)
    if series.empty:
        return None
    values = [float(v) for v in series["value"]]
    return pick(values) if pick else values[-1]


def compute_figures(run: RunData, perf: PerfData) -> dict[str, float]:
    out: dict[str, float] = {}
    config = dict(run.info.get("config") or {})
    for phase in perf.phases:
        _phase_figures(out, phase, perf.phase(phase), config)
    if out.get("train.time_per_sample_s") and "validate.time_per_sample_s" in out:
        out["val_vs_train_ratio"] = out["validate.time_per_sample_s"] / out["train.time_per_sample_s"]
    counts = cache_counts(perf.epochs)
    if counts is not None:
        hits, misses = counts
        out["cache.hits"], out["cache.misses"] = float(hits), float(misses)
        if hits + misses:
            out["cache.hit_rate"] = hits / (hits + misses)
        estimates = time_saved(perf.epochs)
        for est in estimates:
            out[f"{est.phase}.cache.miss_cost_s"] = est.miss_cost_s
            out[f"{est.phase}.cache.hit_cost_s"] = est.hit_cost_s
        if estimates:
            out["cache.time_saved_s"] = sum(e.net_s for e in estimates)
    for key in MEMORY_PEAKS:
        peaks = [v for k, v in out.items() if k.endswith(f".memory.{key}")]
        if peaks:
            out[f"memory.{key}"] = max(peaks)
    _put(out, "val.hmean", last_value(run, "val/hmean"))
    _put(out, "val.hmean_best", last_value(run, "val/hmean", max))
    _put(out, "val.precision", last_value(run, "val/precision"))
    _put(out, "val.recall", last_value(run, "val/recall"))
    _put(out, "train.loss", last_value(run, "train/loss_epoch"))
    return out
