"""Box scores of DB candidates: the mean probability inside each contour, all of an image at once.

:func:`contour_mean_scores` equals :func:`polygon_mean_score` on each contour, bit for bit:

* the mask of a contour is what ``cv2.fillPoly`` draws for it, here into a shared uint8 label
  raster instead of a fresh mask over its bounding box: the same rasterisation, translated by an
  integer offset;
* ``cv2.mean`` with a mask adds the masked float32 pixels in row-major order into a float64 and
  returns ``sum * (1 / count)`` (not ``sum / count``, which can differ in the last bit); the kernel
  does the same additions in the same order (no fastmath, so no reassociation).

Which contours may share the raster: ``findContours`` on a binary map gives outer borders
(negative signed area in image coordinates) and hole borders (positive). The fills of two outer
borders are disjoint unless one lies inside a hole of the other, and then its bounding box lies
inside the other's. Hole borders can share pixels with anything around them (a wall one pixel
thick between two holes belongs to both). So only outer borders whose boxes neither contain nor
lie inside another outer border's box are drawn; the rest (holes, nested or zero-area contours:
rare on text maps) are scored one at a time by :func:`polygon_mean_score`.

The drawn contours are split greedily into groups of pairwise disjoint bounding boxes, and each
group is drawn by one ``fillPoly`` call in its own label value (1..255; a contour that would need
a 256th group is scored alone): a fill stays inside its contour's box and the spans of a scanline
are decided per polygon, so one call draws what one call per contour would, and a pixel of box
``k`` with the label of ``k``'s group belongs to ``k``. Text lines give one to a few groups: a few
OpenCV calls per image instead of five per contour.

The raster is kept per thread and map shape and is zeroed again box by box after use: a fresh
``np.zeros`` of the map's size per image would cost about as much as the scoring itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np
from numba import njit

_MAX_GROUPS = 255  # label values of a uint8 raster
_rasters = threading.local()


def polygon_mean_score(prob_map: np.ndarray, points: np.ndarray) -> float:
    """Mean of ``prob_map`` inside the integer polygon ``points`` (K, 2), via a mask over its bbox."""
    pts = np.asarray(points, dtype=np.int32).reshape(-1, 1, 2)
    x, y, w, h = cv2.boundingRect(pts)
    x0, y0 = max(x, 0), max(y, 0)
    crop = prob_map[y0 : y + h, x0 : x + w]
    if crop.size == 0:
        return 0.0
    mask = np.zeros(crop.shape, dtype=np.uint8)
    cv2.fillPoly(mask, [pts], 1, offset=(-x0, -y0))
    return float(cv2.mean(crop, mask)[0])


def contour_mean_scores(pred: np.ndarray, contours: Sequence[np.ndarray]) -> np.ndarray:
    """(K,) float64: :func:`polygon_mean_score` of each contour of the (H, W) float32 ``pred``.

    ``contours`` as ``cv2.findContours`` gives them: int32 arrays of shape (N, 1, 2).
    """
    count = len(contours)
    scores = np.zeros(count, dtype=np.float64)
    if count == 0:
        return scores
    points = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum([len(c) for c in contours], out=offsets[1:])
    boxes, group = _layout(points, offsets)
    groups = int(group.max()) + 1
    if groups > 0:
        labels = _raster(pred.shape)
        try:
            for g in range(groups):
                cv2.fillPoly(labels, [contours[k] for k in np.flatnonzero(group == g).tolist()], g + 1)
            _group_means(pred, labels, boxes, group, scores)
        finally:
            _clear_boxes(labels, boxes, group)
    for k in np.flatnonzero(group < 0).tolist():
        scores[k] = polygon_mean_score(pred, contours[k])
    return scores


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels, so that no image pays for it."""
    pred = np.zeros((12, 12), dtype=np.float32)
    pred[2:9, 2:9] = 0.5
    contours, _ = cv2.findContours((pred > 0.3).view(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    contour_mean_scores(pred, contours)


def _raster(shape: tuple[int, ...]) -> np.ndarray:
    """This thread's all-zero uint8 label raster of ``shape``."""
    rasters: dict[tuple[int, ...], np.ndarray] | None = getattr(_rasters, "by_shape", None)
    if rasters is None:
        rasters = _rasters.by_shape = {}
    if shape not in rasters:
        if len(rasters) >= 4:  # a few input sizes at most (train/val/predict): don't hoard
            rasters.clear()
        rasters[shape] = np.zeros(shape, dtype=np.uint8)
    return rasters[shape]


@njit(cache=True)
def _layout(  # pragma: no cover - numba
    points: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive boxes (K, 4) = x0, y0, x1, y1, and each contour's group 0..254 (-1: scored alone)."""
    count = len(offsets) - 1
    boxes = np.empty((count, 4), np.int64)
    outer = np.zeros(count, np.bool_)
    for k in range(count):
        start, end = offsets[k], offsets[k + 1]
        x0 = x1 = points[start, 0]
        y0 = y1 = points[start, 1]
        twice_area = 0  # exact: integer shoelace
        for i in range(start, end):
            x, y = points[i, 0], points[i, 1]
            j = i + 1 if i + 1 < end else start
            twice_area += x * points[j, 1] - points[j, 0] * y
            x0, x1 = min(x0, x), max(x1, x)
            y0, y1 = min(y0, y), max(y1, y)
        boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3] = x0, y0, x1, y1
        outer[k] = twice_area < 0
    drawn = outer.copy()
    for k in range(count):
        for j in range(k + 1, count):
            if not (outer[k] and outer[j]):
                continue
            bk, bj = boxes[k], boxes[j]
            j_in_k = bk[0] <= bj[0] and bk[1] <= bj[1] and bj[2] <= bk[2] and bj[3] <= bk[3]
            k_in_j = bj[0] <= bk[0] and bj[1] <= bk[1] and bk[2] <= bj[2] and bk[3] <= bj[3]
            if j_in_k or k_in_j:
                drawn[k] = False
                drawn[j] = False
    group = np.full(count, -1, np.int64)
    taken = np.zeros(count + 1, np.bool_)
    for k in range(count):
        if not drawn[k]:
            continue
        taken[:] = False
        bk = boxes[k]
        for j in range(k):
            bj = boxes[j]
            if group[j] >= 0 and bj[0] <= bk[2] and bk[0] <= bj[2] and bj[1] <= bk[3] and bk[1] <= bj[3]:
                taken[group[j]] = True
        g = 0
        while taken[g]:
            g += 1
        group[k] = g if g < _MAX_GROUPS else -1
    return boxes, group


@njit(cache=True)
def _group_means(
    pred: np.ndarray, labels: np.ndarray, boxes: np.ndarray, group: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """out[k] = cv2.mean(pred, labels == group[k] + 1) over box k, for every k in a group."""
    height, width = pred.shape
    for k in range(len(boxes)):
        if group[k] < 0:
            continue
        label = group[k] + 1
        total = 0.0
        count = 0
        for y in range(max(boxes[k, 1], 0), min(boxes[k, 3] + 1, height)):
            for x in range(max(boxes[k, 0], 0), min(boxes[k, 2] + 1, width)):
                if labels[y, x] == label:
                    total += np.float64(pred[y, x])
                    count += 1
        out[k] = total * (1.0 / count) if count > 0 else 0.0


@njit(cache=True)
def _clear_boxes(  # pragma: no cover - numba
    labels: np.ndarray, boxes: np.ndarray, group: np.ndarray
) -> None:
    height, width = labels.shape
    for k in range(len(boxes)):
        if group[k] >= 0:
            y0, y1 = max(boxes[k, 1], 0), min(boxes[k, 3] + 1, height)
            x0, x1 = max(boxes[k, 0], 0), min(boxes[k, 2] + 1, width)
            labels[y0:y1, x0:x1] = 0
