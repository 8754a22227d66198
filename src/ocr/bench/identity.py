"""The one bit-identity check of the benchmarks and the performance suite.

"Identical" there means the same bits, dtype and shape: ``==`` would call -0.0 and 0.0 equal and
NaN unequal to itself, and a fast path that differs from its reference only in such a value would
still change what training or evaluation sees.
"""

from __future__ import annotations

import numpy as np

from ocr.targets.maps import DBTargets


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays: same shape, dtype and bytes (NaN and -0.0 included)."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def same_targets(a: DBTargets, b: DBTargets) -> bool:
    """Bit-identical target maps with the same ignore count."""
    return a.ignored_count == b.ignored_count and all(
        same_bits(x, y) for x, y in zip(a.maps(), b.maps(), strict=True)
    )
