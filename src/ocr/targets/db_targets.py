"""DB training targets, the one public entry point (:func:`make_db_targets`).

Two border ("threshold") map formulas, chosen by ``DBTargetParams.formula``:

* ``"exact"`` (default): the true distance from a pixel to the polygon's edges (projection onto each
  segment clamped to its ends). The border map is ``1 - min(dist / D, 1)`` exactly as the DB paper
  defines it.
* ``"db"``: the original DB code's formula (also in PaddleOCR, MMOCR, docTR). Where the angle at the
  pixel subtended by an edge is acute it uses the nearer *endpoint* distance, otherwise the distance
  to the edge's infinite line; so it overestimates the distance near corners and far along short
  edges (a lower border value there). Kept bit-identical to :mod:`ocr.targets.reference` for parity
  with published checkpoints and as the correctness oracle of the fast path.

Both formulas give identical ``prob_map``, ``prob_mask`` and ``thresh_mask``; only ``thresh_map``
differs. Polygon bookkeeping is shared with the reference (:mod:`ocr.targets.prepare`); the border
map is drawn by a numba kernel (:mod:`ocr.targets.kernels`) over each polygon's pixel box.

``OCR_PERF_INJECT_SLOWDOWN=1`` in the environment makes :func:`make_db_targets` use the slow
reference instead and every :class:`~ocr.targets.cache.PolygonCache` read miss (target and whole-
sample entries), and the training loader's workers stop at each epoch's end (no epoch-spanning
prefetch, ``ocr.data.datamodule``): the performance regression suite uses it to prove that it
catches a slowdown.
:func:`slowdown_injected` is the one place that reads the variable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocr.perf.inject import INJECT_ENV, injected
from ocr.targets.kernels import border_map_db, border_map_exact
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.prepare import prepare_polygons, thresh_affine
from ocr.targets.reference import make_db_targets_reference

SLOWDOWN_ENV = INJECT_ENV  # the name the tests and the perf suite import
_KERNELS = {"db": border_map_db, "exact": border_map_exact}


def slowdown_injected() -> bool:
    """True when ``OCR_PERF_INJECT_SLOWDOWN`` asks for the reference (``1`` or ``targets``); see
    :mod:`ocr.perf.inject` for the other stages. Read per call so tests can toggle it."""
    return injected("targets")


def make_db_targets(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    shape: tuple[int, int],
    params: DBTargetParams | None = None,
    out: DBTargets | None = None,
) -> DBTargets:
    """DB targets for one image of ``shape`` = (H, W).

    ``polygons`` are (N, 2) float arrays in pixel coordinates (may cross or lie outside the image,
    may be degenerate: those become ignore regions and are counted, never raise). When ``out`` has
    float32 C-contiguous buffers of ``shape`` they are reset and reused and ``out`` is returned;
    otherwise fresh buffers are allocated. The returned maps are overwritten by the next call that
    reuses them: copy before handing them on if the previous result must survive.
    """
    params = params or DBTargetParams()
    if slowdown_injected():
        result = make_db_targets_reference(polygons, ignore, shape, params)
        if out is not None and out.fits(shape):
            for dst, src in zip(out.maps(), result.maps(), strict=True):
                dst[...] = src
            out.ignored_count = result.ignored_count
            return out
        return result

    scale, offset = thresh_affine(params)
    targets = out if out is not None and out.fits(shape) else DBTargets.empty(shape)
    targets.reset(thresh_fill=float(offset))
    jobs, ignored = prepare_polygons(
        polygons, ignore, shape, params, targets.prob_map, targets.prob_mask, targets.thresh_mask
    )
    if len(jobs):
        _KERNELS[params.formula](
            jobs.points, jobs.spans, jobs.distances, jobs.boxes, targets.thresh_map, scale, offset
        )
    targets.ignored_count = ignored
    return targets
