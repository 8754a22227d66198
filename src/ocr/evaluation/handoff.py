"""Compact probability maps for the hand-off to the evaluators, and their decoding.

``uint8`` keeps the binarisation exact: codes are ``round(255 p)``, then every pixel above the
post-processor's ``thresh`` gets a code whose decoded value is above ``thresh`` and every other
pixel one whose decoded value is not. The bitmap DB post-processing thresholds is therefore
bit-identical to the float32 one, and so are the contours, the size filters and the unclipped
boxes. Only the box score (mean probability inside a contour) moves, by less than 1/255; a
candidate is kept or dropped differently only when its float32 score lies that close to
``box_thresh``. ``float32`` is exact in every respect; ``float16`` is exact in neither.

An image's GT polygons travel to the evaluators packed (:func:`pack_polygons`): one array and the
polygons' lengths pickle in a fraction of the time a list of small arrays takes.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

DECODE_UINT8 = np.arange(256, dtype=np.float32) / np.float32(255.0)
_LUT_ROW = DECODE_UINT8.reshape(1, 256)  # the table as cv2.LUT takes it
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "uint8": np.dtype(np.uint8),
    "float16": np.dtype(np.float16),
    "float32": np.dtype(np.float32),
}
TORCH_DTYPES = {"uint8": torch.uint8, "float16": torch.float16, "float32": torch.float32}


def resolve_handoff(handoff: str, device: torch.device) -> str:
    if handoff == "auto":
        return "uint8" if device.type == "cuda" else "float32"
    return handoff


def last_code_not_above(thresh: float) -> int:
    """The largest uint8 code whose decoded value is not above ``thresh`` (-1: none is)."""
    return int(np.count_nonzero(np.float32(thresh) >= DECODE_UINT8)) - 1


def encode_maps(prob: torch.Tensor, handoff: str, thresh: float) -> torch.Tensor:
    """(B, H, W) probabilities -> the hand-off encoding, on the same device."""
    prob = prob.float()
    if handoff == "float32":
        return prob
    if handoff == "float16":
        return prob.half()
    if handoff != "uint8":
        raise ValueError(f"unknown hand-off encoding {handoff!r}")
    codes = (prob * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    last = last_code_not_above(thresh)
    if 0 <= last < 255:
        # the comparison DBPostProcessor makes (float32 map against the Python float threshold)
        above = prob > thresh
        codes = torch.where(above, codes.clamp(min=last + 1), codes.clamp(max=last))
    return codes


def decode_map(raw: np.ndarray, handoff: str) -> np.ndarray:
    """One encoded (H, W) map -> float32 probabilities (a view for float32, a copy otherwise)."""
    if handoff == "float32":
        return raw
    if handoff == "uint8":
        # the same table lookup as DECODE_UINT8[raw], bit for bit, in a fraction of numpy's
        # gather time (docs/figures.md); the evaluators run it on every map
        return cv2.LUT(np.ascontiguousarray(raw), _LUT_ROW).reshape(raw.shape)
    return raw.astype(np.float32)


PackedPolygons = tuple[np.ndarray, np.ndarray]  # (all points, concatenated; each polygon's length)


def pack_polygons(polygons: Any) -> Any:
    """(N_i, 2) polygons -> :data:`PackedPolygons`; anything else (mixed dtypes...) as it is.

    Only polygons of one dtype are packed, so :func:`unpack_polygons` gives back the same values
    in the same dtype, bit for bit.
    """
    if not isinstance(polygons, list) or not polygons:
        return polygons
    first = polygons[0]
    if not all(isinstance(p, np.ndarray) and p.ndim == 2 and p.dtype == first.dtype for p in polygons):
        return polygons
    lengths = np.fromiter((len(p) for p in polygons), np.int64, len(polygons))
    return np.concatenate(polygons), lengths


def unpack_polygons(packed: Any) -> Any:
    """The inverse of :func:`pack_polygons`: a list of views into the one array."""
    if not isinstance(packed, tuple):
        return packed
    points, lengths = packed
    ends = np.cumsum(lengths).tolist()
    return [points[end - n : end] for end, n in zip(ends, lengths.tolist(), strict=True)]
