"""LightningModule: training step, validation with post-processing and metrics, prediction.

The metric is updated per image and computed once per validation epoch; torchmetrics' sum states
make the DDP reduction "sum the counts, then take the ratio".
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from ocr.metrics.detection import DetectionMetrics
from ocr.models.dbnet import DBNet
from ocr.models.loss import DBLoss
from ocr.perf.stage_timer import NullStageTimer, StageTimer
from ocr.postprocess.db_postprocess import DBPostProcessor


class DBNetModule(L.LightningModule):
    def __init__(
        self,
        net: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        postprocess: dict[str, Any] | None = None,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = DBNet(**(net or {}))
        self.criterion = DBLoss(**(loss or {}))
        self.postprocessor = DBPostProcessor(**(postprocess or {}))
        self.optimizer_config = {"lr": 1e-3, "weight_decay": 1e-4, **(optimizer or {})}
        self.scheduler_config = {"warmup_steps": 0, "min_lr_ratio": 0.01, **(scheduler or {})}
        self.val_metrics = DetectionMetrics()
        self.test_metrics = DetectionMetrics()
        self.stage_timer: StageTimer = NullStageTimer()

    def configure_postprocess(self, **overrides: Any) -> None:
        """Change post-processing thresholds at evaluation time (they are not learned)."""
        if overrides:
            params = {**dict(self.hparams.get("postprocess") or {}), **overrides}
            self.postprocessor = DBPostProcessor(**params)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        n = batch["images"].shape[0]
        if n == 0:
            # Every sample of the batch was skipped as unusable (counted by DataQualityCallback).
            # None skips the step; under DDP every rank must still all-reduce gradients, so those
            # ranks get a zero loss that touches every parameter instead.
            if self.trainer.world_size > 1:
                return torch.stack([p.sum() for p in self.parameters() if p.requires_grad]).sum() * 0.0
            return None
        outputs = self.model(batch["images"], with_thresh=True)
        losses = self.criterion(outputs, batch)
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in losses.items()},
            batch_size=n,
            on_step=True,
            on_epoch=True,
            prog_bar=False,
        )
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, batch_size=n, on_step=True, on_epoch=False)
        return losses["loss"]

    # -- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, batch: dict[str, Any], metrics: DetectionMetrics, prefix: str) -> None:
        n = batch["images"].shape[0]
        if n == 0:
            return
        # Inference needs only the probability branch; the threshold branch is training-only (DB paper).
        outputs = self.model(batch["images"], with_thresh=False)
        if "prob_maps" in batch:
            losses = self.criterion(outputs, batch)
            self.log(f"{prefix}/loss_prob", losses["loss_prob"], batch_size=n, on_epoch=True, sync_dist=True)
        with self.stage_timer("postprocess"):
            prob = outputs["prob"].squeeze(1).float().cpu().numpy()
            predictions = [self.postprocessor(prob[i], meta) for i, meta in enumerate(batch["meta"])]
        with self.stage_timer("metric_update"):
            for (polygons, _scores), meta in zip(predictions, batch["meta"], strict=True):
                metrics.update(polygons, meta["gt_polygons"], meta["gt_texts"], meta["gt_ignore"])

    def _log_metrics(self, metrics: DetectionMetrics, prefix: str) -> dict[str, float]:
        with self.stage_timer("metric_compute"):
            values = metrics.compute()
        metrics.reset()
        scalars = {f"{prefix}/{k}": float(v) for k, v in values.items()}
        # Already reduced across ranks by torchmetrics (sum of counts): no second sync here.
        self.log_dict(scalars, prog_bar=False, sync_dist=False, rank_zero_only=False)
        return scalars

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        self.last_val_metrics = self._log_metrics(self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self.last_test_metrics = self._log_metrics(self.test_metrics, "test")

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> list[dict[str, Any]]:
        if batch["images"].shape[0] == 0:  # every image of the batch was skipped as unreadable
            return []
        outputs = self.model(batch["images"], with_thresh=False)
        with self.stage_timer("postprocess"):
            prob = outputs["prob"].squeeze(1).float().cpu().numpy()
            results = []
            for i, meta in enumerate(batch["meta"]):
                polygons, scores = self.postprocessor(prob[i], meta)
                results.append({"name": meta["name"], "polygons": polygons, "scores": scores, "meta": meta})
        return results

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.optimizer_config
        optimizer = torch.optim.AdamW(self.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.scheduler_config["warmup_steps"])
        floor = float(self.scheduler_config["min_lr_ratio"])

        def factor(step: int) -> float:
            if warmup and step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


__all__ = ["DBNetModule"]
