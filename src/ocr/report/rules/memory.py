"""Memory rule: RSS that keeps growing from epoch to epoch (a leak, or a cache without a bound).

What it compares, and why:

* **One reading per epoch**: the last reading of each epoch (the memory timeline when the source
  has it, else the epoch-end readings), so that an epoch with many readings does not outweigh the
  others. The run's first epoch is left out: it allocates everything (worker start-up, JIT, caches).
* **Workers per process, and only under one process count.** ``workers_rss_mb`` sums the RSS of
  the main process's children. When that count changes (a validation loader's persistent workers
  joining at the first validation epoch, say) the sum steps up: more processes, not growth. So
  the worker trend uses the RSS per process, over the readings taken with the final process count.
* **Sustained, not a step.** A least-squares line over those epochs gives the trend; it fires
  when the fitted rise exceeds the ``memory_growth`` limit share of the first value **and** the
  later half of the window still grows (at least a third of the whole window's rate), so a
  one-off step that then stays flat (a cache filling up to its bound) does not fire.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.finding import Finding

MIN_EPOCHS = 3  # a trend needs readings from at least this many epochs
LATE_RATE = 1 / 3  # the later half must still grow at this share of the whole window's rate
WHO = {"rss_mb": "main process", "workers_rss_mb": "DataLoader workers"}


@dataclass(frozen=True)
class Reading:
    epoch: int
    value: float  # MB: the main process's RSS, or the workers' summed RSS
    processes: float | None  # child processes counted in the workers' sum


@dataclass(frozen=True)
class ProcessStep:
    """The last change in the number of worker processes."""

    epoch: int
    before: Reading
    after: Reading


@dataclass(frozen=True)
class Trend:
    key: str
    readings: list[Reading]  # the window the trend is fitted on (one per epoch)
    per_process: bool
    slope: float  # MB per epoch (per process for the workers), least squares
    late_slope: float  # the same over the later half of the window
    late_from: int  # first epoch of the later half
    warmup_epoch: int | None  # the run's first epoch, left out
    step: ProcessStep | None

    def value(self, r: Reading) -> float:
        return _per(r, self.per_process)

    @property
    def first(self) -> Reading:
        return self.readings[0]

    @property
    def last(self) -> Reading:
        return self.readings[-1]

    @property
    def growth(self) -> float:
        """Fitted rise over the window, as a share of the first value."""
        start = self.value(self.first)
        return self.slope * (self.last.epoch - self.first.epoch) / start if start > 0 else 0.0

    @property
    def sustained(self) -> bool:
        return self.slope > 0 and self.late_slope >= LATE_RATE * self.slope

    @property
    def who(self) -> str:
        return WHO.get(self.key, self.key)


def epoch_readings(analysis: Analysis, key: str) -> list[Reading]:
    """The last reading of each epoch, in epoch order."""
    timeline = analysis.perf.memory_timeline
    rows: list[tuple[int, float, float | None]]
    if timeline:
        rows = [
            (int(p["epoch"]), float(p[key]), p.get("workers"))
            for p in timeline
            if p.get(key) is not None and p.get("epoch") is not None
        ]
    else:
        rows = [
            (e.epoch, float(e.memory[key]), e.memory.get("workers"))
            for e in analysis.perf.epochs
            if e.memory.get(key) is not None
        ]
    last: dict[int, Reading] = {}
    for epoch, value, processes in rows:
        last[epoch] = Reading(epoch, value, float(processes) if processes is not None else None)
    return [last[e] for e in sorted(last)]


def _per(r: Reading, per_process: bool) -> float:
    return r.value / r.processes if per_process and r.processes else r.value


def _slope(readings: list[Reading], per_process: bool) -> float:
    xs = np.array([r.epoch for r in readings], dtype=float)
    ys = np.array([_per(r, per_process) for r in readings], dtype=float)
    if len(xs) < 2 or np.ptp(xs) == 0:
        return 0.0
    return float(np.polyfit(xs, ys, 1)[0])


def memory_trend(analysis: Analysis, key: str) -> Trend | None:
    """The trend the rule judges for ``rss_mb`` or ``workers_rss_mb``; None when there is too little."""
    readings = epoch_readings(analysis, key)
    if not readings:
        return None
    warmup = readings[0].epoch if len(readings) > 1 else None
    window = readings[1:] if warmup is not None else readings
    step = None
    per_process = key == "workers_rss_mb"
    if per_process:
        final = window[-1].processes if window else None
        if not final:
            return None  # no worker processes (num_workers=0), or the count was not recorded
        for before, after in itertools.pairwise(readings):
            if before.processes != after.processes and after.processes == final:
                step = ProcessStep(after.epoch, before, after)
        window = [r for r in window if r.processes == final]
    if len({r.epoch for r in window}) < MIN_EPOCHS:
        return None
    slope = _slope(window, per_process)
    middle = float(np.median([r.epoch for r in window]))
    late = [r for r in window if r.epoch >= middle]
    late = late if len(late) >= 2 else window[-2:]
    return Trend(key, window, per_process, slope, _slope(late, per_process), late[0].epoch, warmup, step)


def _signed(mb: float) -> str:
    """A rate in MB, signed, with a decimal below 10 MB (a leak of a few MB per epoch still shows)."""
    text = f"{abs(mb):.1f} MB" if abs(mb) < 10 else fmt.mb(abs(mb))
    return ("+" if mb >= 0 else "-") + text


def describe(trend: Trend) -> list[str]:
    """What was compared, one line each (evidence of the finding, and the memory section)."""
    first, last = trend.first, trend.last
    span = f"epoch {first.epoch} -> {last.epoch}"
    if trend.per_process:
        level = (
            f"RSS per worker process {fmt.mb(trend.value(first))} -> {fmt.mb(trend.value(last))}, "
            f"{span}, {fmt.num(last.processes)} processes (sum {fmt.mb(first.value)} -> {fmt.mb(last.value)})"
        )
    else:
        level = f"RSS {fmt.mb(first.value)} -> {fmt.mb(last.value)}, {span}"
    unit = " per process" if trend.per_process else ""
    lines = [
        level,
        f"fitted trend {_signed(trend.slope)} per epoch{unit} ({_signed_pct(trend.growth)} over "
        f"{last.epoch - first.epoch} epochs); later half (epochs {trend.late_from}-{last.epoch}): "
        f"{_signed(trend.late_slope)} per epoch",
    ]
    left_out = []
    if trend.warmup_epoch is not None:
        left_out.append(f"epoch {trend.warmup_epoch} (warm-up)")
    if trend.step is not None:
        s = trend.step
        left_out.append(
            f"the readings before the worker process count last changed ({fmt.num(s.before.processes)} -> "
            f"{fmt.num(s.after.processes)} at epoch {s.epoch}: summed RSS {fmt.mb(s.before.value)} -> "
            f"{fmt.mb(s.after.value)}, a step from more processes, not growth)"
        )
    if left_out:
        lines.append("left out: " + "; ".join(left_out))
    return lines


def _signed_pct(x: float) -> str:
    return ("+" if x >= 0 else "") + fmt.pct(x)


def memory_growth(analysis: Analysis) -> list[Finding]:
    """Main-process or per-worker RSS with a sustained rising trend above memory_growth."""
    out: list[Finding] = []
    for key in ("rss_mb", "workers_rss_mb"):
        trend = memory_trend(analysis, key)
        if trend is None or not trend.sustained or trend.growth <= analysis.rule_limits.memory_growth:
            continue
        whom = "per DataLoader worker process" if trend.per_process else "of the main process"
        out.append(
            Finding(
                "memory_growth",
                f"Memory {whom} keeps growing: {_signed_pct(trend.growth)} over epochs "
                f"{trend.first.epoch}-{trend.last.epoch}",
                min(0.5, trend.growth / 4),
                [
                    *describe(trend),
                    f"limit: a fitted rise above {fmt.pct(analysis.rule_limits.memory_growth)} of the "
                    f"first value, with the later half still growing",
                ],
                "Memory that grows every epoch is a leak or an unbounded cache: check "
                "data.cache.memory_items, tensors kept across steps (detach logged values) and the "
                "workers' copy-on-write growth.",
                {
                    "growth": trend.growth,
                    "mb_per_epoch": trend.slope,
                    "late_mb_per_epoch": trend.late_slope,
                },
            )
        )
    return out
