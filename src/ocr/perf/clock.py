"""The profiler's clock: which Lightning action is which stage, and the per-epoch record it fills.

Lightning already wraps the DataLoader fetch, ``batch_to_device`` and the training batch in
``trainer.profiler`` actions; the tap (:mod:`ocr.callbacks.profiler_tap`) forwards them here.
Only the outermost named action is timed at any moment, so nested actions are never counted
twice. Stages the model marks itself (post-processing, metric update) come through
:meth:`StageClock.__call__` and are subtracted from the enclosing action, so that "compute"
means forward (+ loss). ``time.perf_counter`` everywhere; CUDA is synchronised only on one
batch in ``sync_every``, to keep the overhead small.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch

# Stages that run on the device and need a synchronisation to be timed honestly on CUDA.
_DEVICE_STAGES = frozenset({"h2d", "compute"})
_STEP_HOOKS = {
    "validation_step": "compute",
    "test_step": "compute",
    "predict_step": "compute",
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
class EpochRecord:
    """What one rank measured in one phase's epoch (durations in seconds, per call)."""

    phase: str
    epoch: int
    start: float
    excluded: float = 0.0  # nested epochs (validation inside training): not this epoch's time
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    worker: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    worker_pids: set[int] = field(default_factory=set)
    samples: int = 0
    batches: int = 0


class InnerStage:
    """Context manager for a stage the model marks itself; cheap enough for every batch."""

    __slots__ = ("clock", "stage", "t0")

    def __init__(self, clock: StageClock, stage: str) -> None:
        self.clock, self.stage, self.t0 = clock, stage, 0.0

    def __enter__(self) -> InnerStage:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.clock.record_inner(self.stage, time.perf_counter() - self.t0)


class StageClock:
    """Times the outermost named action at any moment, and the inner stages the model marks."""

    def __init__(self, own_key: str, sync_every: int) -> None:
        self.own_key = own_key
        self.sync_every = max(1, sync_every)
        self.cuda = torch.cuda.is_available()
        self.record: EpochRecord | None = None
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

    def __call__(self, stage: str) -> InnerStage:
        return InnerStage(self, stage)
