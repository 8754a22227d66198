"""Do two detectors give the same boxes? Used to hold the ONNX model to the torch one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def matched_boxes(a: Sequence[np.ndarray], b: Sequence[np.ndarray], tol: float = 1.0) -> int:
    """How many boxes of ``a`` have a partner in ``b`` with every corner within ``tol`` px.

    Greedy one-to-one matching (each box of ``b`` is used once); boxes of different point counts
    never match.
    """
    free = [np.asarray(q, np.float32).reshape(-1, 2) for q in b]
    used = [False] * len(free)
    matched = 0
    for p in a:
        pts = np.asarray(p, np.float32).reshape(-1, 2)
        for j, q in enumerate(free):
            if not used[j] and q.shape == pts.shape and float(np.abs(q - pts).max()) <= tol:
                used[j] = True
                matched += 1
                break
    return matched


def box_agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray], tol: float = 1.0) -> dict[str, int]:
    """Counts for one image: boxes in each, matched boxes, and whether the counts agree."""
    return {
        "boxes_a": len(a),
        "boxes_b": len(b),
        "matched": matched_boxes(a, b, tol),
        "same_count": int(len(a) == len(b)),
    }


__all__ = ["box_agreement", "matched_boxes"]
