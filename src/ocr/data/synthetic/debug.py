"""Eyeball check for generated (or any) samples: polygons and their index drawn over the image."""

from __future__ import annotations

import cv2
import numpy as np

from ocr.data.sample import TextSample


def draw_polygons(sample: TextSample, thickness: int = 1) -> np.ndarray:
    """RGB copy of ``sample.image`` with every polygon outlined (green; ignored ones red).

    The first vertex gets a dot, so the clockwise-from-top-left order is visible too.
    """
    canvas = np.ascontiguousarray(sample.image.copy())
    for polygon, ignored in zip(sample.polygons, sample.ignore, strict=True):
        color = (255, 0, 0) if ignored else (0, 200, 0)
        # Polygons use pixel-edge coordinates, cv2 draws at pixel centres: shift by half a pixel.
        pts = np.round((np.asarray(polygon, dtype=np.float64) - 0.5) * 4).astype(np.int32)
        cv2.polylines(canvas, [pts], True, color, thickness, cv2.LINE_AA, shift=2)
        cv2.circle(canvas, tuple(int(v) for v in pts[0]), 8, (0, 90, 255), -1, cv2.LINE_AA, shift=2)
    return canvas
