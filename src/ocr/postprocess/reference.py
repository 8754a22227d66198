"""One-box-at-a-time DB post-processing (quad and polygon output): the oracle of :class:`DBPostProcessor`.

The same steps and thresholds as the fast path, written the plain way: each candidate is scored,
unclipped, mapped back, clipped, size-checked and ordered on its own, as the reference DB
``SegDetectorRepresenter`` does. ``tests/unit/test_postprocess_fast.py`` checks that the fast path
returns the same boxes, in the same order, bit for bit; ``ocr bench eval-work`` times both.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr.postprocess.db_postprocess import (
    DBPostProcessor,
    Detections,
    Meta,
    _as_float32_map,
    read_meta,
    unclip,
)
from ocr.postprocess.geometry import order_points_clockwise
from ocr.postprocess.scoring import polygon_mean_score


def reference_quads(post: DBPostProcessor, prob_map: np.ndarray, meta: Meta) -> Detections:
    """Quads and scores of one map, with ``post``'s thresholds, one candidate at a time."""
    pred = _as_float32_map(prob_map)
    orig_h, orig_w, scale = read_meta(meta)
    bitmap = (pred > post.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    upper = np.array([orig_w - 1, orig_h - 1], dtype=np.float32)
    polygons: list[np.ndarray] = []
    scores: list[float] = []
    for contour in contours[: post.max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < post.min_size:
            continue
        score = polygon_mean_score(pred, contour)
        if score < post.box_thresh:
            continue
        expanded = unclip(cv2.boxPoints(rect), post.unclip_ratio)
        if expanded is None:
            continue
        rect = cv2.minAreaRect(expanded)
        if min(rect[1]) < post.min_size + 2:
            continue
        box = cv2.boxPoints(rect).astype(np.float32)
        points = np.clip(box / scale, 0.0, upper)
        # the clipped box's shorter mean side, back in map pixels
        sides = [float(np.linalg.norm(points[(i + 1) % 4] - points[i])) for i in range(4)]
        if min(sides[0] + sides[2], sides[1] + sides[3]) / 2 * scale < post.min_size:
            continue
        polygons.append(order_points_clockwise(points))
        scores.append(score)
    return polygons, scores


def reference_polygons(post: DBPostProcessor, prob_map: np.ndarray, meta: Meta) -> Detections:
    """``output="polygon"`` detections of one map, with ``post``'s thresholds, one candidate at a time."""
    pred = _as_float32_map(prob_map)
    orig_h, orig_w, scale = read_meta(meta)
    bitmap = (pred > post.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    upper = np.array([orig_w - 1, orig_h - 1], dtype=np.float32)
    polygons: list[np.ndarray] = []
    scores: list[float] = []
    for contour in contours[: post.max_candidates]:
        epsilon = 0.002 * cv2.arcLength(contour, True)
        approx = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2)
        if len(approx) < 4:
            continue
        score = polygon_mean_score(pred, contour)
        if score < post.box_thresh:
            continue
        expanded = unclip(approx, post.unclip_ratio)
        if expanded is None or len(expanded) < 3:
            continue
        if min(cv2.minAreaRect(expanded)[1]) < post.min_size + 2:
            continue
        points = np.clip(expanded / np.float32(scale), np.float32(0.0), upper)
        if min(cv2.minAreaRect(points)[1]) * scale < post.min_size:
            continue
        polygons.append(order_points_clockwise(points))
        scores.append(score)
    return polygons, scores
