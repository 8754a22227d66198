"""Parameters of the DB training targets, hashable so a target cache can key on them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Formula = Literal["db", "exact"]
FORMULAS: tuple[str, ...] = ("db", "exact")


@dataclass(frozen=True)
class DBTargetParams:
    """How polygons become DB targets.

    ``shrink_ratio`` is the DB paper's r: polygons are shrunk (prob map) and dilated (threshold map)
    by D = area * (1 - r**2) / perimeter. ``thresh_min``/``thresh_max`` rescale the border map.
    Polygons whose visible bounding box has a side shorter than ``min_text_size`` pixels become
    ignore regions. ``formula`` picks the border distance: ``"db"`` is the original DB code's
    approximation, ``"exact"`` the true point-to-segment distance (see ``ocr.targets.db_targets``).
    """

    shrink_ratio: float = 0.4
    thresh_min: float = 0.3
    thresh_max: float = 0.7
    min_text_size: float = 8
    formula: Formula = "exact"

    def __post_init__(self) -> None:
        if self.formula not in FORMULAS:
            raise ValueError(f"formula must be one of {FORMULAS}, got {self.formula!r}")
        if not (0.0 < self.shrink_ratio < 1.0):
            raise ValueError(f"shrink_ratio must be in (0, 1), got {self.shrink_ratio}")
        if not all(math.isfinite(v) for v in (self.thresh_min, self.thresh_max, self.min_text_size)):
            raise ValueError("thresh_min, thresh_max and min_text_size must be finite")
        # The fast path folds the rescaling into a running max, which needs a non-decreasing map.
        if self.thresh_min > self.thresh_max:
            raise ValueError(f"thresh_min ({self.thresh_min}) must be <= thresh_max ({self.thresh_max})")
        if self.min_text_size < 0:
            raise ValueError(f"min_text_size must be >= 0, got {self.min_text_size}")

    def as_key(self) -> tuple[str, float, float, float, float, str]:
        """A stable, versioned tuple for cache keys (floats as ``repr`` so equal params give equal keys)."""
        return (
            "db-targets-v1",
            float(self.shrink_ratio),
            float(self.thresh_min),
            float(self.thresh_max),
            float(self.min_text_size),
            str(self.formula),
        )
