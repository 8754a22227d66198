"""DBNet post-processing: probability map -> text polygons in ORIGINAL image coordinates.

Follows the reference DB ``SegDetectorRepresenter`` (binarize, contours, score, unclip,
min-area rectangle) with two deliberate differences:

* a candidate is scored by the mean probability inside its own contour (its ``fillPoly`` mask),
  not over the bbox or the min-area box: the bbox mean under-scores rotated and thin lines;
* the boxes are mapped back through the letterbox used by the data pipeline (uniform scale
  ``s`` with original * s = resized, padding only at the bottom/right), not by stretching the
  map to the original size, which would be wrong for padded inputs. A box is clipped to the
  original image and dropped when its clipped size falls below ``min_size`` (a blob lying in the
  padding would otherwise become a zero-width false positive on the image edge).

Per contour only OpenCV/pyclipper calls run in the loop (min-area rectangle, the unclip offset).
All candidates of an image are scored together (:func:`ocr.postprocess.scoring.contour_mean_scores`:
one label raster, one numba pass); mapping, clipping, the clipped-size filter and the corner
ordering run once per image on all surviving boxes as (K, 4, 2) arrays.
:mod:`ocr.postprocess.reference` is the one-box-at-a-time oracle this must equal (tested).

The probability map must have the resolution of the (resized, padded) network input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import pyclipper
import torch

from ocr.perf.inject import injected
from ocr.postprocess.geometry import order_points_clockwise, order_quads_clockwise, polygon_area
from ocr.postprocess.scoring import contour_mean_scores

# pyclipper works on integers; offsetting at 1/8 px keeps sub-pixel accuracy for small boxes.
_CLIPPER_SCALE = 8.0


class MetaLike(Protocol):
    """Anything with the two fields the mapping needs (e.g. the data pipeline's ``ImageMeta``)."""

    @property
    def orig_size(self) -> Sequence[int]: ...  # (h, w) of the original image

    @property
    def scale(self) -> float: ...  # original * scale = resized


Meta = MetaLike | Mapping[str, Any]
Detections = tuple[list[np.ndarray], list[float]]


def read_meta(meta: Meta) -> tuple[int, int, float]:
    """Return ``(orig_h, orig_w, scale)`` from a dict or an attribute object."""
    if isinstance(meta, Mapping):
        orig_size, scale = meta["orig_size"], meta["scale"]
    else:
        orig_size, scale = meta.orig_size, meta.scale
    orig_h, orig_w = (int(v) for v in orig_size)
    scale_f = float(scale)
    if scale_f <= 0 or orig_h <= 0 or orig_w <= 0:
        raise ValueError(f"invalid meta: orig_size={orig_size}, scale={scale}")
    return orig_h, orig_w, scale_f


def unclip(points: np.ndarray, unclip_ratio: float) -> np.ndarray | None:
    """Expand a polygon by DB's distance ``area * ratio / perimeter``; ``None`` if degenerate.

    Round joins as in DB. If the offset splits into pieces the largest one is kept.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    area = polygon_area(pts)
    length = cv2.arcLength(pts, True)
    if area <= 0 or length <= 0:
        return None
    distance = area * unclip_ratio / length
    offset = pyclipper.PyclipperOffset()
    offset.ArcTolerance = 0.25 * _CLIPPER_SCALE
    offset.AddPath(
        np.round(pts * _CLIPPER_SCALE).astype(np.int64).tolist(),
        pyclipper.JT_ROUND,
        pyclipper.ET_CLOSEDPOLYGON,
    )
    expanded = offset.Execute(distance * _CLIPPER_SCALE)
    if not expanded:
        return None
    # (almost always one piece: then no areas to compare, and each costs more than the offset itself)
    best = expanded[0] if len(expanded) == 1 else max(expanded, key=lambda p: polygon_area(np.asarray(p)))
    return np.asarray(best, dtype=np.float32) / _CLIPPER_SCALE


@dataclass
class DBPostProcessor:
    """Turns one DB probability map into polygons + scores in original-image pixels.

    ``output="quad"`` gives (4, 2) min-area rectangles (DB's default, what CLEval takes);
    ``output="polygon"`` gives the unclipped contour approximation (curved/irregular text).
    Coordinates are float32, clockwise from the top-left corner.
    """

    thresh: float = 0.3
    box_thresh: float = 0.6
    max_candidates: int = 1000
    unclip_ratio: float = 1.5
    min_size: float = 3.0
    output: Literal["quad", "polygon"] = "quad"

    def __post_init__(self) -> None:
        if self.output not in ("quad", "polygon"):
            raise ValueError(f"output must be 'quad' or 'polygon', got {self.output!r}")

    def __call__(self, prob_map: np.ndarray | torch.Tensor, meta: Meta) -> Detections:
        if injected("postprocess"):  # the perf suite's injected 2x slowdown (ocr.perf.inject)
            self._detect(prob_map, meta)
        return self._detect(prob_map, meta)

    def _detect(self, prob_map: np.ndarray | torch.Tensor, meta: Meta) -> Detections:
        pred = _as_float32_map(prob_map)
        orig_h, orig_w, scale = read_meta(meta)
        # bool -> uint8 is a zero-copy view; findContours wants a single-channel 8-bit image.
        bitmap = np.greater(pred, self.thresh).view(np.uint8)
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        upper = np.array([orig_w - 1, orig_h - 1], dtype=np.float32)
        contours = contours[: self.max_candidates]
        if self.output == "polygon":
            return self._polygons(pred, contours, scale, upper)

        rects = [cv2.minAreaRect(contour) for contour in contours]
        sized = [i for i, rect in enumerate(rects) if min(rect[1]) >= self.min_size]
        # all candidates scored in one pass (ocr.postprocess.scoring), then the survivors unclipped
        candidate_scores = contour_mean_scores(pred, [contours[i] for i in sized]).tolist()
        boxes: list[np.ndarray] = []
        scores: list[float] = []
        for i, score in zip(sized, candidate_scores, strict=True):
            if score < self.box_thresh:
                continue
            box = self._unclipped_box(rects[i])
            if box is not None:
                boxes.append(box)
                scores.append(score)
        if not boxes:
            return [], []
        # undo the resize; padding is bottom/right only, so there is no offset to remove
        quads = np.clip(np.stack(boxes) / np.float32(scale), np.float32(0.0), upper)
        keep = np.flatnonzero(clipped_quad_size(quads) * scale >= self.min_size)
        ordered = order_quads_clockwise(quads[keep])
        return list(ordered), [scores[i] for i in keep]

    def batch(self, prob_maps: np.ndarray | torch.Tensor, metas: Sequence[Meta]) -> list[Detections]:
        """Post-process a (B, H, W) or (B, 1, H, W) batch; one device->host copy for all of it."""
        if isinstance(prob_maps, torch.Tensor):
            arr = prob_maps.detach().to(device="cpu", dtype=torch.float32).numpy()
        else:
            arr = np.asarray(prob_maps, dtype=np.float32)
        if arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 3:
            raise ValueError(f"expected (B, H, W) or (B, 1, H, W) maps, got shape {arr.shape}")
        if len(metas) != arr.shape[0]:
            raise ValueError(f"{arr.shape[0]} maps but {len(metas)} metas")
        return [self(arr[i], metas[i]) for i in range(arr.shape[0])]

    def _unclipped_box(self, rect: Any) -> np.ndarray | None:
        """The min-area rectangle of the unclipped ``rect`` (map pixels), or ``None`` if too small."""
        expanded = unclip(cv2.boxPoints(rect), self.unclip_ratio)
        if expanded is None:
            return None
        rect = cv2.minAreaRect(expanded)
        if min(rect[1]) < self.min_size + 2:
            return None
        return cv2.boxPoints(rect).astype(np.float32)

    def _unclipped_polygon(self, approx: np.ndarray) -> np.ndarray | None:
        expanded = unclip(approx, self.unclip_ratio)
        if expanded is None or len(expanded) < 3:
            return None
        if min(cv2.minAreaRect(expanded)[1]) < self.min_size + 2:
            return None
        return expanded

    def _polygons(
        self, pred: np.ndarray, contours: Sequence[np.ndarray], scale: float, upper: np.ndarray
    ) -> Detections:
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        for contour in contours:
            epsilon = 0.002 * cv2.arcLength(contour, True)
            approx = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2)
            if len(approx) >= 4:
                kept.append((contour, approx))
        candidate_scores = contour_mean_scores(pred, [contour for contour, _ in kept]).tolist()
        polygons: list[np.ndarray] = []
        scores: list[float] = []
        for (_, approx), score in zip(kept, candidate_scores, strict=True):
            if score < self.box_thresh:
                continue
            expanded = self._unclipped_polygon(approx)
            if expanded is None:
                continue
            points = np.clip(expanded / np.float32(scale), np.float32(0.0), upper)
            if min(cv2.minAreaRect(points)[1]) * scale < self.min_size:
                continue  # (almost) wholly in the padding
            polygons.append(order_points_clockwise(points))
            scores.append(score)
        return polygons, scores


def clipped_quad_size(quads: np.ndarray) -> np.ndarray:
    """(K, 4, 2) quads in cyclic corner order -> (K,) shorter of the two mean opposite-side lengths."""
    edges = np.roll(quads, -1, axis=1) - quads
    sides = np.hypot(edges[..., 0], edges[..., 1])
    return np.minimum(sides[:, 0] + sides[:, 2], sides[:, 1] + sides[:, 3]) / 2


def _as_float32_map(prob_map: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(prob_map, torch.Tensor):
        prob_map = prob_map.detach().to(device="cpu", dtype=torch.float32).numpy()
    pred = np.asarray(prob_map, dtype=np.float32)
    if pred.ndim == 3 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.ndim != 2:
        raise ValueError(f"expected an (H, W) probability map, got shape {pred.shape}")
    return pred
