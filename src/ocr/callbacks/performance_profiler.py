"""``PerformanceProfilerCallback``: where every millisecond of training and validation goes.

How it measures, and why this way:

* **Data wait, host-to-device, step.** Lightning already wraps the DataLoader fetch
  (``*_dataloader_next`` / ``val_next``), ``batch_to_device`` and the training batch in
  ``trainer.profiler`` actions. The callback puts a thin tap in front of whatever profiler the
  trainer has, so data wait is timed around the fetch itself, not as the gap between hooks
  (which would also hold the host-to-device copy). Only the outermost named action is counted,
  so nested actions are never counted twice.
* **Post-processing and metric.** The LightningModule marks them with its ``stage_timer``; their
  time is subtracted from the enclosing step so that "compute" means forward (+ loss).
* **Loader start.** ``iter(DataLoader)`` forks or resets the workers before any hook runs; the
  data module's :class:`~ocr.data.loader.TimedDataLoader` records that span and the callback adds
  it to the epoch it belongs to as ``loader_start`` (moving a validation loader's start-up out of
  the enclosing training epoch).
* **Worker stages.** Decode, transform, targets and collate are timed inside the DataLoader
  workers and carried back in ``batch["perf"]``, with cache hit/miss counters.
* **CUDA.** ``time.perf_counter`` everywhere; the device is synchronised only every
  ``cuda_sync_every`` batches, so the overhead stays small.
* **DDP.** Every rank measures; at each epoch end the ranks' statistics are gathered: samples and
  counts add, p95/p99 take the maximum, data wait is kept per rank. Only rank zero logs and writes.

Epoch summaries are logged as ``perf/<phase>/<stage>/<stat>`` through the trainer's loggers (CSV,
W&B, TensorBoard: whichever are configured) and written to ``perf_summary.json`` (schema in
``ocr.perf.schema``) at the end of fit, validate, test and predict.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

import lightning as L
import psutil
import torch
import torch.distributed as dist
from lightning.pytorch.profilers import Profiler

from ocr.callbacks.phases import PhaseCallback
from ocr.perf.schema import SCHEMA, reader_label
from ocr.perf.stats import merge_rank_stats, summarize
from ocr.perf.system import hardware_info, memory_snapshot, versions

# Stages that run on the device and need a synchronisation to be timed honestly on CUDA.
_DEVICE_STAGES = frozenset({"h2d", "compute"})
_STEP_HOOKS = {
    "validation_step": "compute",
    "test_step": "compute",
    "predict_step": "compute",
}


def merge_evaluator_stats(pools: list[dict[str, Any]]) -> dict[str, Any]:
    """The ranks' evaluator pools as one: work and images add, the epoch's waits take the maximum.

    ``hidden_share`` is the share of the evaluators' work the main processes did not wait for
    (waits = the epoch-end drain plus any wait for a free slot); ``busy_share`` is the evaluators'
    work over their capacity (processes x epoch wall time).
    """
    workers = sum(int(p["workers"]) for p in pools)
    busy = sum(float(p["busy_s"]) for p in pools)
    waited = sum(float(p["drain_s"]) + float(p.get("slot_wait_s", 0.0)) for p in pools)
    wall = max(float(p["wall_s"]) for p in pools)
    stages: dict[str, float] = defaultdict(float)
    for p in pools:
        for stage, seconds in p.get("stages", {}).items():
            stages[stage] += float(seconds)
    return {
        "workers": workers,
        "handoff": pools[0].get("handoff"),
        "images": sum(int(p["images"]) for p in pools),
        "wall_s": wall,
        "busy_s": busy,
        "busy_share": busy / (workers * wall) if workers and wall > 0 else 0.0,
        "drain_s": max(float(p["drain_s"]) for p in pools),
        "slot_wait_s": max(float(p.get("slot_wait_s", 0.0)) for p in pools),
        "hidden_share": max(0.0, 1.0 - waited / busy) if busy > 0 else None,
        "stages": dict(stages),
    }


def classify_action(action: str, own_key: str) -> str | None:
    """Map a Lightning profiler action to a stage name, or ``None`` when it is not a stage."""
    if action.endswith("_dataloader_next") or (action.startswith("[_") and action.endswith("_next")):
        return "data_wait"
    if action == "run_training_batch":
        return "compute"
    if action == "save_checkpoint":
        return "checkpoint"
    if action.startswith("[Strategy]"):
        hook = action.rsplit(".", 1)[-1]
        if hook == "batch_to_device":
            return "h2d"
        return _STEP_HOOKS.get(hook)
    if action.startswith("[Callback]"):
        return "profiler" if action.startswith(f"[Callback]{own_key}.") else "callbacks"
    if action.startswith("[LightningModule]"):
        return "hooks"
    return None


@dataclass
class _EpochRecord:
    phase: str
    epoch: int
    start: float
    excluded: float = 0.0
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    worker: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    worker_pids: set[int] = field(default_factory=set)
    samples: int = 0
    batches: int = 0


class _InnerStage:
    """Context manager for a stage the model marks itself; cheap enough for every batch."""

    __slots__ = ("clock", "stage", "t0")

    def __init__(self, clock: _StageClock, stage: str) -> None:
        self.clock, self.stage, self.t0 = clock, stage, 0.0

    def __enter__(self) -> _InnerStage:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.clock.record_inner(self.stage, time.perf_counter() - self.t0)


class _StageClock:
    """Times the outermost named action at any moment, and the inner stages the model marks."""

    def __init__(self, own_key: str, sync_every: int) -> None:
        self.own_key = own_key
        self.sync_every = max(1, sync_every)
        self.cuda = torch.cuda.is_available()
        self.record: _EpochRecord | None = None
        self._classes: dict[str, str | None] = {}
        self._open_action: str | None = None
        self._open_stage = ""
        self._open_start = 0.0
        self._inner_total = 0.0
        self._fetches = 0
        self._sync = False

    def start(self, action: str) -> None:
        if self._open_action is not None or self.record is None:
            return
        stage = self._classes.get(action, "?")
        if stage == "?":
            stage = self._classes[action] = classify_action(action, self.own_key)
        if stage is None:
            return
        if stage == "data_wait":
            self._fetches += 1
            self._sync = self.cuda and self._fetches % self.sync_every == 0
        self._open_action, self._open_stage, self._inner_total = action, stage, 0.0
        self._open_start = time.perf_counter()

    def stop(self, action: str) -> None:
        if action != self._open_action:
            return
        if self._sync and self._open_stage in _DEVICE_STAGES:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - self._open_start
        self._open_action = None
        if self.record is not None:
            self.record.stages[self._open_stage].append(elapsed - self._inner_total)

    def record_inner(self, stage: str, elapsed: float) -> None:
        if self.record is None:
            return
        self.record.stages[stage].append(elapsed)
        if self._open_action is not None:
            self._inner_total += elapsed

    def __call__(self, stage: str) -> _InnerStage:
        return _InnerStage(self, stage)


class _TapProfiler(Profiler):
    """Forwards every call to the trainer's own profiler and feeds the stage clock on the way."""

    def __init__(self, inner: Profiler, clock: _StageClock) -> None:
        super().__init__()
        self.inner = inner
        self.clock = clock

    def start(self, action_name: str) -> None:
        self.clock.start(action_name)
        self.inner.start(action_name)

    def stop(self, action_name: str) -> None:
        self.inner.stop(action_name)
        self.clock.stop(action_name)

    def summary(self) -> str:
        return self.inner.summary()

    def describe(self) -> None:
        self.inner.describe()

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        self.inner.setup(stage, local_rank, log_dir)

    def teardown(self, stage: str | None) -> None:
        self.inner.teardown(stage)


