"""Detection-only CLEval on top of the official ``cleval.torchmetric.CLEvalMetric`` (0.1.1).

Call convention (worked out from the cleval source, pinned by tests/unit/test_metrics.py):

* detections: (N, 8) float32 quads with ``det_letters=[""] * N``. ``None`` letters crash as soon
  as GT letters are given (``E2E`` switches on and joins the det letters), and GT letters are
  needed, so empty strings it is. The E2E numbers this produces are meaningless and not reported
  (the fast path below switches E2E off, so the ``e2e_*`` states simply stay 0).
* GT: (M, 8) quads with their real transcripts, because detection CLEval weighs every GT by its
  character count (pseudo-character centres are laid along the quad, one per letter).
* ``gt_is_dcs`` is always passed explicitly as ``ignore or text == "###"``: when given, cleval
  uses it *instead of* the ``"###"`` check (``Box.is_dc``), so passing the bare ignore flags would
  count a ``###`` line as three real characters.
* A non-ignored GT with an empty transcript would weigh 0 and could never be matched; it gets a
  placeholder of ``round(0.5 + long/short side)`` letters (cleval's own pseudo length for
  don't-care boxes, capped at 100 instead of 10, since receipt lines are long).
* Polygons with more than 4 points become ``cv2.minAreaRect`` quads (cleval's QUAD only takes 4
  corners; its POLY path is not used by the torchmetric). Quads keep their corners and are put
  clockwise from the top-left, which is the order CLEval's pseudo-character layout assumes.

All states of the base class are sums (``dist_reduce_fx="sum"``); ``compute`` takes the ratios
once, after summation over images and DDP ranks.

Speed: ``update`` does not call cleval's ``evaluation`` on the whole image. The GT side is
prepared once per distinct GT and cached (:mod:`ocr.metrics.prepared_gt`), the image is evaluated
per group of boxes that touch, and the per-box result objects cleval builds for dumping are never
made (:mod:`ocr.metrics.cleval_stats`). Every stat is a sum over boxes or matches, so the totals
are identical to one official ``CLEvalMetric.update`` call on the whole image
(``split_groups=False``, kept as the reference; tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from cleval.data import SampleResult
from cleval.torchmetric import CLEvalMetric

from ocr.metrics.cleval_stats import image_stats
from ocr.metrics.iou_metric import prf
from ocr.metrics.prepared_gt import GTCache, PreparedGT, dc_flags_and_letters
from ocr.perf.inject import injected
from ocr.postprocess.geometry import polygons_to_quads

__all__ = ["CLEvalDetectionMetric", "quads_array"]


def quads_array(polys: Sequence[np.ndarray]) -> np.ndarray:
    """List of (N, 2) polygons -> (len, 8) float32 quads, clockwise from top-left."""
    return polygons_to_quads(list(polys)).reshape(-1, 8)


class CLEvalDetectionMetric(CLEvalMetric):
    """Official CLEval (detection part only) with a polygon-level ``update`` for one image.

    ``split_groups=False`` feeds each image to cleval in one call (slower, same numbers).
    ``gt_cache_size``: how many distinct images' prepared GT to keep (0: prepare on every update).
    """

    det_num_char_gt: torch.Tensor
    det_num_char_det: torch.Tensor
    det_gran_score_recall: torch.Tensor
    det_num_char_tp_recall: torch.Tensor
    det_gran_score_precision: torch.Tensor
    det_num_char_tp_precision: torch.Tensor
    det_num_char_fp: torch.Tensor
    num_splitted: torch.Tensor
    num_merged: torch.Tensor

    def __init__(
        self,
        case_sensitive: bool = True,
        recall_gran_penalty: float = 1.0,
        precision_gran_penalty: float = 1.0,
        vertical_aspect_ratio_thresh: float = 0.5,
        ap_constraint: float = 0.3,
        split_groups: bool = True,
        gt_cache_size: int = 4096,
    ) -> None:
        super().__init__(
            case_sensitive=case_sensitive,
            recall_gran_penalty=recall_gran_penalty,
            precision_gran_penalty=precision_gran_penalty,
            vertical_aspect_ratio_thresh=vertical_aspect_ratio_thresh,
            ap_constraint=ap_constraint,
        )
        self.split_groups = split_groups
        self.gt_cache = GTCache(gt_cache_size)

    def update(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
        gt: PreparedGT | None = None,
    ) -> None:
        """Accumulate one image. Polygons are (N, 2) arrays in the same pixel frame.

        ``gt``: the image's :class:`PreparedGT` when the caller has it (``DetectionMetrics``
        shares one with the IoU metric); otherwise it comes from this metric's GT cache.
        """
        if not self.split_groups:
            self._update_official(pred_polys, gt_polys, gt_texts, gt_ignore)
            return
        gt = self.gt_cache.resolve(gt, gt_polys, gt_texts, gt_ignore)
        if len(gt) == 0 and len(pred_polys) == 0:
            return
        prepared = gt.cleval(self.options.VERTICAL_ASPECT_RATIO_THRESH, self.options.CASE_SENSITIVE)
        det_quads = quads_array(pred_polys)
        if injected("cleval"):  # the perf suite's injected 2x slowdown (ocr.perf.inject)
            image_stats(self.options, prepared, det_quads)
        stats = image_stats(self.options, prepared, det_quads)
        # name-mangled CLEvalMetric.__accumulate: the official state bookkeeping (cleval==0.1.1);
        # one accumulate per image, a few tensor ops instead of one set per group
        self._CLEvalMetric__accumulate(SampleResult(matches=[], gts=[], preds=[], stats=stats))

    def _update_official(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None,
        gt_ignore: Sequence[bool] | None,
    ) -> None:
        """Reference path: the official torchmetric update, one call for the whole image."""
        prepared = PreparedGT.build(gt_polys, gt_texts, gt_ignore)
        if len(prepared) == 0 and len(pred_polys) == 0:
            return
        gt_quads = quads_array(prepared.polygons)
        det_quads = quads_array(pred_polys)
        is_dc, letters = dc_flags_and_letters(prepared.texts, prepared.ignore, gt_quads)
        super().update(
            det_quads,
            gt_quads,
            det_letters=[""] * len(det_quads),
            gt_letters=letters,
            gt_is_dcs=is_dc,
        )

    def compute(self) -> dict[str, torch.Tensor]:
        """Detection recall/precision/hmean (float64), cleval's formula, on the summed states."""
        # cleval's formula: the granularity penalties come off the matched characters, per side
        rec_num = (self.det_num_char_tp_recall.double() - self.det_gran_score_recall.double()).clamp(min=0)
        prec_num = (self.det_num_char_tp_precision.double() - self.det_gran_score_precision.double()).clamp(
            min=0
        )
        ratios = prf(rec_num, self.det_num_char_gt, self.det_num_char_det, det_matched=prec_num)
        return {
            **ratios,
            "num_char_gt": self.det_num_char_gt.clone(),
            "num_char_det": self.det_num_char_det.clone(),
            "num_char_tp": self.det_num_char_tp_recall.clone(),
            "num_char_fp": self.det_num_char_fp.clone(),
            "num_splitted": self.num_splitted.clone(),
            "num_merged": self.num_merged.clone(),
        }
