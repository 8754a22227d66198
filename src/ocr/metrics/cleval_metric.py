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

Speed: cleval compares every GT with every detection in Python. Boxes whose bounding boxes do not
touch cannot interact (area precision, pseudo-character inclusion, don't-care subtraction and all
matching rules only look at overlapping pairs), so ``update`` runs cleval's own ``evaluation`` on
each connected group of mutually overlapping boxes, sums the groups' stats on the host and adds
them to the states once per image. Every stat is a sum over boxes or matches, so the totals are
identical to one ``CLEvalMetric.update`` call on the whole image (``split_groups=False``; tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from cleval.box_types import QUAD
from cleval.data import SampleResult, Stats, accumulate_stats
from cleval.eval_functions import evaluation
from cleval.torchmetric import CLEvalMetric

from ocr.postprocess.geometry import polygon_to_quad

DC_TEXT = "###"
MAX_PLACEHOLDER_CHARS = 100


def quads_array(polys: Sequence[np.ndarray]) -> np.ndarray:
    """List of (N, 2) polygons -> (len, 8) float32 quads, clockwise from top-left."""
    if len(polys) == 0:
        return np.zeros((0, 8), dtype=np.float32)
    return np.stack([polygon_to_quad(p).reshape(8) for p in polys]).astype(np.float32)


def placeholder_length(quad: np.ndarray) -> int:
    """Pseudo character count of a text quad: its long/short side ratio, as cleval does for DC boxes."""
    q = quad.reshape(4, 2).astype(np.float64)
    horiz = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    vert = (np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[3] - q[0])) / 2
    ratio = (max(horiz, vert) + 1e-5) / (min(horiz, vert) + 1e-5)
    return int(min(max(round(0.5 + ratio), 1), MAX_PLACEHOLDER_CHARS))


def overlap_groups(boxes: np.ndarray) -> list[np.ndarray]:
    """Connected components of boxes (K, 4: xmin, ymin, xmax, ymax) whose rectangles touch."""
    k = len(boxes)
    if k == 0:
        return []
    touch = (
        (boxes[:, None, 0] <= boxes[None, :, 2] + 1)
        & (boxes[None, :, 0] <= boxes[:, None, 2] + 1)
        & (boxes[:, None, 1] <= boxes[None, :, 3] + 1)
        & (boxes[None, :, 1] <= boxes[:, None, 3] + 1)
    )
    label = np.full(k, -1, dtype=np.int64)
    n_groups = 0
    for seed in range(k):
        if label[seed] >= 0:
            continue
        label[seed] = n_groups
        stack = [seed]
        while stack:
            i = stack.pop()
            for j in np.nonzero(touch[i] & (label < 0))[0]:
                label[j] = n_groups
                stack.append(int(j))
        n_groups += 1
    return [np.nonzero(label == g)[0] for g in range(n_groups)]


class CLEvalDetectionMetric(CLEvalMetric):
    """Official CLEval (detection part only) with a polygon-level ``update`` for one image.

    ``split_groups=False`` feeds each image to cleval in one call (slower, same numbers).
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
    ) -> None:
        super().__init__(
            case_sensitive=case_sensitive,
            recall_gran_penalty=recall_gran_penalty,
            precision_gran_penalty=precision_gran_penalty,
            vertical_aspect_ratio_thresh=vertical_aspect_ratio_thresh,
            ap_constraint=ap_constraint,
        )
        self.split_groups = split_groups

    def update(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
    ) -> None:
        """Accumulate one image. Polygons are (N, 2) arrays in the same pixel frame."""
        n_gt = len(gt_polys)
        texts = [""] * n_gt if gt_texts is None else [str(t) for t in gt_texts]
        ignore = [False] * n_gt if gt_ignore is None else [bool(v) for v in gt_ignore]
        if not (len(texts) == len(ignore) == n_gt):
            raise ValueError(f"{n_gt} GT polygons, {len(texts)} texts, {len(ignore)} ignore flags")

        gt_quads = quads_array(gt_polys)
        det_quads = quads_array(pred_polys)
        is_dc = [ig or t == DC_TEXT for t, ig in zip(texts, ignore, strict=True)]
        letters = [
            t if (dc or t) else "x" * placeholder_length(q)
            for t, dc, q in zip(texts, is_dc, gt_quads, strict=True)
        ]
        if n_gt == 0 and len(det_quads) == 0:
            return

        if not self.split_groups:
            # Reference path: the official torchmetric update, one call for the whole image.
            super().update(
                det_quads,
                gt_quads,
                det_letters=[""] * len(det_quads),
                gt_letters=letters,
                gt_is_dcs=is_dc,
            )
            return

        # Fast path: the official ``evaluation`` per overlap group (E2E off: it only fills the
        # e2e stats, which are not reported), summed on the host, then ONE accumulate into the
        # states -- a few tensor ops per image instead of per group, which matters on GPU.
        self.options.E2E = False
        total = Stats()
        all_quads = np.concatenate([gt_quads, det_quads]).reshape(-1, 4, 2)
        boxes = np.concatenate([np.floor(all_quads.min(axis=1)), np.ceil(all_quads.max(axis=1))], axis=1)
        for group in overlap_groups(boxes):
            gt_boxes = [
                QUAD(gt_quads[i], confidence=0.0, transcription=letters[i], is_dc=is_dc[i])
                for i in group[group < n_gt]
            ]
            det_boxes = [
                QUAD(det_quads[j], confidence=0.0, transcription="") for j in group[group >= n_gt] - n_gt
            ]
            result = evaluation(self.options, gt_boxes, det_boxes, scale_range=self.scale_range)
            accumulate_stats(total, result.stats, is_e2e=False)
        # name-mangled CLEvalMetric.__accumulate: the official state bookkeeping (cleval==0.1.1)
        self._CLEvalMetric__accumulate(SampleResult(matches=[], gts=[], preds=[], stats=total))

    def compute(self) -> dict[str, torch.Tensor]:
        """Detection recall/precision/hmean, cleval's formula, on the summed states."""
        gt = self.det_num_char_gt.double()
        det = self.det_num_char_det.double()
        rec_num = (self.det_num_char_tp_recall.double() - self.det_gran_score_recall.double()).clamp(min=0)
        prec_num = (self.det_num_char_tp_precision.double() - self.det_gran_score_precision.double()).clamp(
            min=0
        )
        zero = torch.zeros((), dtype=torch.float64, device=gt.device)
        recall = torch.where(gt > 0, rec_num / gt.clamp(min=1), zero)
        precision = torch.where(det > 0, prec_num / det.clamp(min=1), zero)
        denom = recall + precision
        hmean = torch.where(denom > 0, 2 * recall * precision / denom.clamp(min=1e-12), zero)
        return {
            "precision": precision.float(),
            "recall": recall.float(),
            "hmean": hmean.float(),
            "num_char_gt": self.det_num_char_gt.clone(),
            "num_char_det": self.det_num_char_det.clone(),
            "num_char_tp": self.det_num_char_tp_recall.clone(),
            "num_char_fp": self.det_num_char_fp.clone(),
            "num_splitted": self.num_splitted.clone(),
            "num_merged": self.num_merged.clone(),
        }
