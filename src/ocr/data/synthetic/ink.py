"""Rasterise text into an ink-coverage layer and measure each run's box from its own ink.

Each run is drawn on its own small canvas, so its box is tight to the glyphs actually rendered (the
font's advance box is up to a few px loose and a ``-----`` run's is mostly empty) and neighbours never
leak into it. The thermal-print look (uneven density, head streaks) is applied when compositing.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ocr.data.synthetic.config import SyntheticReceiptConfig
from ocr.data.synthetic.layout import Layout, PlacedRun

INK_THRESHOLD = 64
"""Coverage (0-255) from which a pixel counts as ink: faint anti-aliasing fringes don't widen boxes."""

_PAD = 2


def _render_run(run: PlacedRun) -> tuple[np.ndarray, int, int]:
    """Coverage patch of one run and the paper position of its top-left pixel."""
    left, top, right, bottom = (int(v) for v in run.font.getbbox(run.text, anchor="ls"))
    patch = Image.new("L", (right - left + 2 * _PAD, bottom - top + 2 * _PAD), 0)
    ImageDraw.Draw(patch).text((_PAD - left, _PAD - top), run.text, font=run.font, fill=255, anchor="ls")
    return np.asarray(patch), run.x + left - _PAD, run.baseline + top - _PAD


def _tight_box(patch: np.ndarray, x0: int, y0: int, cfg: SyntheticReceiptConfig) -> np.ndarray | None:
    """Ink bounding box (x0, y0, x1, y1) in pixel-edge coordinates, padded and grown to a minimum height."""
    ink = patch >= INK_THRESHOLD
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    pad = cfg.box_padding
    box = np.array(
        [x0 + cols[0] - pad, y0 + rows[0] - pad, x0 + cols[-1] + 1 + pad, y0 + rows[-1] + 1 + pad],
        dtype=np.float64,
    )
    grow = cfg.min_box_height - (box[3] - box[1])
    if grow > 0:
        box[1] -= grow / 2
        box[3] += grow / 2
    return box


def _draw_barcode(ink: np.ndarray, rect: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = rect
    x = x0
    while x < x1:
        bar = int(rng.integers(1, 5))
        if rng.random() < 0.55:
            ink[y0:y1, x : min(x + bar, x1)] = 255
        x += bar


def rasterize(
    layout: Layout, cfg: SyntheticReceiptConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Ink coverage (H, W) uint8, the indices of runs that produced ink, and their (K, 4) boxes."""
    ink = np.zeros((layout.height, layout.width), dtype=np.uint8)
    kept: list[int] = []
    boxes: list[np.ndarray] = []
    for i, run in enumerate(layout.runs):
        patch, px, py = _render_run(run)
        box = _tight_box(patch, px, py, cfg)
        if box is None:
            continue
        h, w = patch.shape
        region = ink[py : py + h, px : px + w]
        np.maximum(region, patch[: region.shape[0], : region.shape[1]], out=region)
        kept.append(i)
        boxes.append(box)
    if layout.barcode is not None:
        _draw_barcode(ink, layout.barcode, rng)
    return ink, kept, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _density(height: int, width: int, rng: np.random.Generator, cfg: SyntheticReceiptConfig) -> np.ndarray:
    """Ink density in (0, 1]: smooth blotches plus vertical print-head streaks."""
    fade = rng.uniform(*cfg.ink_fade)
    coarse = rng.random((max(2, height // 48), max(2, width // 48)), dtype=np.float32)
    blotch = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    streak = cv2.GaussianBlur(rng.random((1, width), dtype=np.float32), (0, 0), sigmaX=2.0)
    streak = np.clip((streak - streak.mean()) * 3.0 + 0.5, 0.0, 1.0)
    loss = fade * np.clip(0.7 * blotch + 0.3 * streak, 0.0, 1.0)
    return np.asarray(rng.uniform(0.85, 1.0) - loss, dtype=np.float32)


def composite_ink(
    paper: np.ndarray, ink: np.ndarray, rng: np.random.Generator, cfg: SyntheticReceiptConfig
) -> None:
    """Darken ``paper`` (H, W, 3 float32, in place) with near-black ink where ``ink`` covers it."""
    height, width = ink.shape
    alpha = ink.astype(np.float32) * (1.0 / 255.0)
    alpha *= _density(height, width, rng, cfg)
    tone = rng.uniform(10, 55)
    color = np.array([tone, tone, tone + rng.uniform(0, 25)], dtype=np.float32)
    paper *= (1.0 - alpha)[..., None]
    paper += alpha[..., None] * color
