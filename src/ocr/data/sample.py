"""The one record every reader produces, so transforms and targets never care where data came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TextSample:
    """One image with its text-line polygons.

    ``image`` is HxWx3 uint8 RGB. ``polygons`` are float32 arrays of shape (N, 2), N >= 3, in the
    image's pixel coordinates. ``ignore`` marks "don't care" regions (e.g. the ``###`` transcript):
    they are masked out of the loss and the metric instead of being dropped.
    """

    image: np.ndarray
    polygons: list[np.ndarray]
    texts: list[str]
    ignore: list[bool]
    name: str
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.polygons) == len(self.texts) == len(self.ignore)):
            raise ValueError(
                f"{self.name}: polygons ({len(self.polygons)}), texts ({len(self.texts)}) and "
                f"ignore ({len(self.ignore)}) must have the same length"
            )
