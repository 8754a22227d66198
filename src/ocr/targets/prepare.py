"""Polygon bookkeeping shared by the reference and the fast DB targets (one copy, no drift).

Both implementations call :func:`prepare_polygons`, which validates every polygon, computes the
offset distance D, shrinks/dilates with pyclipper, fills ``prob_map``, ``prob_mask`` and
``thresh_mask`` and returns the "border jobs": the polygons whose border (threshold) map still has to
be drawn, each with D and the pixel box where it can be non-zero. Only that last step differs
between the reference (numpy) and the fast path (numba).

Conventions, and where they deliberately differ from the original DB code (MakeShrinkMap /
MakeBorderMap):

* Pixel ``(x, y)`` is the point with those integer coordinates; polygons are float image coords.
* Polygons are *not* clamped to the image (the original clamps coordinates, which bends rotated
  boxes and draws a fake border ridge along the image edge); ``cv2.fillPoly`` and the clipped
  border box restrict every write to the image. Only the ``min_text_size`` test uses the clamped
  (visible) bounding box, so text mostly cut off by a crop still becomes an ignore region.
* pyclipper works in integers: vertices are rounded to the nearest pixel before offsetting (the
  original let pyclipper truncate). Every path of an offset result is filled (the original kept the
  first), with even-odd filling so holes stay holes.
* The border box is the exact bounding box of the points within D of the polygon,
  ``[floor(min - D), ceil(max + D)]`` clipped to the image, not the rounded clipper output's box, so
  the threshold map is the formula at *every* pixel independent of clipper rounding.
* Degenerate polygons (fewer than 3 finite points, NaN/inf, zero area, absurd coordinates, clipper
  failure) and polygons that shrink to nothing are never drawn; whatever finite part they have is
  zeroed in ``prob_mask`` and they are counted in ``ignored_count``. pyclipper normalises
  orientation, so clockwise and counter-clockwise polygons give identical targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import cv2
import numpy as np
import pyclipper
from numba import njit

from ocr.targets.params import DBTargetParams

# Coordinates beyond this are corrupt annotations, not text; they would also overflow clipper/cv2.
MAX_ABS_COORD = 1.0e6


@dataclass(frozen=True)
class BorderJobs:
    """Polygons whose border map must be drawn.

    ``points`` (M, 2) float64 holds the original vertices; job k uses
    ``points[spans[k, 0]:spans[k, 1]]`` (>= 3 vertices), offset ``distances[k]`` (> 0) and the
    inclusive, image-clipped, non-empty pixel box ``boxes[k] = (x0, y0, x1, y1)``.
    """

    points: np.ndarray
    spans: np.ndarray
    distances: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.distances.shape[0])


def thresh_affine(params: DBTargetParams) -> tuple[np.float32, np.float32]:
    """(scale, offset) in float32 so both paths rescale the border map with identical arithmetic."""
    return np.float32(params.thresh_max - params.thresh_min), np.float32(params.thresh_min)


# Per-polygon verdicts of polygon_stats.
DRAW, FLAGGED, DEGENERATE, SMALL = 0, 1, 2, 3


def as_points(polygon: object) -> np.ndarray | None:
    """(N, 2) float array of a polygon (no copy when it already is one), or None if it isn't points."""
    if (
        isinstance(polygon, np.ndarray)
        and polygon.ndim == 2
        and polygon.shape[1] == 2
        and polygon.dtype.kind in "fiu"
    ):
        return polygon
    try:
        pts = np.array(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if pts.ndim == 1 and pts.size % 2 == 0:
        pts = pts.reshape(-1, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        return None
    return pts


@njit(cache=True)
def polygon_stats(
    points: np.ndarray,
    starts: np.ndarray,
    ignore: np.ndarray,
    height: int,
    width: int,
    shrink_ratio: float,
    min_text_size: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verdict (DRAW/FLAGGED/DEGENERATE/SMALL), offset D and border box of every polygon.

    Polygon k is ``points[starts[k]:starts[k + 1]]``. D = area * (1 - r**2) / perimeter (shoelace
    area, so a self-intersecting polygon gets its net area). The border box is
    ``[floor(min - D), ceil(max + D)]`` clipped to the image; x1 < x0 when none of it is visible.
    A plain loop in numba: a receipt's polygons are a few dozen quads, too small for numpy's
    per-call overhead to pay off.
    """
    n = starts.shape[0] - 1
    verdict = np.zeros(n, dtype=np.int8)
    dist = np.zeros(n, dtype=np.float64)
    boxes = np.zeros((n, 4), dtype=np.int64)
    for k in range(n):
        s, e = starts[k], starts[k + 1]
        if ignore[k]:
            verdict[k] = FLAGGED
            continue
        if e - s < 3:
            verdict[k] = DEGENERATE
            continue
        xmin = ymin = np.inf
        xmax = ymax = -np.inf
        twice_area = 0.0
        perimeter = 0.0
        valid = True
        for i in range(s, e):
            j = i + 1 if i + 1 < e else s
            x, y = points[i, 0], points[i, 1]
            if not (abs(x) <= MAX_ABS_COORD and abs(y) <= MAX_ABS_COORD):  # also NaN / inf
                valid = False
                break
            xmin, xmax = min(xmin, x), max(xmax, x)
            ymin, ymax = min(ymin, y), max(ymax, y)
            twice_area += x * points[j, 1] - points[j, 0] * y
            perimeter += np.hypot(points[j, 0] - x, points[j, 1] - y)
        if not valid:
            verdict[k] = DEGENERATE
            continue
        # Visible size: the bounding box clamped to the image, as DB's min_text_size test.
        vis_w = min(max(xmax, 0.0), width - 1.0) - min(max(xmin, 0.0), width - 1.0)
        vis_h = min(max(ymax, 0.0), height - 1.0) - min(max(ymin, 0.0), height - 1.0)
        area = 0.5 * abs(twice_area)
        d = area * (1.0 - shrink_ratio * shrink_ratio) / perimeter if perimeter > 0 else 0.0
        if not (area > 0.0 and d > 0.0 and np.isfinite(d)):
            verdict[k] = DEGENERATE
            continue
        if min(vis_w, vis_h) < min_text_size:
            verdict[k] = SMALL
            continue
        dist[k] = d
        # Every point within D of the polygon lies in [min - D, max + D]; pixels outside get 0.
        boxes[k, 0] = max(np.floor(xmin - d), 0.0)
        boxes[k, 1] = max(np.floor(ymin - d), 0.0)
        boxes[k, 2] = min(np.ceil(xmax + d), width - 1.0)
        boxes[k, 3] = min(np.ceil(ymax + d), height - 1.0)
    return verdict, dist, boxes


def _fill(image: np.ndarray, paths: Sequence[np.ndarray], value: float) -> None:
    """Even-odd fill of integer paths; clipping to the image is cv2's job."""
    polys = [p for p in paths if len(p) > 0]
    if polys:
        cv2.fillPoly(image, polys, value)


def _to_pixels(pts: np.ndarray) -> np.ndarray:
    """Round finite points to int32 pixels, clamped to a range cv2 handles."""
    finite = pts[np.isfinite(pts).all(axis=1)]
    return np.clip(np.rint(finite), -MAX_ABS_COORD, MAX_ABS_COORD).astype(np.int32)


def _as_int_paths(groups: list[list[list[list[int]]]]) -> list[list[np.ndarray]]:
    """pyclipper's nested lists as int32 arrays, converted in one go (per-path np.array is slow)."""
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(chain.from_iterable(groups))), np.int32)
    flat = flat.reshape(-1, 2)
    out: list[list[np.ndarray]] = []
    pos = 0
    for paths in groups:
        arrays = []
        for path in paths:
            arrays.append(flat[pos : pos + len(path)])
            pos += len(path)
        out.append(arrays)
    return out


_EMPTY = BorderJobs(
    np.zeros((0, 2), np.float64), np.zeros((0, 2), np.int64), np.zeros(0), np.zeros((0, 4), np.int64)
)


def prepare_polygons(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    shape: tuple[int, int],
    params: DBTargetParams,
    prob_map: np.ndarray,
    prob_mask: np.ndarray,
    thresh_mask: np.ndarray,
) -> tuple[BorderJobs, int]:
    """Fill prob_map/prob_mask/thresh_mask (already reset) and return (border jobs, ignored_count).

    With a few dozen polygons per receipt the per-polygon Python overhead, not the arithmetic, costs:
    the checks run in one numba call and the only per-polygon work left is pyclipper and cv2.
    """
    if len(polygons) != len(ignore):
        raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
    h, w = prob_map.shape
    # A malformed polygon (not a list of points) has no points: degenerate, nothing to mask.
    arrays = [as_points(p) for p in polygons]
    present = [a for a in arrays if a is not None]
    starts = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([0 if a is None else a.shape[0] for a in arrays], out=starts[1:])
    points = np.concatenate(present, axis=0, dtype=np.float64) if present else np.zeros((0, 2), np.float64)
    flags = np.array([bool(g) for g in ignore], dtype=np.bool_)
    verdict, dist, boxes = polygon_stats(
        points, starts, flags, h, w, float(params.shrink_ratio), float(params.min_text_size)
    )

    ignored_count = 0
    rounded = np.rint(np.where(np.isfinite(points), points, 0.0)).astype(np.int64).tolist()
    bounds = starts.tolist()
    todo = verdict.tolist()
    dist_list = dist.tolist()
    jobs: list[int] = []
    shrunk_groups: list[list[list[list[int]]]] = []
    dilated_groups: list[list[list[list[int]]]] = []
    for k, v in enumerate(todo):
        s, e = bounds[k], bounds[k + 1]
        shrunk: list[list[list[int]]] = []
        if v == DRAW:
            d = dist_list[k]
            offset = pyclipper.PyclipperOffset()
            try:
                offset.AddPath(rounded[s:e], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
                shrunk = offset.Execute(-d)
                dilated = offset.Execute(d) if shrunk else []
            except pyclipper.ClipperException:
                shrunk = []
        if shrunk:
            shrunk_groups.append(shrunk)
            dilated_groups.append(dilated)
            jobs.append(k)
            continue
        # Flagged, degenerate, too small or shrinks to nothing: an ignore region.
        if e > s:
            _fill(prob_mask, [_to_pixels(points[s:e])], 0.0)
        if v != FLAGGED:
            ignored_count += 1
    for shrunk_paths, dilated_paths in zip(
        _as_int_paths(shrunk_groups), _as_int_paths(dilated_groups), strict=True
    ):
        _fill(prob_map, shrunk_paths, 1.0)
        _fill(thresh_mask, dilated_paths, 1.0)

    if not jobs:
        return _EMPTY, ignored_count
    sel = np.array(jobs, dtype=np.int64)
    sel = sel[(boxes[sel, 0] <= boxes[sel, 2]) & (boxes[sel, 1] <= boxes[sel, 3])]  # visible only
    spans = np.stack([starts[sel], starts[sel + 1]], axis=1)
    return BorderJobs(points, spans, dist[sel], boxes[sel]), ignored_count
