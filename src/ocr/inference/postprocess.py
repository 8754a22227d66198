"""The one place predict turns probability maps into polygons.

Kept behind this single function so that a pool of evaluator processes (ordered results) can
replace the in-process loop without touching the backends or the writer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ocr.postprocess.db_postprocess import DBPostProcessor, Detections, Meta


def postprocess_batch(
    postprocessor: DBPostProcessor, prob: np.ndarray, metas: Sequence[Meta]
) -> list[Detections]:
    """(B, H, W) float32 maps of the network input -> per image (polygons, scores) in original pixels."""
    if prob.ndim != 3 or prob.shape[0] != len(metas):
        raise ValueError(f"expected {len(metas)} maps (B, H, W), got shape {prob.shape}")
    return [postprocessor(prob[i], meta) for i, meta in enumerate(metas)]


__all__ = ["postprocess_batch"]
