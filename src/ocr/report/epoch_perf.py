"""Per-epoch performance records, from ``perf_summary.json`` or rebuilt from logged perf keys.

W&B and TensorBoard runs only carry what the profiler logged (the keys of :mod:`ocr.perf.keys`).
Rebuilding the same ``EpochPerf`` from both lets every figure be computed by one code path, so a
run reads the same whichever logger recorded it. ``EpochPerf`` is also the ``epochs`` record of the
report's JSON export (``ocr.report/1``), so its fields are declared here; the summary's fields
they hold come from :mod:`ocr.perf.schema`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ocr.perf.keys import PREFIX, PerfKey, parse_key, rank_label
from ocr.perf.schema import EPOCH_SCALARS, PHASES
from ocr.report.run import RunData, as_int

# The report's names of the cache clients' hit rates (the summary's ``cache.<client>.hit_rate``).
_CACHE_FIELD = {"target": "cache_hit_rate", "sample": "sample_cache_hit_rate"}


@dataclass
class EpochPerf:
    """One phase's epoch: wall time, throughput, per-stage statistics (seconds), memory, cache."""

    phase: str
    epoch: int
    wall_s: float | None = None
    samples: float | None = None
    samples_per_s: float | None = None
    time_per_sample_s: float | None = None
    data_wait_share: float | None = None
    first_batch_wait_s: float | None = None
    steady_data_wait_share: float | None = None
    attributed_share: float | None = None
    val_vs_train_time_per_sample: float | None = None
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    worker_stages: dict[str, dict[str, float]] = field(default_factory=dict)
    cache_hit_rate: float | None = None  # the target-map cache (``target_cache_*`` counters)
    sample_cache_hit_rate: float | None = None  # the whole-sample cache (``sample_cache_*``)
    memory: dict[str, float] = field(default_factory=dict)
    rank_data_wait_share: dict[str, float] = field(default_factory=dict)
    workers: int | None = None
    evaluator: dict[str, Any] = field(default_factory=dict)
    partial: bool = False  # set by PerfData: far fewer samples than the phase's full epochs

    def stage_share(self, stage: str) -> float | None:
        total = self.stages.get(stage, {}).get("total")
        return total / self.wall_s if total is not None and self.wall_s else None

    def stage_count(self, stage: str) -> int | None:
        """Calls of a stage in the epoch: the summary's count, or total / mean from logged keys."""
        stats = self.stages.get(stage, {})
        if stats.get("count") is not None:
            return int(stats["count"])
        total, mean = stats.get("total"), stats.get("mean")
        return round(total / mean) if total is not None and mean else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PerfData:
    epochs: list[EpochPerf]
    memory_timeline: list[dict[str, Any]]
    origin: str  # "perf_summary.json", "logged perf/* keys" or "report JSON"

    def __post_init__(self) -> None:
        mark_partial(self.epochs)

    def phase(self, phase: str) -> list[EpochPerf]:
        return [e for e in self.epochs if e.phase == phase]

    @property
    def phases(self) -> list[str]:
        present = {e.phase for e in self.epochs}
        return [p for p in PHASES if p in present] + sorted(present - set(PHASES))


PARTIAL_SHARE = 0.9  # an epoch with fewer samples than this share of the phase's fullest is partial


def mark_partial(epochs: list[EpochPerf]) -> None:
    """Flag epochs cut short (a time limit or an interrupt stopping the run mid-epoch).

    Every full epoch of a phase sees the same samples, so an epoch with far fewer than the phase's
    fullest one stopped early: its time per sample and data wait describe one or two batches (the
    epoch's start-up), not the epoch, and it is left out of the steady-state figures.
    """
    for eps in group_by_phase(epochs).values():
        counts = [e.samples for e in eps if e.samples]
        full = max(counts) if len(counts) > 1 else None
        for e in eps:
            e.partial = bool(full and e.samples and e.samples < PARTIAL_SHARE * full)


def partial_text(e: EpochPerf, epochs: list[EpochPerf]) -> str:
    """ "16 of 400 samples" for a partial epoch (the fullest epoch of its phase as the reference)."""
    full = max((x.samples or 0.0) for x in epochs if x.phase == e.phase)
    return f"{e.samples:.0f} of {full:.0f} samples" if e.samples and full else "cut short"


