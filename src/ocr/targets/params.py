"""Parameters of the DB training targets, hashable so a target cache can key on them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ocr.errors import UserInputError
from ocr.schema import TargetKnobs, check_fields

Formula = Literal["db", "exact"]


@dataclass(frozen=True)
class DBTargetParams:
    """How polygons become DB targets.

    ``shrink_ratio`` is the DB paper's r: polygons are shrunk (prob map) and dilated (threshold map)
    by D = area * (1 - r**2) / perimeter. ``thresh_min``/``thresh_max`` rescale the border map.
    Polygons whose visible bounding box has a side shorter than ``min_text_size`` pixels become
    ignore regions. ``formula`` picks the border distance: ``"db"`` is the original DB code's
    approximation, ``"exact"`` the true point-to-segment distance (see ``ocr.targets.db_targets``).

    The ranges are the config's (:class:`ocr.schema.TargetKnobs`, ``data.targets.*``), checked here
    again for params built in Python, where no config was composed.
    """

    shrink_ratio: float = 0.4
    thresh_min: float = 0.3
    thresh_max: float = 0.7
    min_text_size: float = 8
    formula: Formula = "exact"

    def __post_init__(self) -> None:
        check_fields(TargetKnobs(**asdict(self)), "data.targets.")
        # The fast path folds the rescaling into a running max, which needs a non-decreasing map.
        if self.thresh_min > self.thresh_max:
            raise UserInputError(
                f"data.targets.thresh_min={self.thresh_min}: must be <= "
                f"data.targets.thresh_max ({self.thresh_max})"
            )

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
