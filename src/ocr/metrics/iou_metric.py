"""ICDAR-2015-style IoU detection metric with summed counts, so DDP reduction stays exact.

Per image: don't-care GT are dropped from ``num_gt``; a detection covering more than
``dc_area_thresh`` of its own area with any single don't-care GT is dropped from ``num_det``
(as in the ICDAR15 ``script.py``); the rest are matched one-to-one, greedily by descending IoU,
at ``IoU >= iou_thresh``. Only the three counts are kept; ratios are taken in ``compute`` after
the states were summed over images (and ranks). Per-image scores are never averaged.

Difference from the official script: it matches in annotation order and with ``IoU > 0.5``;
descending-IoU greedy gives the same result whenever a GT has a single candidate and does not
depend on the order the boxes come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import torch
from shapely.geometry.base import BaseGeometry
from torchmetrics import Metric


def to_geometry(points: np.ndarray) -> BaseGeometry:
    """(N, 2) points -> a valid polygonal shapely geometry (possibly empty).

    Self-intersecting polygons (e.g. badly ordered quads) go through ``make_valid``, keeping
    only their polygonal parts; that keeps both lobes of a bow-tie, where ``buffer(0)`` drops one.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return shapely.Polygon()
    geom = shapely.Polygon(pts)
    if geom.is_valid:
        return geom
    fixed = shapely.make_valid(geom)
    if isinstance(fixed, shapely.Polygon | shapely.MultiPolygon):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", []) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def pairwise_intersection(geoms_a: Sequence[BaseGeometry], geoms_b: Sequence[BaseGeometry]) -> np.ndarray:
    """(len_a, len_b) intersection areas; only pairs whose bounding boxes overlap are computed."""
    out = np.zeros((len(geoms_a), len(geoms_b)), dtype=np.float64)
    if len(geoms_a) == 0 or len(geoms_b) == 0:
        return out
    arr_a = np.asarray(geoms_a, dtype=object)
    arr_b = np.asarray(geoms_b, dtype=object)
    box_a = shapely.bounds(arr_a)  # (n, 4) xmin, ymin, xmax, ymax; NaN for empty
    box_b = shapely.bounds(arr_b)
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
    """One-to-one matches (row, col) taken by descending IoU among pairs with ``iou >= thresh``."""
    rows, cols = np.nonzero(iou >= thresh)
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
) -> tuple[int, int, int]:
    """ICDAR15 counts ``(num_gt, num_det, num_matched)`` for one image."""
    ignore = np.zeros(len(gt_polys), dtype=bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    if len(ignore) != len(gt_polys):
        raise ValueError(f"{len(gt_polys)} GT polygons but {len(ignore)} ignore flags")
    gt_geoms = [to_geometry(p) for p in gt_polys]
    det_geoms = [to_geometry(p) for p in pred_polys]
    care_gt = [g for g, ig in zip(gt_geoms, ignore, strict=True) if not ig]
    dc_gt = [g for g, ig in zip(gt_geoms, ignore, strict=True) if ig]

    det_area = shapely.area(np.asarray(det_geoms, dtype=object)) if det_geoms else np.zeros(0)
    det_care: np.ndarray = np.ones(len(det_geoms), dtype=bool)
    if dc_gt and det_geoms:
        inter_dc = pairwise_intersection(dc_gt, det_geoms)  # (n_dc, n_det)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(det_area > 0, inter_dc / det_area, 0.0)
        det_care = np.logical_not((frac > dc_area_thresh).any(axis=0))

    care_det = [g for g, keep in zip(det_geoms, det_care, strict=True) if keep]
    num_matched = 0
    if care_gt and care_det:
        inter = pairwise_intersection(care_gt, care_det)
        gt_area = shapely.area(np.asarray(care_gt, dtype=object))
        d_area = det_area[det_care]
        union = gt_area[:, None] + d_area[None, :] - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        num_matched = len(greedy_match(iou, iou_thresh))
    return len(care_gt), len(care_det), num_matched


def prf(num_matched: torch.Tensor, num_gt: torch.Tensor, num_det: torch.Tensor) -> dict[str, torch.Tensor]:
    """Precision/recall/hmean from summed counts; 0 where a denominator is 0."""
    m, g, d = (t.to(torch.float64) for t in (num_matched, num_gt, num_det))
    precision = torch.where(d > 0, m / d.clamp(min=1), torch.zeros_like(m))
    recall = torch.where(g > 0, m / g.clamp(min=1), torch.zeros_like(m))
    denom = precision + recall
    hmean = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(m))
    return {"precision": precision.float(), "recall": recall.float(), "hmean": hmean.float()}


class IoUDetectionMetric(Metric):
    """ICDAR15 IoU detection P/R/H over a whole epoch (and all ranks), from summed counts."""

    full_state_update: bool = False
    higher_is_better = True
    is_differentiable = False

    num_gt: torch.Tensor
    num_det: torch.Tensor
    num_matched: torch.Tensor
    num_images: torch.Tensor

    def __init__(self, iou_thresh: float = 0.5, dc_area_thresh: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.iou_thresh = iou_thresh
        self.dc_area_thresh = dc_area_thresh
        for name in ("num_gt", "num_det", "num_matched", "num_images"):
            self.add_state(name, torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(
        self,
        pred_polys: Sequence[np.ndarray],
        gt_polys: Sequence[np.ndarray],
        gt_ignore: Sequence[bool] | None = None,
    ) -> None:
        """Add one image's counts. Polygons are (N, 2) arrays in the same (original) pixel frame."""
        n_gt, n_det, n_match = image_counts(
            pred_polys, gt_polys, gt_ignore, self.iou_thresh, self.dc_area_thresh
        )
        self.num_gt += n_gt
        self.num_det += n_det
        self.num_matched += n_match
        self.num_images += 1

    def compute(self) -> dict[str, torch.Tensor]:
        """Ratios of the (rank-summed) counts, plus the counts themselves."""
        out = prf(self.num_matched, self.num_gt, self.num_det)
        out.update(
            num_gt=self.num_gt.clone(),
            num_det=self.num_det.clone(),
            num_matched=self.num_matched.clone(),
            num_images=self.num_images.clone(),
        )
        return out
