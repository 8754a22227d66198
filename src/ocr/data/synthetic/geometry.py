"""One homography per receipt (perspective jitter, rotation, placement) shared by pixels and polygons.

Homographies here act on pixel-*edge* coordinates (the top-left corner of the image is (0, 0) and the
bottom-right is (W, H)), the convention of the polygons. OpenCV's warp samples pixel *centres*, so the
matrix handed to ``cv2.warpPerspective`` is conjugated by a half-pixel shift; with that the warped ink
and the warped polygons agree to sub-pixel accuracy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ocr.data.synthetic.config import SyntheticReceiptConfig


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def rect_corners(width: float, height: float) -> np.ndarray:
    """(4, 2) corners of a ``width`` x ``height`` rectangle, clockwise from top-left."""
    return np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])


def boxes_to_quads(boxes: np.ndarray) -> np.ndarray:
    """(K, 4) ``x0, y0, x1, y1`` boxes to (K, 4, 2) quads, clockwise from top-left (SROIE order)."""
    return boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)


def transform_points(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Apply ``homography`` to (..., 2) points (pixel-edge coordinates in and out)."""
    shape = points.shape
    if points.size == 0:
        return points.astype(np.float64)
    flat = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(flat, homography).reshape(shape)


def sample_homography(
    width: int, height: int, rng: np.random.Generator, cfg: SyntheticReceiptConfig
) -> np.ndarray:
    """Mild perspective (corner jitter) followed by a small rotation about the paper centre."""
    corners = rect_corners(width, height)
    jitter = rng.uniform(-1.0, 1.0, (4, 2)) * cfg.perspective_strength * np.array([width, height])
    perspective = cv2.getPerspectiveTransform(
        corners.astype(np.float32), (corners + jitter).astype(np.float32)
    )
    angle = rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)
    rotation = np.vstack([cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0), [0.0, 0.0, 1.0]])
    return rotation @ perspective


def fit_canvas(
    homography: np.ndarray, width: int, height: int, margins: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Shift the warped paper so it sits ``margins`` (left, top, right, bottom) px inside a new canvas.

    Returns the shifted homography and the canvas width and height: the whole paper, hence every
    polygon, is inside the image by construction, whatever the rotation.
    """
    warped = transform_points(rect_corners(width, height), homography)
    lo, hi = warped.min(axis=0), warped.max(axis=0)
    left, top, right, bottom = (float(m) for m in margins)
    shifted = _translation(left - lo[0], top - lo[1]) @ homography
    out_w = math.ceil(hi[0] - lo[0] + left + right)
    out_h = math.ceil(hi[1] - lo[1] + top + bottom)
    return shifted / shifted[2, 2], out_w, out_h


def warp_image(image: np.ndarray, homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` by an edge-coordinate ``homography`` onto a (width, height) canvas, zero outside."""
    centred = _translation(-0.5, -0.5) @ homography @ _translation(0.5, 0.5)
    return cv2.warpPerspective(
        image, centred, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
