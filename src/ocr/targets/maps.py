"""The four DB target maps as one record, with the buffer bookkeeping both implementations share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(v) for v in shape)
    if h < 0 or w < 0:
        raise ValueError(f"shape must be non-negative, got {shape}")
    return h, w


@dataclass(eq=False)
class DBTargets:
    """Float32 (H, W) maps for one image.

    ``prob_map``: 1 inside shrunk text polygons. ``prob_mask``: 0 over ignore regions (flagged,
    too small or degenerate polygons), else 1. ``thresh_map``: border map rescaled to
    [thresh_min, thresh_max]. ``thresh_mask``: 1 inside the dilated polygons. ``ignored_count``
    counts polygons that *this* call turned into ignore regions (small/degenerate/shrunk to nothing),
    not those that came flagged, so the caller can log bad annotations.
    """

    prob_map: np.ndarray
    prob_mask: np.ndarray
    thresh_map: np.ndarray
    thresh_mask: np.ndarray
    ignored_count: int = 0

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DBTargets:
        """Uninitialised buffers; ``reset`` must run before use (``make_db_targets`` does)."""
        h, w = _check_shape(shape)

        def new() -> np.ndarray:
            return np.empty((h, w), dtype=np.float32)

        return cls(new(), new(), new(), new())

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.prob_map.shape
        return int(h), int(w)

    def maps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.prob_map, self.prob_mask, self.thresh_map, self.thresh_mask

    def fits(self, shape: tuple[int, int]) -> bool:
        """True when every buffer can be reused for an image of ``shape``."""
        want = _check_shape(shape)
        return all(
            m.shape == want and m.dtype == np.float32 and m.flags.c_contiguous and m.flags.writeable
            for m in self.maps()
        )

    def reset(self, thresh_fill: float = 0.0) -> None:
        """Blank state before drawing: prob_mask 1, the others 0 (thresh_map ``thresh_fill``)."""
        self.prob_map.fill(0.0)
        self.prob_mask.fill(1.0)
        self.thresh_map.fill(thresh_fill)
        self.thresh_mask.fill(0.0)
        self.ignored_count = 0
