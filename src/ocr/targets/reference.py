"""Readable numpy reference of the DB targets with the original ("db") border formula.

Written like the original DB code (MakeShrinkMap / MakeBorderMap): per polygon, per edge, whole-box
numpy arrays. It favours clarity over speed and is the oracle the fast path must match bit for
bit when ``formula="db"``; ``params.formula`` is ignored here. Polygon bookkeeping (validation, D,
pyclipper, fills) lives in :mod:`ocr.targets.prepare`, shared with the fast path.

Fixes kept relative to the original: no NaN ever (``1 - cosin**2`` is clipped at 0 instead of
``nan_to_num``-ed, a pixel on an endpoint and a zero-length edge are handled explicitly) and the
map is only computed inside the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.prepare import BorderJobs, prepare_polygons, thresh_affine


def classic_edge_distance(xs: np.ndarray, ys: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """The original DB per-edge "distance" from pixels (xs, ys) to segment p1-p2, NaN-free.

    Where the angle at the pixel is acute (``cosin < 0``) it returns the distance to the nearer
    endpoint, else the distance to the edge's *line*: a documented overestimate near corners that we
    keep for parity with DB. A pixel sitting on an endpoint is 0; a zero-length edge is a point.
    """
    square_distance_1 = np.square(xs - p1[0]) + np.square(ys - p1[1])
    square_distance_2 = np.square(xs - p2[0]) + np.square(ys - p2[1])
    square_distance = np.square(p1[0] - p2[0]) + np.square(p1[1] - p2[1])
    if square_distance == 0:
        return np.sqrt(square_distance_1)

    product = square_distance_1 * square_distance_2
    with np.errstate(divide="ignore", invalid="ignore"):  # product == 0 is overwritten below
        cosin = (square_distance - square_distance_1 - square_distance_2) / (2 * np.sqrt(product))
        square_sin = 1 - np.square(cosin)
        square_sin = np.where(square_sin < 0, 0.0, square_sin)  # rounding can push |cosin| past 1
        result = np.sqrt(product * square_sin / square_distance)
    near_endpoint = (cosin < 0) | (product == 0)
    result[near_endpoint] = np.sqrt(np.fmin(square_distance_1, square_distance_2))[near_endpoint]
    return result


def draw_border_map_reference(jobs: BorderJobs, canvas: np.ndarray) -> None:
    """fmax each polygon's ``1 - clip(dist / D, 0, 1)`` into ``canvas`` (float32, starts at 0)."""
    for k in range(len(jobs)):
        s, e = jobs.spans[k]
        polygon = jobs.points[s:e]
        distance = float(jobs.distances[k])
        x0, y0, x1, y1 = (int(v) for v in jobs.boxes[k])
        height, width = y1 - y0 + 1, x1 - x0 + 1
        xs = np.broadcast_to(np.arange(x0, x1 + 1, dtype=np.float64).reshape(1, width), (height, width))
        ys = np.broadcast_to(np.arange(y0, y1 + 1, dtype=np.float64).reshape(height, 1), (height, width))

        distance_map = np.zeros((polygon.shape[0], height, width), dtype=np.float32)
        for i in range(polygon.shape[0]):
            j = (i + 1) % polygon.shape[0]
            absolute_distance = classic_edge_distance(xs, ys, polygon[i], polygon[j])
            distance_map[i] = np.clip(absolute_distance / distance, 0, 1)
        distance_map = distance_map.min(axis=0)
        canvas[y0 : y1 + 1, x0 : x1 + 1] = np.fmax(1 - distance_map, canvas[y0 : y1 + 1, x0 : x1 + 1])


def make_db_targets_reference(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    shape: tuple[int, int],
    params: DBTargetParams | None = None,
) -> DBTargets:
    """DB targets for one image of ``shape`` = (H, W), computed the slow, obvious way."""
    params = params or DBTargetParams()
    targets = DBTargets.empty(shape)
    targets.reset()
    jobs, ignored = prepare_polygons(
        polygons, ignore, shape, params, targets.prob_map, targets.prob_mask, targets.thresh_mask
    )
    draw_border_map_reference(jobs, targets.thresh_map)
    scale, offset = thresh_affine(params)
    targets.thresh_map[...] = targets.thresh_map * scale + offset
    targets.ignored_count = ignored
    return targets
