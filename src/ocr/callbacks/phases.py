"""Lightning's per-phase hooks, routed to three methods: one home for the hook names.

Both our callbacks need "an epoch of phase P starts / a batch arrives / it ends" for training,
validation, test and predict. :class:`PhaseCallback` maps the dozen Lightning hooks onto
:meth:`phase_start`, :meth:`phase_batch` and :meth:`phase_end` so each callback states what it
does, not which hook names exist. Sanity-check validation never reaches them. A validation epoch
ends at ``on_validation_end``, after the LightningModule's own ``on_validation_epoch_end`` (where
the metric is computed), which runs after the callbacks' epoch-end hooks.
"""

from __future__ import annotations

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

    # -- starts -------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_start(trainer, "train")

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_start(trainer, "validate")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_start(trainer, "test")

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_start(trainer, "predict")

    # -- batches ------------------------------------------------------------------------------
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._route(trainer):
            self.phase_batch(trainer, "train", batch)

    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._route(trainer):
            self.phase_batch(trainer, "validate", batch)

    def on_test_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._route(trainer):
            self.phase_batch(trainer, "test", batch)

    def on_predict_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._route(trainer):
            self.phase_batch(trainer, "predict", batch)

    # -- ends -----------------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_end(trainer, "train")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_end(trainer, "validate")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_end(trainer, "test")

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._route(trainer):
            self.phase_end(trainer, "predict")
