"""DB targets: probability (shrink) map, threshold (border) map and their masks.

Public API: :func:`make_db_targets` (fast, numba), :func:`make_db_targets_reference` (readable numpy
oracle), :class:`DBTargetParams`, :class:`DBTargets`, and the node-wide
target cache :class:`PolygonCache` (docs/cache.md).
"""

from ocr.targets.cache import PolygonCache
from ocr.targets.db_targets import make_db_targets, slowdown_injected
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.reference import make_db_targets_reference

__all__ = [
    "DBTargetParams",
    "DBTargets",
    "PolygonCache",
    "make_db_targets",
    "make_db_targets_reference",
    "slowdown_injected",
]
