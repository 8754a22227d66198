"""Small polygon helpers shared by post-processing and the metrics, so both agree on point order."""

from __future__ import annotations

import cv2
import numpy as np


def order_quads_clockwise(quads: np.ndarray) -> np.ndarray:
    """(K, 4, 2) quads -> float32 (K, 4, 2), each clockwise on screen (y down) from its top-left corner.

    The corners are sorted by angle around the centroid (robust to any input order), then rotated
    so that the first edge is the one pointing most to the right: the top edge of a text line
    rotated by less than 45°. Unlike "the corner with the smallest x + y", this keeps the anchor
    of a trapezoid (slanted side edges) on its top-left corner, which is what CLEval's
    pseudo-character layout reads (a re-anchored quad has its long sides swapped with its short
    ones and weighs a different number of characters). Exact ties (a square at 45°) take the
    candidate edge that starts with the smallest ``x + y``.
    """
    pts = np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)
    if len(pts) == 0:
        return np.zeros((0, 4, 2), dtype=np.float32)
    centre = pts.astype(np.float64).sum(axis=1, keepdims=True) / 4.0
    rel = pts - centre
    angles = np.arctan2(rel[..., 1], rel[..., 0])
    order = np.argsort(angles, axis=1, kind="stable")  # increasing angle with y down == clockwise
    pts = np.take_along_axis(pts, order[..., None], axis=1)
    edges = (np.roll(pts, -1, axis=1) - pts).astype(np.float64)
    length = np.hypot(edges[..., 0], edges[..., 1])
    rightward = np.where(length > 0, edges[..., 0] / np.where(length > 0, length, 1.0), -np.inf)
    best = rightward.max(axis=1, keepdims=True)
    # first by "most rightward", then by the smallest x + y among exact ties
    corner_sum = np.where(rightward == best, pts[..., 0].astype(np.float64) + pts[..., 1], np.inf)
    start = np.argmin(corner_sum, axis=1)
    index = (np.arange(4)[None, :] + start[:, None]) % 4
    return np.ascontiguousarray(np.take_along_axis(pts, index[..., None], axis=1))


def order_points_clockwise(points: np.ndarray) -> np.ndarray:
    """Return ``points`` (N, 2) clockwise on screen (y down), starting at the top-left corner.

    For N == 4 see :func:`order_quads_clockwise`. For longer polygons the existing boundary order
    is kept and only reversed/rotated, to start at the point with the smallest ``x + y``.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 3:
        return pts.copy()
    if len(pts) == 4:
        return order_quads_clockwise(pts[None])[0]
    x, y = pts[:, 0], pts[:, 1]
    signed = float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if signed < 0:  # counter-clockwise on screen
        pts = pts[::-1]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.ascontiguousarray(np.roll(pts, -start, axis=0))


def polygon_to_quad(points: np.ndarray) -> np.ndarray:
    """(N, 2) polygon -> (4, 2) float32 quad, clockwise from top-left.

    Quads keep their corners; polygons with more than 4 points become their minimum-area
    rectangle (``cv2.minAreaRect``), which is what quad-only evaluators (CLEval QUAD) can take.
    Fewer than 3 points give a degenerate quad (the points' bounding rectangle).
    """
    return polygons_to_quads([points])[0]


def polygons_to_quads(polys: list[np.ndarray] | tuple[np.ndarray, ...]) -> np.ndarray:
    """Many polygons -> (K, 4, 2) float32 quads, equal to ``polygon_to_quad`` of each.

    Quads (the common case: every DB detection and SROIE line) are ordered in one vectorised call.
    """
    if len(polys) == 0:
        return np.zeros((0, 4, 2), dtype=np.float32)
    raw = np.empty((len(polys), 4, 2), dtype=np.float32)
    for i, p in enumerate(polys):
        pts = np.asarray(p, dtype=np.float32).reshape(-1, 2)
        if len(pts) == 4:
            raw[i] = pts
        elif len(pts) == 0:
            raw[i] = 0.0
        else:
            raw[i] = cv2.boxPoints(cv2.minAreaRect(pts))
    return order_quads_clockwise(raw)


def polygon_area(points: np.ndarray) -> float:
    """Absolute shoelace area of an (N, 2) polygon."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    return float(cv2.contourArea(pts))
