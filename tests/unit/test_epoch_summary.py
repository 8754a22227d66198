"""EpochSummaryCallback's line: metrics of the validation that ran in the epoch, or ``val -``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from ocr.callbacks.epoch_summary import EpochSummaryCallback


def _trainer(epoch: int, metrics: dict[str, float]) -> Any:
    return SimpleNamespace(
        current_epoch=epoch,
        max_epochs=3,
        callback_metrics={k: torch.tensor(v) for k, v in metrics.items()},
        sanity_checking=False,
        state=SimpleNamespace(fn="fit"),
        is_global_zero=True,
    )


def test_line_has_loss_cleval_iou_best_and_seconds_then_val_dash_when_no_validation() -> None:
    callback = EpochSummaryCallback()
    val = {"val/precision": 0.9, "val/recall": 0.8, "val/hmean": 0.847, "val/iou_hmean": 0.6}
    trainer = _trainer(0, val)
    callback.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    for loss in (3.0, 1.0, float("nan")):  # a non-finite step loss is left out of the mean
        callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(loss)}, None, 0)  # type: ignore[arg-type]
    callback.on_validation_start(trainer, None)  # type: ignore[arg-type]
    callback.on_validation_end(trainer, None)  # type: ignore[arg-type]
    callback.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    first = callback.lines[-1]
    assert first.startswith(
        "epoch 1/3  loss 2.000  CLEval P 0.900 R 0.800 H 0.847  IoU H 0.600  best H 0.847  "
    )
    assert first.endswith(" s)") and "(val " in first

    # Next epoch: no validation ran (check_val_every_n_epoch > 1); the stale metrics are not shown.
    trainer = _trainer(1, val)
    callback.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    callback.on_train_batch_end(trainer, None, torch.tensor(0.5), None, 0)  # type: ignore[arg-type]
    callback.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    second = callback.lines[-1]
    assert second.startswith("epoch 2/3  loss 0.500  val -  best H 0.847  ") and "(val" not in second