CACHE_CLIENTS = ("target", "sample")


def cache_stats(counters: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per cache client (``target``, ``sample``), its ``<client>_cache_*`` counters apart: hits,
    misses, hit rate (``None`` without lookups) and any fault counter (``write_errors``...)."""
    out: dict[str, dict[str, Any]] = {}
    for client in CACHE_CLIENTS:
        prefix = f"{client}_cache_"
        stats: dict[str, Any] = {k[len(prefix) :]: v for k, v in counters.items() if k.startswith(prefix)}
        hits, misses = int(stats.get("hits", 0)), int(stats.get("misses", 0))
        stats.update(hits=hits, misses=misses, hit_rate=hits / (hits + misses) if hits + misses else None)
        out[client] = stats
    return out


class PerformanceProfilerCallback(PhaseCallback):
    """Per-stage timing with percentiles, memory, throughput and cache statistics.

    Args:
        enabled: ``False`` turns every hook into an immediate return.
        output_dir: where ``perf_summary.json`` goes (default: the trainer's log dir).
        cuda_sync_every: synchronise CUDA on one batch in this many.
        log_stats: which statistics of each stage are logged per epoch (all are in the JSON).
        memory_interval_s: seconds between memory readings (the memory timeline); a reading with
            worker RSS costs a few milliseconds, so it is paced by time, not by batch.
        summary_file: file name of the summary (``None``: keep it in memory, write nothing).
        pss_phases: phases whose epoch end also reads the child processes' PSS (the memory
            budget's figure): the kernel walks every child's page tables for it, tens of ms per
            torch-sized process, too much for the timeline or every training epoch.
    """

    def __init__(
        self,
        enabled: bool = True,
        output_dir: str | None = None,
        cuda_sync_every: int = 20,
        log_stats: tuple[str, ...] | list[str] = ("mean", "median", "p95", "p99"),
        memory_interval_s: float = 2.0,
        summary_file: str | None = "perf_summary.json",
        pss_phases: tuple[str, ...] | list[str] = ("validate", "test"),
    ) -> None:
        super().__init__()
        self.enabled = enabled
        self.output_dir = output_dir
        self.cuda_sync_every = cuda_sync_every
        self.log_stats = tuple(log_stats)
        self.memory_interval_s = memory_interval_s
        self.pss_phases = tuple(pss_phases)
        self._last_memory = 0.0
        self._claimed_spans: set[tuple[float, float]] = set()
        self._setup_time = time.perf_counter()
        self.summary_file = summary_file
        self.epochs: list[dict[str, Any]] = []
        self.timeline: list[dict[str, Any]] = []
        self.run_info: dict[str, Any] = {}
        self._clock: _StageClock | None = None
        self._stack: list[_EpochRecord] = []
        self._t0 = time.perf_counter()
        self._process = psutil.Process()
        self._trainer_ref: L.Trainer | None = None

    # -- installation -------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.enabled:
            return
        if self._clock is None:
            self._clock = _StageClock(self.state_key, self.cuda_sync_every)
        host = cast(Any, trainer)  # ``profiler`` is a plain attribute Lightning sets at init
        if not isinstance(host.profiler, _TapProfiler):
            host.profiler = _TapProfiler(host.profiler, self._clock)
        if hasattr(pl_module, "stage_timer"):
            cast(Any, pl_module).stage_timer = self._clock
        if not self.run_info:
            self.run_info = self._run_info(trainer, pl_module)
        self._trainer_ref = trainer
        self._setup_time = time.perf_counter()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.enabled:
            return
        host = cast(Any, trainer)
        if isinstance(host.profiler, _TapProfiler):
            host.profiler = host.profiler.inner
        if hasattr(pl_module, "stage_timer"):
            from ocr.perf.stage_timer import NullStageTimer

            cast(Any, pl_module).stage_timer = NullStageTimer()
        self._trainer_ref = None
        self.run_info.setdefault("stages_run", []).append(stage)
        if trainer.is_global_zero and self.summary_file:
            self.write_summary(trainer)

    # -- epoch windows ------------------------------------------------------------------------
    def phase_active(self, trainer: L.Trainer) -> bool:
        return self.enabled

    def phase_start(self, trainer: L.Trainer, phase: str) -> None:
        assert self._clock is not None
        record = _EpochRecord(phase, int(trainer.current_epoch), time.perf_counter())
        self._stack.append(record)
        self._clock.record = record
        self._claim_loader_start(trainer, record)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()

    _LOADERS: ClassVar[dict[str, str]] = {
        "train": "train_dataloader",
        "validate": "val_dataloaders",
        "test": "test_dataloaders",
        "predict": "predict_dataloaders",
    }

    def _claim_loader_start(self, trainer: L.Trainer, record: _EpochRecord) -> None:
        """Add this phase's latest ``iter(DataLoader)`` span to the epoch, once.

        A span inside the window is a stage of it. A span that started before the window counts
        only when an enclosing window holds it (a validation loader started inside a training
        epoch): the validation window then starts at the span, which moves that time out of
        training. The very first training iterator starts before any epoch (during fit set-up,
        with other set-up work after it) and is recorded as ``loader_start_before_epoch_s``.
        """
        loaders = getattr(trainer, self._LOADERS[record.phase], None)
        if loaders is None:
            return
        items = (
            loaders.values()
            if isinstance(loaders, dict)
            else loaders
            if isinstance(loaders, list)
            else [loaders]
        )
        for loader in items:
            span = getattr(loader, "last_iter_span", None)
            if span is None or span in self._claimed_spans or span[0] < self._setup_time:
                continue
            self._claimed_spans.add(span)
            enclosing = [r for r in self._stack if r is not record and r.start <= span[0]]
            if span[0] >= record.start or enclosing:
                record.start = min(record.start, span[0])
                record.stages["loader_start"].append(span[1] - span[0])
            else:
                record.counters["loader_start_before_epoch_us"] += int(1e6 * (span[1] - span[0]))

    def phase_end(self, trainer: L.Trainer, phase: str) -> None:
        if not self._stack or self._stack[-1].phase != phase:
            return
        assert self._clock is not None
        record = self._stack.pop()
        wall = time.perf_counter() - record.start - record.excluded
        if self._stack:  # validation inside a training epoch: not training time
            self._stack[-1].excluded += time.perf_counter() - record.start
        self._clock.record = self._stack[-1] if self._stack else None
        self._finish(trainer, record, wall)

    def phase_batch(self, trainer: L.Trainer, phase: str, batch: Any) -> None:
        if not self._stack:
            return
        record = self._stack[-1]
        if record.batches == 0 and self._trainer_ref is not None:
            self._claim_loader_start(self._trainer_ref, record)
        record.batches += 1
        perf = batch.get("perf") if isinstance(batch, dict) else None
        if perf:
            for stage, values in perf.get("times", {}).items():
                record.worker[stage].extend(values)
            for name, value in perf.get("counters", {}).items():
                record.counters[name] += int(value)
            record.worker_pids.add(int(perf.get("worker_pid", 0)))
            record.samples += int(perf.get("counters", {}).get("samples", 0))
        elif isinstance(batch, dict) and isinstance(batch.get("images"), torch.Tensor):
            record.samples += int(batch["images"].shape[0])
        elif isinstance(batch, (list, tuple)) and batch and hasattr(batch[0], "__len__"):
            record.samples += len(batch[0])
        if time.perf_counter() - self._last_memory >= self.memory_interval_s:
            self._sample_memory(record)

    # -- summaries ----------------------------------------------------------------------------
    def _sample_memory(self, record: _EpochRecord, pss: bool = False) -> dict[str, float]:
        self._last_memory = time.perf_counter()
        snap = memory_snapshot(self._process, pss=pss)
        self.timeline.append(
            {
                "t": round(time.perf_counter() - self._t0, 4),
                "phase": record.phase,
                "epoch": record.epoch,
                **snap,
            }
        )
        return snap

    def _local_payload(self, record: _EpochRecord, wall: float) -> dict[str, Any]:
        memory = self._sample_memory(record, pss=record.phase in self.pss_phases)
        peaks = [m for m in self.timeline if m["phase"] == record.phase and m["epoch"] == record.epoch]
        memory["rss_peak_mb"] = max(m["rss_mb"] for m in peaks)
        memory["workers_rss_peak_mb"] = max(m["workers_rss_mb"] for m in peaks)
        pss = [m["workers_pss_mb"] for m in peaks if "workers_pss_mb" in m]
        if pss:
            memory["workers_pss_peak_mb"] = max(pss)
        return {
            "wall": wall,
            "samples": record.samples,
            "batches": record.batches,
            "stages": {k: summarize(v) for k, v in record.stages.items()},
            "worker": {k: summarize(v) for k, v in record.worker.items()},
            "counters": dict(record.counters),
            "workers": len(record.worker_pids - {os.getpid()}),
            "memory": memory,
            # The epoch's first fetch plus any loader start in the window: the epoch-boundary stall.
            "first_batch_wait": sum(record.stages.get("loader_start", []))
            + (record.stages["data_wait"][0] if record.stages.get("data_wait") else 0.0),
            "first_data_wait": record.stages["data_wait"][0] if record.stages.get("data_wait") else 0.0,
            "evaluator": self._evaluator_stats(record),
        }

    def _evaluator_stats(self, record: _EpochRecord) -> dict[str, Any] | None:
        """The evaluator pool's figures for this evaluation epoch (``None``: in-process evaluation)."""
        module = self._trainer_ref.lightning_module if self._trainer_ref is not None else None
        if record.phase not in ("validate", "test") or module is None:
            return None
        stats = getattr(module, "evaluator_stats", None)
        if stats is not None:
            cast(Any, module).evaluator_stats = None  # consumed once
        return stats

    @staticmethod
    def _gather(trainer: L.Trainer, payload: dict[str, Any]) -> list[dict[str, Any]]:
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, payload)
            return gathered
        return [payload]

    def _finish(self, trainer: L.Trainer, record: _EpochRecord, wall: float) -> None:
        ranks = self._gather(trainer, self._local_payload(record, wall))
        if not trainer.is_global_zero:
            return
        stage_names = sorted({s for r in ranks for s in r["stages"]})
        worker_names = sorted({s for r in ranks for s in r["worker"]})
        stages = {s: merge_rank_stats([r["stages"].get(s, {}) for r in ranks]) for s in stage_names}
        worker = {s: merge_rank_stats([r["worker"].get(s, {}) for r in ranks]) for s in worker_names}
        counters: dict[str, int] = defaultdict(int)
        for r in ranks:
            for k, v in r["counters"].items():
                counters[k] += v
        samples = sum(r["samples"] for r in ranks)
        wall_max = max(r["wall"] for r in ranks)
        rank_rows = [self._rank_row(i, r) for i, r in enumerate(ranks)]
        entry: dict[str, Any] = {
            "phase": record.phase,
            "epoch": record.epoch,
            "world_size": len(ranks),
            "wall_s": wall_max,
            "samples": samples,
            "batches": sum(r["batches"] for r in ranks),
            "samples_per_s": samples / wall_max if wall_max > 0 else 0.0,
            "time_per_sample_s": wall_max * len(ranks) / samples if samples else None,
            "data_wait_share": max(row["data_wait_share"] for row in rank_rows),
            "first_batch_wait_s": max(row["first_batch_wait_s"] for row in rank_rows),
            "steady_data_wait_share": max(row["steady_data_wait_share"] for row in rank_rows),
            "attributed_share": min(row["attributed_share"] for row in rank_rows),
            "stages": stages,
            "worker_stages": worker,
            "workers": sum(r["workers"] for r in ranks),
            "counters": dict(counters),
            "cache": cache_stats(counters),
            "ranks": rank_rows,
            "memory": ranks[0]["memory"],
        }
        pools = [r["evaluator"] for r in ranks if r.get("evaluator")]
        if pools:
            entry["evaluator"] = merge_evaluator_stats(pools)
        self._link_train_validation(entry)
        self.epochs.append(entry)
        self._log(trainer, entry)
        if self.summary_file:
            # Every completed epoch is on disk at once (atomically): a killed run keeps them.
            self.write_summary(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A resumed fit appends to the epochs its earlier run wrote (here or beside the checkpoint)."""
        if not (self.enabled and self.summary_file and trainer.is_global_zero and trainer.ckpt_path):
            return
        restored_epoch = int(trainer.current_epoch)
        candidates = [self._summary_path(trainer), Path(trainer.ckpt_path).parent.parent / self.summary_file]
        for path in candidates:
            try:
                previous = json.loads(path.read_text())["epochs"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            kept = [e for e in previous if isinstance(e, dict) and int(e.get("epoch", -1)) < restored_epoch]
            self.epochs[:0] = kept
            self.run_info["resumed"] = {"from": str(path), "epoch": restored_epoch, "epochs_kept": len(kept)}
            return

    @staticmethod
    def _rank_row(rank: int, payload: dict[str, Any]) -> dict[str, Any]:
        """One rank's wall time, data wait and attributed share (data wait is kept per rank)."""
        wall = payload["wall"]
        data_wait = payload["stages"].get("data_wait", {}).get("total", 0.0)
        named = sum(st["total"] for st in payload["stages"].values())
        first = float(payload.get("first_batch_wait", 0.0))
        steady_wall = wall - first
        steady_wait = data_wait - float(payload.get("first_data_wait", 0.0))
        return {
            "rank": rank,
            "wall_s": wall,
            "samples": payload["samples"],
            "data_wait_s": data_wait,
            "data_wait_share": data_wait / wall if wall > 0 else 0.0,
            "first_batch_wait_s": first,
            # data wait after the first batch, as a share of the epoch after it
            "steady_data_wait_share": steady_wait / steady_wall if steady_wall > 0 else 0.0,
            "attributed_share": named / wall if wall > 0 else 0.0,
            "memory": payload["memory"],
        }

    def _link_train_validation(self, entry: dict[str, Any]) -> None:
        """validation-vs-training time per sample, once both epochs of the same index are known."""
        other = "validate" if entry["phase"] == "train" else "train" if entry["phase"] == "validate" else None
        if other is None:
            return
        for previous in reversed(self.epochs):
            if previous["phase"] == other and previous["epoch"] == entry["epoch"]:
                val, train = (entry, previous) if entry["phase"] == "validate" else (previous, entry)
                if val["time_per_sample_s"] and train["time_per_sample_s"]:
                    ratio = val["time_per_sample_s"] / train["time_per_sample_s"]
                    val["val_vs_train_time_per_sample"] = ratio
                    train["val_vs_train_time_per_sample"] = ratio
                return

    def _log(self, trainer: L.Trainer, entry: dict[str, Any]) -> None:
        if not trainer.loggers:
            return
        phase = entry["phase"]
        metrics: dict[str, float] = {"epoch": float(entry["epoch"])}
        for key in (
            "wall_s",
            "samples_per_s",
            "time_per_sample_s",
            "data_wait_share",
            "first_batch_wait_s",
            "steady_data_wait_share",
            "attributed_share",
            "val_vs_train_time_per_sample",
        ):
            if entry.get(key) is not None:
                metrics[f"perf/{phase}/{key}"] = float(entry[key])
        for stage, stats in entry["stages"].items():
            for stat in self.log_stats:
                metrics[f"perf/{phase}/{stage}/{stat}"] = stats[stat]
            metrics[f"perf/{phase}/{stage}/total"] = stats["total"]
        for stage, stats in entry["worker_stages"].items():
            for stat in self.log_stats:
                metrics[f"perf/{phase}/worker_{stage}/{stat}"] = stats[stat]
        for client, stats in entry["cache"].items():
            if stats["hit_rate"] is not None:
                metrics[f"perf/{phase}/{client}_cache_hit_rate"] = float(stats["hit_rate"])
        for key, value in entry["memory"].items():
            metrics[f"perf/{phase}/memory/{key}"] = float(value)
        for rank in entry["ranks"]:
            metrics[f"perf/{phase}/data_wait_share/rank{rank['rank']}"] = rank["data_wait_share"]
        for key, value in (entry.get("evaluator") or {}).items():
            if key == "stages":
                for stage, seconds in value.items():
                    metrics[f"perf/{phase}/evaluator/{stage}_s"] = float(seconds)
            elif isinstance(value, int | float):
                metrics[f"perf/{phase}/evaluator/{key}"] = float(value)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    # -- output -------------------------------------------------------------------------------
    def _run_info(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        hparams: dict[str, Any] = {"model": dict(pl_module.hparams)}
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "hparams"):
            hparams["data"] = dict(datamodule.hparams)
        hparams["trainer"] = {
            "precision": str(trainer.precision),
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
            "accelerator": type(trainer.accelerator).__name__,
            "max_epochs": trainer.max_epochs,
        }
        blob = json.dumps(hparams, sort_keys=True, default=str)
        data = hparams.get("data", {})
        net = hparams["model"].get("net") or {}
        loader = data.get("loader") or {}
        workers = loader.get("num_workers")
        plan = getattr(datamodule, "loader_plan", None)
        if workers is None and callable(plan):  # null: derived from the machine; record the count used
            workers = plan().train_workers
        return {
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "hardware": hardware_info(),
            "versions": versions(),
            "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:16],
            "config": {
                "reader": reader_label(data.get("reader")),
                "image_size": data.get("image_size"),
                "batch_size": loader.get("batch_size"),
                "num_workers": workers,
                "cache_enabled": (data.get("cache") or {}).get("enabled"),
                "target_formula": (data.get("targets") or {}).get("formula"),
                "augment": (data.get("augment") or {}).get("enabled"),
                "backbone": net.get("backbone"),
                **hparams["trainer"],
            },
            "hparams": json.loads(blob),
        }

    def summary(self) -> dict[str, Any]:
        """The ``perf_summary.json`` document (see :mod:`ocr.perf.schema`)."""
        totals: dict[str, int] = defaultdict(int)
        for e in self.epochs:
            for client, stats in e["cache"].items():
                for name, value in stats.items():
                    if name != "hit_rate":
                        totals[f"{client}_cache_{name}"] += int(value)
        return {
            "schema": SCHEMA,
            "run": self.run_info,
            "epochs": self.epochs,
            "cache": cache_stats(totals),
            "memory_timeline": self.timeline,
        }

    def _summary_path(self, trainer: L.Trainer) -> Path:
        directory = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        return directory / (self.summary_file or "perf_summary.json")

    def write_summary(self, trainer: L.Trainer) -> Path:
        path = self._summary_path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.summary(), indent=1, default=float))
        os.replace(tmp, path)
        return path
