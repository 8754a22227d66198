"""LightningModule: training step, validation with post-processing and metrics, prediction.

The metric is updated per image and computed once per validation epoch; torchmetrics' sum states
make the DDP reduction "sum the counts, then take the ratio".

With ``evaluator.workers > 0`` the evaluation steps only run the forward pass and hand the encoded
probability maps to an :class:`~ocr.evaluation.EvaluatorPool`, which post-processes and updates
its own metric states; at epoch end the pool is drained and its summed states are added into
``val_metrics``/``test_metrics`` before ``compute()`` (see ``docs/evaluation.md``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch

from ocr.data.sample import Batch
from ocr.evaluation.config import EvaluatorConfig, default_workers
from ocr.evaluation.handoff import encode_maps, resolve_handoff
from ocr.evaluation.pool import EvaluatorPool, PoolReport
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
        evaluator: dict[str, Any] | None = None,
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
        self.evaluator_config = EvaluatorConfig(**(evaluator or {}))
        self.evaluator_pool: EvaluatorPool | None = None
        # The last evaluation epoch's pool figures, read by PerformanceProfilerCallback.
        self.evaluator_stats: dict[str, Any] | None = None
        self._handoff = "float32"
        self._pool_pending = False  # the pool holds this epoch's states, not yet merged

    def configure_postprocess(self, **overrides: Any) -> None:
        """Change post-processing thresholds at evaluation time (they are not learned)."""
        if overrides:
            params = {**dict(self.hparams.get("postprocess") or {}), **overrides}
            self.postprocessor = DBPostProcessor(**params)

    def configure_evaluator(self, **overrides: Any) -> None:
        """Change the evaluator pool settings (e.g. ``workers``) before a run; not a model property."""
        if overrides:
            self.evaluator_config = EvaluatorConfig(**{**vars(self.evaluator_config), **overrides})
            self._close_pool()

    def evaluator_workers(self) -> int:
        """Evaluator processes for this rank (``workers: null`` resolved from the node's cores)."""
        workers = self.evaluator_config.workers
        if workers is not None:
            return workers
        # without a trainer (getattr of None): no DataLoader workers, one rank
        loader = getattr(getattr(self._trainer, "datamodule", None), "loader", None)
        loader_workers = int(getattr(loader, "num_workers", 0) or 0)
        return default_workers(loader_workers, int(getattr(self._trainer, "num_devices", 1) or 1))

    def copy_thread(self) -> bool:
        """Whether the hand-off copies run behind the next forward pass (``evaluator.copy_thread``)."""
        choice = self.evaluator_config.copy_thread
        return self._forward_leaves_cpu_idle() if choice is None else choice

    def _forward_leaves_cpu_idle(self) -> bool:
        """The default of ``copy_thread``: on CUDA the main thread waits for the device."""
        return self.device.type == "cuda"

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move the batch's top-level tensors; the per-sample lists (polygons, metas, perf) stay on
        the host. Nothing on the device reads them (post-processing, the metrics and the hand-off
        to the evaluators work on host arrays), and Lightning's default walks every polygon of
        every meta looking for tensors: a sixth of a validation step's main-process time at
        batch size 1 (``docs/evaluation.md``)."""
        if not isinstance(batch, dict):
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        moved = dict(batch)
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                moved[key] = value.to(device, non_blocking=True)
        return moved

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
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
    def _eval_outputs(self, batch: Batch, prefix: str) -> dict[str, torch.Tensor]:
        """The forward pass of an evaluation step (plus the loss, when the batch has targets)."""
        # Inference needs only the probability branch; the threshold branch is training-only (DB paper).
        outputs = self.model(batch["images"], with_thresh=False)
        if "prob_maps" in batch:
            n = batch["images"].shape[0]
            losses = self.criterion(outputs, batch)
            self.log(f"{prefix}/loss_prob", losses["loss_prob"], batch_size=n, on_epoch=True, sync_dist=True)
        return outputs

    def _evaluate(self, batch: Batch, metrics: DetectionMetrics, prefix: str, batch_idx: int = -1) -> None:
        n = batch["images"].shape[0]
        if n == 0:
            return
        prob = self._eval_outputs(batch, prefix)["prob"].squeeze(1)
        metas, pool = batch["meta"], self.evaluator_pool
        # Without a pool this process evaluates every image; with one, its share of the last batch.
        own = n if pool is None else self._own_share(batch_idx, n, pool.workers)
        if own < n:  # the evaluators get the rest first, then this process takes its share
            self._submit(prob[own:], metas[own:])
        if own:
            if pool is not None:  # the evaluators start on theirs before this process takes the GIL
                pool.wait_background()
            self._evaluate_here(prob[:own], metas[:own], metrics)

    def _own_share(self, batch_idx: int, n: int, workers: int) -> int:
        """How many images of this batch the main process evaluates itself.

        On the epoch's last batch its share (one in ``workers + 1``), which it evaluates while the
        evaluators work on the rest, instead of waiting idle for them in the epoch-end drain. The
        states add up the same (every state is a count or an integer-valued sum). Otherwise 0.
        """
        trainer = self._trainer
        if trainer is None or batch_idx < 0:
            return 0
        if trainer.sanity_checking:
            totals = trainer.num_sanity_val_batches
        elif trainer.testing:
            totals = trainer.num_test_batches
        else:
            totals = trainer.num_val_batches
        if len(totals) != 1 or batch_idx + 1 != totals[0]:
            return 0
        return n // (workers + 1)

    def _submit(self, prob: torch.Tensor, metas: list[dict[str, Any]]) -> None:
        pool = self.evaluator_pool
        assert pool is not None
        encoded = encode_maps(prob, self._handoff, self.postprocessor.thresh)
        if encoded.is_cuda:
            # the forward pass's GPU time ends here, inside the step: it is billed to compute
            torch.cuda.current_stream(encoded.device).synchronize()
        # timed inside: "handoff" (the copies, or their enqueue to the hand-off thread) and
        # "eval_wait" (all slots in flight, or the thread a batch behind)
        if self.copy_thread():
            pool.submit_in_background(encoded, metas, timer=self.stage_timer)
        else:
            pool.submit(encoded, metas, timer=self.stage_timer)

    def _evaluate_here(
        self, prob: torch.Tensor, metas: list[dict[str, Any]], metrics: DetectionMetrics
    ) -> None:
        """Post-process and update ``metrics`` in this process: the reference path."""
        # The device-to-host copy waits for the forward pass: it stays in the step (compute).
        prob_np = prob.float().cpu().numpy()
        with self.stage_timer("postprocess"):
            predictions = self.postprocessor.batch(prob_np, metas)
        with self.stage_timer("metric_update"):
            for (polygons, _scores), meta in zip(predictions, metas, strict=True):
                metrics.update(polygons, meta["gt_polygons"], meta["gt_texts"], meta["gt_ignore"])

    def _begin_evaluation(self, metrics: DetectionMetrics) -> None:
        """Start (once per fit/validate/test) or re-arm the pool for an evaluation epoch."""
        self.evaluator_stats = None
        workers = self.evaluator_workers()
        if workers == 0:
            self._close_pool()
            return
        pool = self._pool_for_run()
        self._handoff = resolve_handoff(self.evaluator_config.handoff, self.device)
        params = {"iou_thresh": metrics.iou.iou_thresh, "cleval_split_groups": metrics.cleval.split_groups}
        pool.begin("metrics", self.postprocessor, params, self._handoff)
        self._pool_pending = True

    def _merge_pool(self, metrics: DetectionMetrics) -> None:
        """Drain the pool and add its summed states into this rank's torchmetrics states."""
        pool = self.evaluator_pool
        if pool is None or not self._pool_pending:
            return
        self._pool_pending = False
        start = time.perf_counter()
        with self.stage_timer("eval_drain"):
            pool.drain()
        drain_s = time.perf_counter() - start
        report = pool.collect()
        add_states(metrics, report)
        self.evaluator_stats = {
            "workers": report.workers,
            "handoff": self._handoff,
            "images": report.images,
            "wall_s": report.wall_s,
            "busy_s": report.busy_s,
            "busy_share": report.busy_share,
            "drain_s": drain_s,
            "slot_wait_s": report.slot_wait_s,
            "stages": dict(report.stages),
        }

    def _close_pool(self) -> None:
        if self.evaluator_pool is not None:
            self.evaluator_pool.close()
            self.evaluator_pool = None

    def setup(self, stage: str) -> None:
        # The pool starts once per fit (or validate/test), before the first epoch's clock starts.
        if stage in ("fit", "validate", "test") and self.evaluator_workers() > 0:
            self._pool_for_run()

    def configure_callbacks(self) -> list[L.Callback]:
        return [_ClosePoolOnException()]

    def _pool_for_run(self) -> EvaluatorPool:
        if self.evaluator_pool is None or not self.evaluator_pool.running:
            cfg = self.evaluator_config
            pool = EvaluatorPool(self.evaluator_workers(), slots=cfg.slots, timeout_s=cfg.timeout_s)
            self.evaluator_pool = pool.start()
        return self.evaluator_pool

    def on_validation_epoch_start(self) -> None:
        self._begin_evaluation(self.val_metrics)

    def on_test_epoch_start(self) -> None:
        self._begin_evaluation(self.test_metrics)

    def teardown(self, stage: str) -> None:
        self._close_pool()

    def _log_metrics(self, metrics: DetectionMetrics, prefix: str) -> dict[str, float]:
        self._merge_pool(metrics)
        with self.stage_timer("metric_compute"):
            values = metrics.compute()
        metrics.reset()
        scalars = {f"{prefix}/{k}": float(v) for k, v in values.items()}
        # Already reduced across ranks by torchmetrics (sum of counts): no second sync here.
        self.log_dict(scalars, prog_bar=False, sync_dist=False, rank_zero_only=False)
        return scalars

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val", batch_idx)

    def on_validation_epoch_end(self) -> None:
        self.last_val_metrics = self._log_metrics(self.val_metrics, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test", batch_idx)

    def on_test_epoch_end(self) -> None:
        self.last_test_metrics = self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        if batch["images"].shape[0] == 0:  # every image of the batch was skipped as unreadable
            return []
        outputs = self.model(batch["images"], with_thresh=False)
        with self.stage_timer("postprocess"):
            detections = self.postprocessor.batch(outputs["prob"], batch["meta"])
        return [
            {"name": meta["name"], "polygons": polygons, "scores": scores, "meta": meta}
            for meta, (polygons, scores) in zip(batch["meta"], detections, strict=True)
        ]

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


class _ClosePoolOnException(L.Callback):
    """LightningModule hooks get no ``on_exception``: stop the evaluators when a run fails."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exc: BaseException) -> None:
        if isinstance(pl_module, DBNetModule):  # the only module that registers this callback
            pl_module._close_pool()


def add_states(metrics: DetectionMetrics, report: PoolReport) -> None:
    """Add a pool's summed states into ``metrics`` (in place, on the states' own device)."""
    for child_name, values in report.states.items():
        child = getattr(metrics, child_name)
        for name, value in values.items():
            state = getattr(child, name)
            state.add_(torch.as_tensor(value, dtype=state.dtype, device=state.device))
        child._update_count += report.images
        child._computed = None


__all__ = ["DBNetModule", "add_states"]
