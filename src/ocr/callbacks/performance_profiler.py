"""``PerformanceProfilerCallback``: where every millisecond of training and validation goes.

The callback wires the pieces of :mod:`ocr.perf` into Lightning: it puts a tap
(:class:`~ocr.callbacks.profiler_tap.TapProfiler`) in front of the trainer's profiler to feed the
stage clock (:mod:`ocr.perf.clock`), hands the clock to the LightningModule as its
``stage_timer``, opens one record per phase's epoch, and at each epoch end gathers every DDP
rank's payload and merges them (:mod:`ocr.perf.aggregate`). Only rank zero logs and writes.

* **Loader start.** ``iter(DataLoader)`` forks or resets the workers before any hook runs; the
  data module's :class:`~ocr.data.loader.TimedDataLoader` records that span and the callback adds
  it to the epoch it belongs to as ``loader_start``.
* **Worker stages.** Decode, transform, targets and collate are timed inside the DataLoader
  workers and carried back in ``batch["perf"]``, with cache hit/miss counters.

Epoch summaries are logged through the trainer's loggers (CSV, W&B, TensorBoard: whichever are
configured) with the keys of :mod:`ocr.perf.keys`, and written to ``perf_summary.json``
(:mod:`ocr.perf.schema`) after every epoch and at the end of fit, validate, test and predict.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar, cast

import lightning as L
import psutil
import torch

from ocr.callbacks.phases import PhaseCallback, gather_objects
from ocr.callbacks.profiler_tap import TapProfiler
from ocr.perf.aggregate import RankPayload, link_train_validation, local_payload, merge_ranks
from ocr.perf.clock import EpochRecord, StageClock
from ocr.perf.keys import epoch_keys
from ocr.perf.schema import (
    SUMMARY_FILE,
    EpochEntry,
    EpochMemory,
    MemoryReading,
    PerfSummary,
    RankEvaluator,
    RunBlock,
    TimelinePoint,
)
from ocr.perf.stage_timer import NullStageTimer
from ocr.perf.summary import epochs_before, summary_document, write_summary
from ocr.perf.system import memory_snapshot, run_block


class PerformanceProfilerCallback(PhaseCallback):
    """Per-stage timing with percentiles, memory, throughput and cache statistics.

    Args:
        enabled: ``False`` turns every hook into an immediate return.
        output_dir: where ``perf_summary.json`` goes (default: the trainer's log dir).
        cuda_sync_every: synchronise CUDA on one batch in this many.
        log_stats: which statistics of each stage are logged per epoch (all are in the JSON).
        memory_interval_s: seconds between memory readings (the memory timeline); a reading with
            worker RSS is not free, so it is paced by time, not by batch.
        summary_file: file name of the summary (``None``: keep it in memory, write nothing).
        pss_phases: phases whose epoch end also reads the child processes' PSS (the memory
            budget's figure): the kernel walks every child's page tables for it, too costly for
            the timeline or every training epoch.
        pss_budget: the share of the run's time the PSS readings may take. After a reading that
            took ``t`` seconds, the next starts ``t / pss_budget`` after it did (the first always runs).
            A reading walks every child's page tables outside every timed stage, so on a many-core
            node with short validation epochs one at each of them would be a hidden part of
            validation's wall time (figures: docs/performance.md). ``1.0``: at every epoch end of
            ``pss_phases``.
    """

    def __init__(
        self,
        enabled: bool = True,
        output_dir: str | None = None,
        cuda_sync_every: int = 20,
        log_stats: tuple[str, ...] | list[str] = ("mean", "median", "p95", "p99"),
        memory_interval_s: float = 2.0,
        summary_file: str | None = SUMMARY_FILE,
        pss_phases: tuple[str, ...] | list[str] = ("validate", "test"),
        pss_budget: float = 0.01,
    ) -> None:
        super().__init__()
        self.enabled = enabled
        self.output_dir = output_dir
        self.cuda_sync_every = cuda_sync_every
        self.log_stats = tuple(log_stats)
        self.memory_interval_s = memory_interval_s
        self.pss_phases = tuple(pss_phases)
        if not 0.0 < pss_budget <= 1.0:
            raise ValueError(f"pss_budget must be > 0 and <= 1, got {pss_budget!r}")
        self.pss_budget = pss_budget
        self._next_pss = 0.0  # perf_counter time from which the next PSS reading may run
        self._last_memory = 0.0
        self._claimed_spans: set[tuple[float, float]] = set()
        self._setup_time = time.perf_counter()
        self.summary_file = summary_file
        self.epochs: list[EpochEntry] = []
        self.timeline: list[TimelinePoint] = []
        self.run_info: RunBlock | None = None
        self._clock: StageClock | None = None
        self._stack: list[EpochRecord] = []
        self._t0 = time.perf_counter()
        self._process = psutil.Process()

    # -- installation -------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.enabled:
            return
        if self._clock is None:
            self._clock = StageClock(self.state_key, self.cuda_sync_every)
        host = cast(Any, trainer)  # ``profiler`` is a plain attribute Lightning sets at init
        if not isinstance(host.profiler, TapProfiler):
            host.profiler = TapProfiler(host.profiler, self._clock)
        if hasattr(pl_module, "stage_timer"):
            cast(Any, pl_module).stage_timer = self._clock
        if self.run_info is None:
            self.run_info = self._run_info(trainer, pl_module)
        self._setup_time = time.perf_counter()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.enabled:
            return
        host = cast(Any, trainer)
        if isinstance(host.profiler, TapProfiler):
            host.profiler = host.profiler.inner
        if hasattr(pl_module, "stage_timer"):
            cast(Any, pl_module).stage_timer = NullStageTimer()
        if self.run_info is not None:
            self.run_info.setdefault("stages_run", []).append(stage)
        if trainer.is_global_zero and self.summary_file:
            self.write_summary(trainer)

    # -- epoch windows ------------------------------------------------------------------------
    def phase_active(self, trainer: L.Trainer) -> bool:
        return self.enabled

    def phase_start(self, trainer: L.Trainer, phase: str) -> None:
        assert self._clock is not None
        record = EpochRecord(phase, int(trainer.current_epoch), time.perf_counter())
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

    def _claim_loader_start(self, trainer: L.Trainer, record: EpochRecord) -> None:
        """Add this phase's latest ``iter(DataLoader)`` span to the epoch, once.

        A span inside the window is a stage of it. A span that started before the window counts
        only when an enclosing window holds it (a validation loader started inside a training
        epoch): the validation window then starts at the span, which moves that time out of
        training. The very first training iterator starts before any epoch (during fit set-up,
        with other set-up work after it) and is counted as ``loader_start_before_epoch_us``.
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
        if record.batches == 0:
            self._claim_loader_start(trainer, record)
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

    # -- epoch ends ---------------------------------------------------------------------------
    def _sample_memory(self, record: EpochRecord, pss: bool = False) -> MemoryReading:
        self._last_memory = time.perf_counter()
        snap = memory_snapshot(self._process, pss=pss)
        point: TimelinePoint = {
            "t": round(time.perf_counter() - self._t0, 4),
            "phase": record.phase,
            "epoch": record.epoch,
            **snap,
        }
        self.timeline.append(point)
        return snap

    def _epoch_memory(self, record: EpochRecord) -> EpochMemory:
        """The epoch-end reading with the epoch's peaks over the timeline."""
        start = time.perf_counter()
        read_pss = record.phase in self.pss_phases and start >= self._next_pss
        snap = self._sample_memory(record, pss=read_pss)
        if read_pss:  # from this reading's start: the readings take at most pss_budget of the time
            self._next_pss = start + (time.perf_counter() - start) / self.pss_budget
        peaks = [m for m in self.timeline if m["phase"] == record.phase and m["epoch"] == record.epoch]
        memory: EpochMemory = {
            **snap,
            "rss_peak_mb": max(m["rss_mb"] for m in peaks),
            "workers_rss_peak_mb": max(m["workers_rss_mb"] for m in peaks),
        }
        pss = [m["workers_pss_mb"] for m in peaks if "workers_pss_mb" in m]
        if pss:
            memory["workers_pss_peak_mb"] = max(pss)
        return memory

    @staticmethod
    def _evaluator_stats(trainer: L.Trainer, record: EpochRecord) -> RankEvaluator | None:
        """The evaluator pool's figures for this evaluation epoch (``None``: in-process evaluation)."""
        if record.phase not in ("validate", "test"):
            return None
        module = trainer.lightning_module
        stats = getattr(module, "evaluator_stats", None)
        if stats is not None:
            cast(Any, module).evaluator_stats = None  # consumed once
        return cast(RankEvaluator | None, stats)

    def _finish(self, trainer: L.Trainer, record: EpochRecord, wall: float) -> None:
        evaluator = self._evaluator_stats(trainer, record)
        payload = local_payload(record, wall, self._epoch_memory(record), evaluator)
        ranks: list[RankPayload] = gather_objects(trainer, payload)
        if not trainer.is_global_zero:
            return
        entry = merge_ranks(record.phase, record.epoch, ranks)
        link_train_validation(self.epochs, entry)
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
        candidates = [self.summary_path(trainer), Path(trainer.ckpt_path).parent.parent / self.summary_file]
        for path in candidates:
            kept = epochs_before(path, restored_epoch)
            if kept is None:
                continue
            self.epochs[:0] = kept
            if self.run_info is not None:
                self.run_info["resumed"] = {
                    "from": str(path),
                    "epoch": restored_epoch,
                    "epochs_kept": len(kept),
                }
            return

    def _log(self, trainer: L.Trainer, entry: EpochEntry) -> None:
        if not trainer.loggers:
            return
        metrics = {"epoch": float(entry["epoch"])}
        metrics.update((str(key), value) for key, value in epoch_keys(entry, self.log_stats).items())
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    # -- output -------------------------------------------------------------------------------
    @staticmethod
    def _run_info(trainer: L.Trainer, pl_module: L.LightningModule) -> RunBlock:
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
        plan = getattr(datamodule, "loader_plan", None)
        return run_block(hparams, (lambda: plan().train_workers) if callable(plan) else None)

    def summary(self) -> PerfSummary:
        """The ``perf_summary.json`` document (see :mod:`ocr.perf.schema`)."""
        return summary_document(self.run_info or cast(RunBlock, {}), self.epochs, self.timeline)

    def summary_path(self, trainer: L.Trainer) -> Path:
        """Where :meth:`write_summary` writes ``perf_summary.json``."""
        directory = Path(self.output_dir or trainer.log_dir or trainer.default_root_dir)
        return directory / (self.summary_file or SUMMARY_FILE)

    def write_summary(self, trainer: L.Trainer) -> Path:
        return write_summary(self.summary_path(trainer), self.summary())
