"""One object for the validation loop: CLEval (detection) + ICDAR15 IoU, updated per image.

Both children are torchmetrics with summed states, so under DDP each ``compute`` all-reduces the
counts first and takes the ratios once. Call ``update`` per image in ``validation_step`` and
``compute`` + ``reset`` once in ``on_validation_epoch_end`` on every rank.

The GT side of an image is prepared once and shared by both metrics, through a cache keyed by the
GT's content (:class:`~ocr.metrics.prepared_gt.GTCache`): from the second epoch on, an update
only does the detection side. The cache survives ``reset`` (the GT does not change between epochs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ocr.metrics.cleval_metric import CLEvalDetectionMetric
from ocr.metrics.iou_metric import IoUDetectionMetric
from ocr.metrics.prepared_gt import GTCache, PreparedGT


class DetectionMetrics(nn.Module):
    """CLEval detection P/R/H (main numbers) plus IoU@0.5 P/R/H and raw counters."""

    def __init__(
        self, iou_thresh: float = 0.5, cleval_split_groups: bool = True, gt_cache_size: int = 4096
    ) -> None:
        super().__init__()
        # The children's own caches stay empty: this object hands them one shared PreparedGT.
        self.cleval = CLEvalDetectionMetric(split_groups=cleval_split_groups, gt_cache_size=0)
        self.iou = IoUDetectionMetric(iou_thresh=iou_thresh, gt_cache_size=0)
        self.gt_cache = GTCache(gt_cache_size)

    def update(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
        gt: PreparedGT | None = None,
    ) -> None:
        """Add one image: predicted and GT (N, 2) polygons in original-image pixels.

        ``gt``: the image's prepared GT (:meth:`prepare_gt`) when the caller keeps it; by default
        it comes from this object's content-keyed cache.
        """
        gt = self.gt_cache.resolve(gt, gt_polys, gt_texts, gt_ignore)
        self.cleval.update(pred_polys, gt_polys, gt_texts, gt_ignore, gt=gt)
        self.iou.update(pred_polys, gt_polys, gt_ignore, gt=gt)

    @staticmethod
    def prepare_gt(
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
    ) -> PreparedGT:
        """One image's GT, prepared for :meth:`update` (its metric parts are built on first use)."""
        return PreparedGT.build(gt_polys, gt_texts, gt_ignore)

    def compute(self) -> dict[str, torch.Tensor]:
        """Scalar tensors: ``precision/recall/hmean`` (CLEval), ``iou_*`` and counters.

        Every value comes out of a child's ``compute``, i.e. from DDP-synced states; reading the
        states directly here would give this rank's share only.
        """
        out = dict(self.cleval.compute())
        for key, value in self.iou.compute().items():
            out[key if key.startswith("num_") else f"iou_{key}"] = value
        return out

    def merge_state(self, other: DetectionMetrics) -> None:
        """Add another instance's counts (e.g. a second dataloader or a shard), like a DDP sum."""
        for mine, theirs in ((self.cleval, other.cleval), (self.iou, other.iou)):
            mine.merge_state(theirs)
            # torchmetrics' merge_state keeps a cached compute() result; drop it.
            mine._computed = None

    def reset(self) -> None:
        self.cleval.reset()
        self.iou.reset()
