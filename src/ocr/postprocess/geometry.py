"""Small polygon helpers shared by post-processing and the metrics, so both agree on point order."""

from __future__ import annotations

import cv2
import numpy as np


def order_points_clockwise(points: np.ndarray) -> np.ndarray:
    """Return ``points`` (N, 2) clockwise on screen (y down), starting at the top-left corner.

    "Top-left" is the point with the smallest ``x + y``; for text lines rotated by less than 45°
    that is the start of the top edge, which is what CLEval's pseudo-character layout assumes.
    For N == 4 the points are sorted by angle around the centroid (robust to any input order);
    for longer polygons the existing boundary order is kept and only reversed/rotated.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 3:
        return pts.copy()
    if len(pts) == 4:
        center = pts.mean(axis=0)
        angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
        pts = pts[np.argsort(angles, kind="stable")]  # increasing angle with y down == clockwise
    else:
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
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros((4, 2), dtype=np.float32)
    if len(pts) != 4:
        pts = cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float32)
    return order_points_clockwise(pts)


def polygon_area(points: np.ndarray) -> float:
    """Absolute shoelace area of an (N, 2) polygon."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    return float(cv2.contourArea(pts))