def _order(epochs: list[EpochPerf]) -> list[EpochPerf]:
    rank = {p: i for i, p in enumerate(PHASES)}
    return sorted(epochs, key=lambda e: (e.epoch, rank.get(e.phase, 99)))


def from_summary(summary: Mapping[str, Any]) -> PerfData:
    """Records from a ``perf_summary.json`` document as read: entries written by older versions
    may lack keys that :class:`~ocr.perf.schema.EpochEntry` now has, so every read is lenient."""
    epochs = [
        EpochPerf(
            phase=entry["phase"],
            epoch=int(entry["epoch"]),
            samples=float(entry["samples"]) if entry.get("samples") is not None else None,
            stages={k: dict(v) for k, v in entry.get("stages", {}).items()},
            worker_stages={k: dict(v) for k, v in entry.get("worker_stages", {}).items()},
            cache_hit_rate=_client_rate(entry, "target"),
            sample_cache_hit_rate=_client_rate(entry, "sample"),
            memory={k: float(v) for k, v in (entry.get("memory") or {}).items() if v is not None},
            rank_data_wait_share={
                rank_label(r["rank"]): r["data_wait_share"] for r in entry.get("ranks", [])
            },
            workers=entry.get("workers"),
            evaluator=dict(entry.get("evaluator") or {}),
            **{k: entry.get(k) for k in EPOCH_SCALARS},
        )
        for entry in summary.get("epochs", [])
    ]
    return PerfData(_order(epochs), list(summary.get("memory_timeline", [])), "perf_summary.json")


def _client_rate(entry: Mapping[str, Any], client: str) -> float | None:
    """A cache client's hit rate in a summary epoch; summaries from before the clients were
    reported apart hold the target cache's as ``cache.hit_rate``."""
    cache = entry.get("cache") or {}
    if client in cache:
        return (cache[client] or {}).get("hit_rate")
    return cache.get("hit_rate") if client == "target" else None


def _assign(record: EpochPerf, key: PerfKey, value: float) -> None:
    if key.group == "scalar":
        setattr(record, key.name, value)
    elif key.group == "cache" and key.name in _CACHE_FIELD:
        setattr(record, _CACHE_FIELD[key.name], value)
    elif key.group == "memory":
        record.memory[key.name] = value
    elif key.group == "rank":
        record.rank_data_wait_share[key.name] = value
    elif key.group == "evaluator_stage":
        record.evaluator.setdefault("stages", {})[key.name] = value
    elif key.group == "evaluator":
        record.evaluator[key.name] = value
    elif key.group == "worker":
        record.worker_stages.setdefault(key.name, {})[key.stat] = value
    elif key.group == "stage":
        record.stages.setdefault(key.name, {})[key.stat] = value


def from_metrics(run: RunData) -> PerfData:
    """Rebuild epochs from the logged ``perf/<phase>/...`` keys; one log call per phase and epoch."""
    table = run.metrics[run.metrics["key"].str.startswith(f"{PREFIX}/")]
    records: dict[tuple[str, int], EpochPerf] = {}
    for step, epoch, name, value in table.itertuples(index=False):
        key = parse_key(name)
        if key is None:
            continue
        epoch_i = as_int(epoch)
        if epoch_i is None:
            epoch_i = as_int(step) or 0
        record = records.setdefault((key.phase, epoch_i), EpochPerf(key.phase, epoch_i))
        _assign(record, key, float(value))
    for record in records.values():
        if record.samples_per_s is not None and record.wall_s is not None:
            record.samples = float(round(record.samples_per_s * record.wall_s))
    return PerfData(_order(list(records.values())), [], "logged perf/* keys")


def from_export(epochs: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> PerfData:
    return PerfData(_order([EpochPerf(**e) for e in epochs]), timeline, "report JSON")


def perf_data(run: RunData) -> PerfData:
    """The richest per-epoch view the run offers."""
    if run.summary and run.summary.get("epochs"):
        return from_summary(run.summary)
    if run.extra.get("epochs"):
        return from_export(run.extra["epochs"], run.extra.get("memory_timeline", []))
    return from_metrics(run)


def group_by_phase(epochs: list[EpochPerf]) -> dict[str, list[EpochPerf]]:
    out: dict[str, list[EpochPerf]] = defaultdict(list)
    for e in epochs:
        out[e.phase].append(e)
    return dict(out)
