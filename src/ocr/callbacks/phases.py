"""Lightning's per-phase hooks, routed to three methods: one home for the hook names.

Both our callbacks need "an epoch of phase P starts / a batch arrives / it ends" for training,
validation, test and predict. :class:`PhaseCallback` maps the dozen Lightning hooks onto
:meth:`phase_start`, :meth:`phase_batch` and :meth:`phase_end` so each callback states what it
does, not which hook names exist. Sanity-check validation never reaches them. A validation epoch
ends at ``on_validation_end``, after the LightningModule's own ``on_validation_epoch_end`` (where
the metric is computed), which runs after the callbacks' epoch-end hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch.distributed as dist


def gather_objects(trainer: L.Trainer, obj: Any) -> list[Any]:
    """``obj`` of every DDP rank, in rank order (every rank must call it at the same point);
    ``[obj]`` without DDP."""
    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return [obj]
    parts: list[Any] = [None] * trainer.world_size
    dist.all_gather_object(parts, obj)
    return parts


def _epoch_hook(phase: str, end: bool) -> Callable[..., None]:
    def hook(self: PhaseCallback, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            (self.phase_end if end else self.phase_start)(trainer, phase)

    return hook


def _batch_hook(phase: str) -> Callable[..., None]:
    # One signature for the four: the training hook gets no ``dataloader_idx``.
    def hook(
        self: PhaseCallback,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._route(trainer):
            self.phase_batch(trainer, phase, batch)

    return hook


class PhaseCallback(L.Callback):
    def phase_active(self, trainer: L.Trainer) -> bool:
        """False turns every routed hook into an immediate return."""
        return True

    def phase_start(self, trainer: L.Trainer, phase: str) -> None:
        """An epoch of ``phase`` starts."""

    def phase_batch(self, trainer: L.Trainer, phase: str, batch: Any) -> None:
        """A batch of ``phase`` arrived (after the host-to-device copy)."""

    def phase_end(self, trainer: L.Trainer, phase: str) -> None:
        """The epoch of ``phase`` ended; every DDP rank calls this at the same point."""

    def _route(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and self.phase_active(trainer)

    # The hooks differ only by their phase; the epoch ends of validation, test and predict are
    # their ``on_*_end`` hooks (see the module doc).
    on_train_epoch_start = _epoch_hook("train", end=False)
    on_validation_epoch_start = _epoch_hook("validate", end=False)
    on_test_epoch_start = _epoch_hook("test", end=False)
    on_predict_epoch_start = _epoch_hook("predict", end=False)

    on_train_batch_start = _batch_hook("train")
    on_validation_batch_start = _batch_hook("validate")
    on_test_batch_start = _batch_hook("test")
    on_predict_batch_start = _batch_hook("predict")

    on_train_epoch_end = _epoch_hook("train", end=True)
    on_validation_end = _epoch_hook("validate", end=True)
    on_test_end = _epoch_hook("test", end=True)
    on_predict_end = _epoch_hook("predict", end=True)
