"""``EpochSummaryCallback``: one line per epoch a person can follow while a run trains.

Each training epoch ends with::

    epoch 3/12  loss 2.314  CLEval P 0.842 R 0.801 H 0.821  IoU H 0.655  best H 0.821  31.2 s (val 4.0 s)

The loss is the mean training loss of the epoch's steps; P/R/H are the validation CLEval
precision, recall and hmean and ``IoU H`` the IoU@0.5 hmean of the validation that ran in this
epoch (``val -`` when none did, e.g. ``check_val_every_n_epoch`` > 1). Seconds are wall time from
the epoch's first batch request to its end, validation included. Printed by DDP rank 0 only,
through the ``ocr`` logger (so it goes wherever the run's logging goes, never to the last stdout
line, which ``ocr train`` keeps for its JSON summary).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L

log = logging.getLogger(__name__)


class EpochSummaryCallback(L.Callback):
    """Log one summary line at the end of every training epoch (rank 0)."""

    def __init__(self, metric_prefix: str = "val") -> None:
        self.metric_prefix = metric_prefix
        self.lines: list[str] = []
        self.best_hmean: float | None = None
        self._epoch_start = 0.0
        self._val_start = 0.0
        self._val_seconds = 0.0
        self._val_ran = False
        self._loss_sum = 0.0
        self._loss_steps = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._val_seconds = 0.0
        self._val_ran = False
        self._loss_sum, self._loss_steps = 0.0, 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            value = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
            if math.isfinite(value):
                self._loss_sum += value
                self._loss_steps += 1

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._val_seconds += time.perf_counter() - self._val_start
            self._val_ran = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._epoch_start
        line = self.format_line(trainer, seconds)
        self.lines.append(line)
        if trainer.is_global_zero:
            log.info("%s", line)

    def format_line(self, trainer: L.Trainer, seconds: float) -> str:
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        parts = [f"epoch {trainer.current_epoch + 1}/{epochs}"]
        parts.append(f"loss {self._loss_sum / self._loss_steps:.3f}" if self._loss_steps else "loss -")
        metrics = trainer.callback_metrics
        p = self.metric_prefix

        def value(name: str) -> float | None:
            found = metrics.get(f"{p}/{name}")
            return None if found is None else float(found)

        hmean = value("hmean")
        if self._val_ran and hmean is not None:
            precision, recall, iou = value("precision"), value("recall"), value("iou_hmean")
            parts.append(f"CLEval P {_fmt(precision)} R {_fmt(recall)} H {hmean:.3f}")
            parts.append(f"IoU H {_fmt(iou)}")
            self.best_hmean = hmean if self.best_hmean is None else max(self.best_hmean, hmean)
        else:
            parts.append("val -")
        if self.best_hmean is not None:
            parts.append(f"best H {self.best_hmean:.3f}")
        timing = f"{seconds:.1f} s"
        if self._val_ran:
            timing += f" (val {self._val_seconds:.1f} s)"
        parts.append(timing)
        return "  ".join(parts)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


__all__ = ["EpochSummaryCallback"]
