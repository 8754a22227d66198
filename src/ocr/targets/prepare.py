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


def _as_points(polygon: object) -> np.ndarray | None:
    """(N, 2) float64 copy of a polygon, or None when it isn't a list of 2-D points at all."""
    try:
        pts = np.array(polygon, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if pts.ndim == 1 and pts.size % 2 == 0:
        pts = pts.reshape(-1, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        return None
    return pts


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
    lengths = [len(path) for paths in groups for path in paths]
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(chain.from_iterable(groups))), np.int32)
    flat = flat.reshape(-1, 2)
    out: list[list[np.ndarray]] = []
    pos = 0
    it = iter(lengths)
    for paths in groups:
        arrays = []
        for _ in paths:
            n = next(it)
            arrays.append(flat[pos : pos + n])
            pos += n
        out.append(arrays)
    return out


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

    Per-polygon checks run vectorised over all polygons at once: at ~50 polygons per receipt the
    Python overhead per polygon, not the arithmetic, is what costs.
    """
    if len(polygons) != len(ignore):
        raise ValueError(f"{len(polygons)} polygons but {len(ignore)} ignore flags")
    h, w = prob_map.shape
    arrays = [_as_points(p) for p in polygons]
    ignored_count = 0

    # Candidates: >= 3 points and a real ignore flag of False; the rest go straight to the mask.
    cand = [i for i, a in enumerate(arrays) if a is not None and a.shape[0] >= 3 and not ignore[i]]
    for i, a in enumerate(arrays):
        if ignore[i] or a is None or a.shape[0] < 3:
            if a is not None and a.shape[0] > 0:
                _fill(prob_mask, [_to_pixels(a)], 0.0)
            if not ignore[i]:
                ignored_count += 1

    empty = BorderJobs(
        np.zeros((0, 2), np.float64), np.zeros((0, 2), np.int64), np.zeros(0), np.zeros((0, 4), np.int64)
    )
    if not cand:
        return empty, ignored_count

    lens = np.array([arrays[i].shape[0] for i in cand], dtype=np.int64)  # type: ignore[union-attr]
    starts = np.zeros(len(cand), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    ends = starts + lens
    points = np.concatenate([arrays[i] for i in cand])
    finite_pt = np.isfinite(points).all(axis=1)
    ok = np.logical_and.reduceat(finite_pt, starts)
    safe = np.where(finite_pt[:, None], points, 0.0)  # arithmetic below must not see NaN/inf
    ok &= np.logical_and.reduceat((np.abs(safe) <= MAX_ABS_COORD).all(axis=1), starts)

    x, y = safe[:, 0], safe[:, 1]
    nxt = np.arange(1, points.shape[0] + 1)
    nxt[ends - 1] = starts
    area = 0.5 * np.abs(np.add.reduceat(x * y[nxt] - x[nxt] * y, starts))
    perimeter = np.add.reduceat(np.hypot(x[nxt] - x, y[nxt] - y), starts)
    xmin, xmax = np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)
    ymin, ymax = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    # Visible size: the bounding box of the polygon clamped to the image, as DB's min_text_size test.
    vis_w = np.clip(xmax, 0, w - 1) - np.clip(xmin, 0, w - 1)
    vis_h = np.clip(ymax, 0, h - 1) - np.clip(ymin, 0, h - 1)
    small = np.minimum(vis_w, vis_h) < params.min_text_size
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = area * (1.0 - params.shrink_ratio**2) / perimeter
    ok &= (area > 0) & np.isfinite(dist) & (dist > 0)

    good = (ok & ~small).tolist()
    dist_list = dist.tolist()
    rounded = np.rint(safe).astype(np.int64).tolist()
    bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
    jobs: list[int] = []
    shrunk_groups: list[list[list[list[int]]]] = []
    dilated_groups: list[list[list[list[int]]]] = []
    for k, (s, e) in enumerate(bounds):
        shrunk: list[list[list[int]]] = []
        if good[k]:
            d = dist_list[k]
            try:
                offset = pyclipper.PyclipperOffset()
                offset.AddPath(rounded[s:e], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
                shrunk = offset.Execute(-d)
                dilated = offset.Execute(d) if shrunk else []
            except pyclipper.ClipperException:
                shrunk = []
        if not shrunk:  # degenerate, too small, or shrinks to nothing: an ignore region
            _fill(prob_mask, [_to_pixels(points[s:e])], 0.0)
            ignored_count += 1
            continue
        shrunk_groups.append(shrunk)
        dilated_groups.append(dilated)
        jobs.append(k)
    for shrunk_paths, dilated_paths in zip(
        _as_int_paths(shrunk_groups), _as_int_paths(dilated_groups), strict=True
    ):
        _fill(prob_map, shrunk_paths, 1.0)
        _fill(thresh_mask, dilated_paths, 1.0)

    if not jobs or h == 0 or w == 0:
        return empty, ignored_count
    sel = np.array(jobs, dtype=np.int64)
    d_sel = dist[sel]
    # Every point within D of the polygon lies in [min - D, max + D]; pixels outside get 0 anyway.
    boxes = np.stack(
        [
            np.floor(xmin[sel] - d_sel),
            np.floor(ymin[sel] - d_sel),
            np.ceil(xmax[sel] + d_sel),
            np.ceil(ymax[sel] + d_sel),
        ],
        axis=1,
    ).astype(np.int64)
    visible = (boxes[:, 2] >= 0) & (boxes[:, 0] <= w - 1) & (boxes[:, 3] >= 0) & (boxes[:, 1] <= h - 1)
    sel, d_sel = sel[visible], d_sel[visible]
    boxes = np.clip(boxes[visible], 0, np.array([w - 1, h - 1, w - 1, h - 1], dtype=np.int64))
    spans = np.stack([starts[sel], ends[sel]], axis=1)
    return BorderJobs(points, np.ascontiguousarray(spans), np.ascontiguousarray(d_sel), boxes), ignored_count
