"""Receipt paper: off-white, yellowed along the strip, grainy, with fibres, a crease and torn ends.

Low-frequency fields are sampled on a coarse grid and upsampled, which keeps a full strip well under
ten milliseconds.
"""

from __future__ import annotations

import cv2
import numpy as np

from ocr.data.synthetic.config import SyntheticReceiptConfig


def _smooth_field(height: int, width: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise with features about ``cell`` px wide."""
    coarse = rng.standard_normal((max(2, height // cell + 2), max(2, width // cell + 2)), dtype=np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def _fibres(height: int, width: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """Short, thin, slightly curved darker strands (0-255 coverage)."""
    layer = np.zeros((height, width), dtype=np.uint8)
    for _ in range(count):
        length = rng.uniform(6, 28)
        angle = rng.uniform(0, np.pi)
        start = rng.uniform((0, 0), (width, height))
        bend = rng.uniform(-0.6, 0.6)
        t = np.linspace(0.0, 1.0, 6)
        angles = angle + bend * t
        steps = np.stack([np.cos(angles), np.sin(angles)], axis=1) * (length / 5)
        pts = np.vstack([start, start + np.cumsum(steps, axis=0)])
        shade = int(rng.integers(20, 70))
        cv2.polylines(layer, [np.round(pts).astype(np.int32)], False, shade, 1, cv2.LINE_AA)
    return layer


def paper_texture(
    height: int, width: int, rng: np.random.Generator, cfg: SyntheticReceiptConfig
) -> np.ndarray:
    """(H, W, 3) float32 RGB paper in 0-255 units."""
    white = rng.uniform(232, 252)
    yellow = rng.uniform(*cfg.yellowing)
    # Aging is stronger toward one end of the strip (the end that stuck out of the wallet).
    ramp = np.linspace(0.3, 1.0, height, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    ramp = ramp[:, None]
    gain = np.empty((height, 1, 3), dtype=np.float32)
    gain[..., 0] = 1.0
    gain[..., 1] = 1.0 - 0.35 * yellow * ramp
    gain[..., 2] = 1.0 - yellow * ramp

    shade = 1.0 + 0.012 * _smooth_field(height, width, 40, rng) + 0.006 * _smooth_field(height, width, 9, rng)
    grain = rng.standard_normal((height, width), dtype=np.float32) * rng.uniform(*cfg.paper_noise)
    lum = white * shade + grain
    lum -= _fibres(height, width, rng, int(rng.integers(cfg.fibre_count[0], cfg.fibre_count[1] + 1))) * 0.25
    return lum[..., None] * gain


def add_fold(paper: np.ndarray, rng: np.random.Generator, cfg: SyntheticReceiptConfig) -> None:
    """Maybe add a horizontal crease: a dark thin line with a lit side and a shaded side (in place)."""
    if rng.random() >= cfg.fold_prob:
        return
    height = paper.shape[0]
    y0 = rng.uniform(0.2, 0.8) * height
    rows = np.arange(height, dtype=np.float32) - y0
    depth = rng.uniform(0.03, 0.09)
    side = (
        np.sign(rng.uniform(-1, 1))
        * depth
        * 0.6
        * np.tanh(rows / rng.uniform(15, 60))
        * np.exp(-np.abs(rows) / 120)
    )
    line = -depth * np.exp(-(rows**2) / 2.0)
    paper *= (1.0 + side + line)[:, None, None]


def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Paper coverage (H, W) uint8 with torn zig-zag top and bottom edges (inside the blank margins)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    xs = np.linspace(0, width, int(rng.integers(12, 40)))
    top = rng.uniform(0, 4, xs.size)
    bottom = height - rng.uniform(0, 5, xs.size)
    outline = np.concatenate([np.stack([xs, top], 1), np.stack([xs[::-1], bottom[::-1]], 1)])
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 255, cv2.LINE_AA)
    return mask
