"""ICDAR-2015-style IoU detection metric with summed counts, so DDP reduction stays exact.

Per image: don't-care GT are dropped from ``num_gt``; a detection covering more than
``dc_area_thresh`` of its own area with any single don't-care GT is dropped from ``num_det``
(as in the ICDAR15 ``script.py``); the rest are matched one-to-one, greedily by descending IoU,
at ``IoU > iou_thresh`` (strictly, as the script: an exact 0.5 is not a match). Only the three
counts are kept; ratios are taken in ``compute`` after the states were summed over images (and
ranks). Per-image scores are never averaged.

Difference from the official script: it matches in annotation order; descending-IoU greedy gives
the same result whenever a GT has a single candidate and does not depend on the order the boxes
come in. The GT geometries (shapely polygons, areas, bounds) come prepared and cached
(:mod:`ocr.metrics.prepared_gt`); detection quads are built in one vectorised shapely call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import torch
from shapely.geometry.base import BaseGeometry
from torchmetrics import Metric

from ocr.metrics.prepared_gt import GTCache, IoUGT, PreparedGT, geometries, to_geometry

__all__ = [
    "IoUDetectionMetric",
    "greedy_match",
    "image_counts",
    "pairwise_intersection",
    "prf",
    "to_geometry",
]


def pairwise_intersection(
    geoms_a: Sequence[BaseGeometry] | np.ndarray,
    geoms_b: Sequence[BaseGeometry] | np.ndarray,
    box_a: np.ndarray | None = None,
    box_b: np.ndarray | None = None,
) -> np.ndarray:
    """(len_a, len_b) intersection areas; only pairs whose bounding boxes overlap are computed.

    ``box_a``/``box_b``: the geometries' ``shapely.bounds`` when the caller has them.
    """
    out = np.zeros((len(geoms_a), len(geoms_b)), dtype=np.float64)
    if len(geoms_a) == 0 or len(geoms_b) == 0:
        return out
    arr_a = np.asarray(geoms_a, dtype=object)
    arr_b = np.asarray(geoms_b, dtype=object)
    box_a = shapely.bounds(arr_a) if box_a is None else box_a  # (n, 4) xmin, ymin, xmax, ymax; NaN for empty
    box_b = shapely.bounds(arr_b) if box_b is None else box_b
    with np.errstate(invalid="ignore"):
        overlap = (
            (box_a[:, None, 0] <= box_b[None, :, 2])
            & (box_b[None, :, 0] <= box_a[:, None, 2])
            & (box_a[:, None, 1] <= box_b[None, :, 3])
            & (box_b[None, :, 1] <= box_a[:, None, 3])
        )
    ia, ib = np.nonzero(overlap)
    if len(ia):
        out[ia, ib] = shapely.area(shapely.intersection(arr_a[ia], arr_b[ib]))
    return out


def greedy_match(iou: np.ndarray, thresh: float) -> list[tuple[int, int]]:
    """One-to-one matches (row, col) taken by descending IoU among pairs with ``iou > thresh``."""
    rows, cols = np.nonzero(iou > thresh)
    if len(rows) == 0:
        return []
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    matches: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        matches.append((r, c))
    return matches


def image_counts(
    pred_polys: Sequence[np.ndarray],
    gt_polys: Sequence[np.ndarray],
    gt_ignore: Sequence[bool] | None = None,
    iou_thresh: float = 0.5,
    dc_area_thresh: float = 0.5,
    gt: IoUGT | None = None,
) -> tuple[int, int, int]:
    """ICDAR15 counts ``(num_gt, num_det, num_matched)`` for one image (``gt``: prepared GT side)."""
    if gt is None:
        gt = PreparedGT.build(gt_polys, None, gt_ignore).iou()
    det_geoms = geometries(pred_polys)
    det_area = shapely.area(det_geoms) if len(det_geoms) else np.zeros(0)
    det_bounds = shapely.bounds(det_geoms) if len(det_geoms) else np.zeros((0, 4))
    det_care: np.ndarray = np.ones(len(det_geoms), dtype=bool)
    if len(gt.dc) and len(det_geoms):
        inter_dc = pairwise_intersection(gt.dc, det_geoms, gt.dc_bounds, det_bounds)  # (n_dc, n_det)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(det_area > 0, inter_dc / det_area, 0.0)
        det_care = np.logical_not((frac > dc_area_thresh).any(axis=0))

    n_care_det = int(det_care.sum())
    num_matched = 0
    if len(gt.care) and n_care_det:
        inter = pairwise_intersection(gt.care, det_geoms[det_care], gt.care_bounds, det_bounds[det_care])
        union = gt.care_area[:, None] + det_area[det_care][None, :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        num_matched = len(greedy_match(iou, iou_thresh))
    return len(gt.care), n_care_det, num_matched


def prf(
    num_matched: torch.Tensor,
    num_gt: torch.Tensor,
    num_det: torch.Tensor,
    det_matched: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Precision/recall/hmean (float64) from summed counts; 0 where a denominator is 0.

    ``det_matched``: the precision numerator where it is not ``num_matched`` (CLEval counts the
    matched characters of the GT and of the detections apart).
    """
    m, g, d = (t.to(torch.float64) for t in (num_matched, num_gt, num_det))
    m_det = m if det_matched is None else det_matched.to(torch.float64)
    precision = torch.where(d > 0, m_det / d.clamp(min=1), torch.zeros_like(m))
    recall = torch.where(g > 0, m / g.clamp(min=1), torch.zeros_like(m))
    denom = precision + recall
    hmean = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(m))
    return {"precision": precision, "recall": recall, "hmean": hmean}


class IoUDetectionMetric(Metric):
    """ICDAR15 IoU detection P/R/H over a whole epoch (and all ranks), from summed counts."""

    full_state_update: bool = False
    higher_is_better = True
    is_differentiable = False

    num_gt: torch.Tensor
    num_det: torch.Tensor
    num_matched: torch.Tensor
    num_images: torch.Tensor
    COUNTS = ("num_gt", "num_det", "num_matched", "num_images")

    def __init__(
        self, iou_thresh: float = 0.5, dc_area_thresh: float = 0.5, gt_cache_size: int = 4096, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.gt_cache = GTCache(gt_cache_size)
        self.iou_thresh = iou_thresh
        self.dc_area_thresh = dc_area_thresh
        for name in self.COUNTS:
            self.add_state(name, torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_ignore: Sequence[bool] | None = None,
        gt: PreparedGT | None = None,
    ) -> None:
        """Add one image's counts. Polygons are (N, 2) arrays in the same (original) pixel frame.

        ``gt``: the image's :class:`PreparedGT` when the caller has it; otherwise from the cache.
        """
        gt = self.gt_cache.resolve(gt, gt_polys, None, gt_ignore)
        n_gt, n_det, n_match = image_counts(
            pred_polys, gt_polys, gt_ignore, self.iou_thresh, self.dc_area_thresh, gt=gt.iou()
        )
        self.num_gt += n_gt
        self.num_det += n_det
        self.num_matched += n_match
        self.num_images += 1

    def compute(self) -> dict[str, torch.Tensor]:
        """Ratios of the (rank-summed) counts, plus the counts themselves."""
        out = prf(self.num_matched, self.num_gt, self.num_det)
        return out | {name: getattr(self, name).clone() for name in self.COUNTS}
