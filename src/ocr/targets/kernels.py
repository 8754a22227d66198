"""Numba kernels drawing the DB border (threshold) map into a preallocated float32 map.

Both kernels walk each border job's pixel box row by row. Per row and edge they only visit the
pixels of the edge's bounding box grown by D (+ a margin): every other pixel is farther than D from
that edge, so the edge can't lower its value below the clip at 1. The inner loop over those pixels
keeps the smallest per-edge *squared* quantity in a row buffer (branch-free, so LLVM vectorises
it); then one sqrt per pixel. No fastmath (IEEE results, no reassociation or FMA contraction) and
``error_model="numpy"`` (x / 0 is inf, not an exception).

Why the "db" kernel is bit-identical to the numpy reference although it reorders the work:

* the reference takes ``min_e float32(clip(sqrt(q_e) / D, 0, 1))``; sqrt, division by D > 0, clip
  and the float32 cast are correctly rounded *non-decreasing* maps, which commute with min, so
  ``float32(clip(sqrt(min_e q_e) / D, 0, 1))`` is the same number. Each q_e uses the reference's
  exact operation order.
* a skipped (pixel, edge) pair is more than D + 1 px from the edge (the "db" margin), so its q_e
  maps to exactly 1.0 after the clip and the float32 cast (rounding error in q_e is many orders of
  magnitude below that 1 px), like the untouched buffer value +inf: the min is unchanged.
* the final ``v * scale + offset`` (float32, scale >= 0) is non-decreasing too, so folding it into
  the running max over polygons (map pre-filled with ``offset``) equals rescaling after the max.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Extra pixels around each edge's box for the "db" formula, whose near-corner branch decision can
# wobble by rounding; the exact formula needs none.
DB_SKIP_MARGIN = 1.0


@njit(cache=True, error_model="numpy", inline="always")
def _edges_db(
    q: np.ndarray, fx0: float, fy: float, ax: float, ay: float, bx: float, by: float, n: int
) -> None:
    """q[t] = min(q[t], classic DB squared "distance" of pixel (fx0 + t, fy) to edge a-b)."""
    square_distance = (ax - bx) * (ax - bx) + (ay - by) * (ay - by)
    dya = (fy - ay) * (fy - ay)
    dyb = (fy - by) * (fy - by)
    if square_distance == 0.0:  # zero-length edge: distance to the point
        for t in range(n):
            fx = fx0 + t
            sd1 = (fx - ax) * (fx - ax) + dya
            q[t] = min(q[t], sd1)
        return
    for t in range(n):
        fx = fx0 + t
        sd1 = (fx - ax) * (fx - ax) + dya
        sd2 = (fx - bx) * (fx - bx) + dyb
        product = sd1 * sd2
        cosin = (square_distance - sd1 - sd2) / (2.0 * np.sqrt(product))
        square_sin = 1.0 - cosin * cosin
        square_sin = 0.0 if square_sin < 0.0 else square_sin
        line = product * square_sin / square_distance
        end = min(sd1, sd2)
        d = end if (cosin < 0.0) | (product == 0.0) else line
        q[t] = min(q[t], d)


@njit(cache=True, error_model="numpy", inline="always")
def _edges_exact(
    q: np.ndarray, fx0: float, fy: float, ax: float, ay: float, bx: float, by: float, n: int
) -> None:
    """q[t] = min(q[t], squared distance of pixel (fx0 + t, fy) to segment a-b)."""
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    inv = 1.0 / length2 if length2 > 0.0 else 0.0  # zero-length edge: u = 0, the point
    ey = fy - ay
    for t in range(n):
        ex = (fx0 + t) - ax
        u = (ex * dx + ey * dy) * inv
        u = min(max(u, 0.0), 1.0)
        rx = ex - u * dx
        ry = ey - u * dy
        q[t] = min(q[t], rx * rx + ry * ry)


@njit(cache=True, error_model="numpy", inline="always")
def _border_map(
    points: np.ndarray,
    spans: np.ndarray,
    distances: np.ndarray,
    boxes: np.ndarray,
    out: np.ndarray,
    scale: np.float32,
    offset: np.float32,
    exact: bool,
    margin: float,
) -> None:
    q = np.empty(out.shape[1], dtype=np.float64)
    one = np.float32(1.0)
    for k in range(distances.shape[0]):
        s = spans[k, 0]
        n = spans[k, 1] - s
        distance = distances[k]
        reach = distance + margin
        inv_distance = np.float32(1.0 / distance)
        x0, y0, x1, y1 = boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3]
        for y in range(y0, y1 + 1):
            fy = float(y)
            lo = x1 + 1  # union of the visited x ranges of this row
            hi = x0 - 1
            for i in range(n):
                j = i + 1 if i + 1 < n else 0
                ax = points[s + i, 0]
                ay = points[s + i, 1]
                bx = points[s + j, 0]
                by = points[s + j, 1]
                if fy < min(ay, by) - reach or fy > max(ay, by) + reach:
                    continue
                xa = max(x0, math.ceil(min(ax, bx) - reach))
                xb = min(x1, math.floor(max(ax, bx) + reach))
                if xa > xb:
                    continue
                # Keep q[lo - x0 : hi - x0 + 1] initialised as the visited range grows.
                if lo > hi:
                    q[xa - x0 : xb - x0 + 1] = np.inf
                    lo, hi = xa, xb
                else:
                    if xa < lo:
                        q[xa - x0 : lo - x0] = np.inf
                        lo = xa
                    if xb > hi:
                        q[hi - x0 + 1 : xb - x0 + 1] = np.inf
                        hi = xb
                seg = q[xa - x0 : xb - x0 + 1]
                if exact:
                    _edges_exact(seg, float(xa), fy, ax, ay, bx, by, xb - xa + 1)
                else:
                    _edges_db(seg, float(xa), fy, ax, ay, bx, by, xb - xa + 1)
            if lo > hi:
                continue
            row = out[y, lo : hi + 1]
            qr = q[lo - x0 : hi - x0 + 1]
            # exact has no bit-parity to keep: float32 sqrt and a multiply, not float64 sqrt and a divide
            if exact:
                for t in range(hi - lo + 1):
                    v32 = np.sqrt(np.float32(qr[t])) * inv_distance
                    v32 = min(v32, one)
                    row[t] = max(row[t], (one - v32) * scale + offset)
            else:
                for t in range(hi - lo + 1):
                    v = np.sqrt(qr[t]) / distance
                    v = min(max(v, 0.0), 1.0)
                    val = (one - np.float32(v)) * scale + offset
                    row[t] = max(row[t], val)


@njit(cache=True, error_model="numpy")
def border_map_db(
    points: np.ndarray,
    spans: np.ndarray,
    distances: np.ndarray,
    boxes: np.ndarray,
    out: np.ndarray,
    scale: np.float32,
    offset: np.float32,
) -> None:
    """Classic DB formula, bit-identical to ``reference.draw_border_map_reference`` + rescaling.

    ``out`` must be pre-filled with ``offset``; jobs as in ``prepare.BorderJobs``.
    """
    _border_map(points, spans, distances, boxes, out, scale, offset, False, DB_SKIP_MARGIN)


@njit(cache=True, error_model="numpy")
def border_map_exact(
    points: np.ndarray,
    spans: np.ndarray,
    distances: np.ndarray,
    boxes: np.ndarray,
    out: np.ndarray,
    scale: np.float32,
    offset: np.float32,
) -> None:
    """True point-to-segment distance (projection clamped to the segment), same rescaling."""
    _border_map(points, spans, distances, boxes, out, scale, offset, True, 0.0)
