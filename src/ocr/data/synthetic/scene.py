"""The photo around the paper: a darker table, the paper's drop shadow and uneven lighting.

Smooth fields are computed at 1/8 (shadow: 1/4) resolution and upsampled: they have no detail to lose
and the full-size versions would dominate the render time.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr.data.synthetic.config import SyntheticReceiptConfig

_TABLE_COLORS = np.array(
    [[92, 62, 40], [120, 86, 58], [68, 68, 72], [40, 48, 66], [32, 32, 34], [44, 62, 48], [110, 104, 98]],
    dtype=np.float32,
)


def _upsample(field: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(field.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def table_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 table surface: a dark base colour, blotches and wood-like streaks."""
    color = _TABLE_COLORS[rng.integers(len(_TABLE_COLORS))] * rng.uniform(0.75, 1.2)
    coarse = rng.standard_normal((height // 32 + 2, width // 32 + 2), dtype=np.float32)
    blotch = _upsample(coarse, width, height)
    streak = rng.standard_normal((height // 3 + 2, 1), dtype=np.float32).repeat(2, axis=1)
    streak = _upsample(streak, width, height) if rng.random() < 0.5 else np.zeros_like(blotch)
    # No per-pixel grain here: the camera noise added at the end already textures the table.
    lum = 1.0 + 0.06 * blotch + 0.05 * streak
    return lum[..., None] * color


def drop_shadow(paper_alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much the paper shades the table next to it."""
    height, width = paper_alpha.shape
    small = cv2.resize(paper_alpha, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    dx, dy = rng.uniform(-2.0, 2.0, 2)
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
    small = cv2.warpAffine(small, shift, (small.shape[1], small.shape[0]))
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=rng.uniform(1.0, 3.0))
    return _upsample(small, width, height) * rng.uniform(0.3, 0.7)


def lighting(height: int, width: int, rng: np.random.Generator, cfg: SyntheticReceiptConfig) -> np.ndarray:
    """(H, W) float32 multiplicative light field <= 1: gradient, vignette and a soft cast shadow."""
    strength = rng.uniform(*cfg.shadow_strength)
    if strength <= 0:
        return np.ones((height, width), dtype=np.float32)
    gh, gw = height // 8 + 2, width // 8 + 2
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    ys /= gh - 1
    xs /= gw - 1
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * (xs - 0.5) + np.sin(angle) * (ys - 0.5) + 0.5
    vignette = ((xs - 0.5) ** 2 + (ys - 0.5) ** 2) * 2.0
    # A cast shadow (hand, phone): darkness beyond a random soft line across the image.
    normal = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(0.1, 0.45)
    side = np.cos(normal) * (xs - 0.5) + np.sin(normal) * (ys - 0.5) - offset
    cast = 1.0 / (1.0 + np.exp(-side / rng.uniform(0.02, 0.08)))
    weights = rng.dirichlet((1.0, 1.0, 1.0 if rng.random() < 0.5 else 0.05))
    dark = weights[0] * gradient + weights[1] * vignette + weights[2] * cast
    field = 1.0 - strength * np.clip(dark, 0.0, 1.0)
    return _upsample(field, width, height)
