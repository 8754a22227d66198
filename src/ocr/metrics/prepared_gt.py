"""GT-side work of the detection metrics, done once per distinct ground truth and reused.

The ground truth of a validation sample is the same every epoch, yet a metric update would
otherwise rebuild it each time: CLEval quads in point order, cleval ``QUAD`` boxes (a Polygon3
object each), the pseudo-character centres, don't-care boxes minus the care boxes they overlap,
and for the IoU metric the shapely geometries with their areas and bounds. :class:`PreparedGT`
holds all of it; :class:`GTCache` maps a sample's GT *content* (a hash of the polygon bytes, texts
and flags) to its PreparedGT, so a cache hit can never serve another sample's or a changed
sample's GT.

Nothing in a PreparedGT is mutated by an update (``tests/unit/test_metrics_exact.py`` checks
that a cached GT gives the same states on its tenth use as on its first).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from cleval.box_types import QUAD
from shapely.geometry.base import BaseGeometry

from ocr.postprocess.geometry import polygons_to_quads

DC_TEXT = "###"
MAX_PLACEHOLDER_CHARS = 100


def placeholder_length(quad: np.ndarray) -> int:
    """Pseudo character count of a text quad: its long/short side ratio, as cleval does for DC boxes."""
    q = quad.reshape(4, 2).astype(np.float64)
    horiz = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    vert = (np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[3] - q[0])) / 2
    ratio = (max(horiz, vert) + 1e-5) / (min(horiz, vert) + 1e-5)
    return int(min(max(round(0.5 + ratio), 1), MAX_PLACEHOLDER_CHARS))


def dc_flags_and_letters(
    texts: Sequence[str], ignore: Sequence[bool], quads: np.ndarray
) -> tuple[list[bool], list[str]]:
    """cleval's ``gt_is_dcs`` and ``gt_letters`` for (M, 8) GT quads (see ``ocr.metrics.cleval_metric``).

    A ``###`` line is don't-care as well as an ignored one. A non-DC GT with an empty transcript
    would weigh 0 and could never be matched, so it gets a placeholder of pseudo characters.
    """
    is_dc = [ig or t == DC_TEXT for t, ig in zip(texts, ignore, strict=True)]
    letters = [
        t if (dc or t) else "x" * placeholder_length(q) for t, dc, q in zip(texts, is_dc, quads, strict=True)
    ]
    return is_dc, letters


def quad_bounds(quads: np.ndarray) -> np.ndarray:
    """(K, 4, 2) quads -> (K, 4) integer-widened boxes (xmin, ymin, xmax, ymax) for overlap grouping."""
    if len(quads) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    return np.concatenate([np.floor(quads.min(axis=1)), np.ceil(quads.max(axis=1))], axis=1).astype(
        np.float64
    )


@dataclass
class CLEvalGT:
    """The CLEval side: quads, letters, DC flags, cleval boxes (DC already minus care) and PCCs."""

    quads: np.ndarray  # (M, 8) float32, clockwise from top-left
    letters: list[str]
    is_dc: list[bool]
    boxes: list[QUAD]
    pccs: list[list[tuple[float, float]]]
    bounds: np.ndarray  # (M, 4)
    num_chars: list[int]  # len(letters) of care boxes, 0 for DC
    pcc_flat: list[tuple[float, float]]  # every PCC, as cleval computed it, GT after GT
    pcc_xy: np.ndarray  # (P, 2) float64 of the same points
    pcc_owner: np.ndarray  # (P,) the GT index of each


@dataclass
class IoUGT:
    """The IoU side: shapely geometries, split into care and don't-care, with areas and bounds."""

    care: np.ndarray  # object array of geometries
    care_area: np.ndarray
    care_bounds: np.ndarray
    dc: np.ndarray
    dc_bounds: np.ndarray


@dataclass
class PreparedGT:
    """One image's ground truth, normalised once; the metrics build their parts lazily and keep them."""

    polygons: list[np.ndarray]
    texts: list[str]
    ignore: list[bool]
    _parts: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.polygons)

    @classmethod
    def build(
        cls,
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
    ) -> PreparedGT:
        n = len(gt_polys)
        texts = [""] * n if gt_texts is None else [str(t) for t in gt_texts]
        ignore = [False] * n if gt_ignore is None else [bool(v) for v in gt_ignore]
        if not (len(texts) == len(ignore) == n):
            raise ValueError(f"{n} GT polygons, {len(texts)} texts, {len(ignore)} ignore flags")
        return cls([np.asarray(p) for p in gt_polys], texts, ignore)

    def cleval(self, vertical_aspect_ratio_thresh: float, case_sensitive: bool = True) -> CLEvalGT:
        key = ("cleval", float(vertical_aspect_ratio_thresh), bool(case_sensitive))
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _build_cleval(self, vertical_aspect_ratio_thresh, case_sensitive)
        return part

    def iou(self) -> IoUGT:
        part = self._parts.get("iou")
        if part is None:
            part = self._parts["iou"] = _build_iou(self)
        return part


def _build_cleval(gt: PreparedGT, vertical_thresh: float, case_sensitive: bool) -> CLEvalGT:
    quads4 = polygons_to_quads(gt.polygons)
    quads = quads4.reshape(-1, 8)
    is_dc, letters = dc_flags_and_letters(gt.texts, gt.ignore, quads)
    boxes = [
        QUAD(quads[i], confidence=0.0, transcription=letters[i], is_dc=is_dc[i]) for i in range(len(quads))
    ]
    if not case_sensitive:  # cleval's prepare_gt does this per call; the lengths do not change
        for box in boxes:
            box.transcription = box.transcription.upper()
    pccs = [box.pseudo_character_center(vertical_thresh) for box in boxes]
    # cleval's prepare_gt: Area(don't care) - Area(care GT it overlaps), in the same order. Only
    # overlapping boxes change anything, so doing it over the whole image equals doing it per group.
    for d in (i for i, dc in enumerate(is_dc) if dc):
        for i in range(len(boxes)):
            if not is_dc[i] and boxes[i] & boxes[d] > 0:
                boxes[d].subtract(boxes[i])
    num_chars = [0 if dc else len(box.transcription) for box, dc in zip(boxes, is_dc, strict=True)]
    flat = [tuple(p) for pts in pccs for p in pts]
    owner = np.repeat(np.arange(len(pccs)), [len(pts) for pts in pccs]).astype(np.int64)
    xy = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    return CLEvalGT(quads, letters, is_dc, boxes, pccs, quad_bounds(quads4), num_chars, flat, xy, owner)


def to_geometry(points: np.ndarray) -> BaseGeometry:
    """(N, 2) points -> a valid polygonal shapely geometry (possibly empty).

    Self-intersecting polygons (e.g. badly ordered quads) go through ``make_valid``, keeping
    only their polygonal parts; that keeps both lobes of a bow-tie, where ``buffer(0)`` drops one.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return shapely.Polygon()
    geom = shapely.Polygon(pts)
    if geom.is_valid:
        return geom
    fixed = shapely.make_valid(geom)
    if isinstance(fixed, shapely.Polygon | shapely.MultiPolygon):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", []) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def geometries(polys: Sequence[np.ndarray]) -> np.ndarray:
    """Object array of valid shapely geometries, equal to ``to_geometry`` of each polygon.

    Quads are built in one vectorised ``shapely.polygons`` call; the rare invalid or non-quad
    polygons go through :func:`to_geometry`.
    """
    out = np.empty(len(polys), dtype=object)
    if len(polys) == 0:
        return out
    arrays = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
    quad_idx = [i for i, a in enumerate(arrays) if len(a) == 4]
    if quad_idx:
        built = shapely.polygons(np.stack([arrays[i] for i in quad_idx]))
        valid = shapely.is_valid(built)
        for k, i in enumerate(quad_idx):
            out[i] = built[k] if valid[k] else to_geometry(arrays[i])
    for i, a in enumerate(arrays):
        if len(a) != 4:
            out[i] = to_geometry(a)
    return out


def _build_iou(gt: PreparedGT) -> IoUGT:
    geoms = geometries(gt.polygons)
    ignore = np.asarray(gt.ignore, dtype=bool)
    care, dc = geoms[~ignore], geoms[ignore]
    return IoUGT(care, shapely.area(care), shapely.bounds(care), dc, shapely.bounds(dc))


def gt_fingerprint(
    gt_polys: Sequence[np.ndarray], gt_texts: Sequence[str] | None, gt_ignore: Sequence[bool] | None
) -> bytes:
    """A content hash of one image's GT: polygon dtype, shape and bytes, texts and ignore flags."""
    h = hashlib.blake2b(digest_size=16)
    for p in gt_polys:
        a = np.ascontiguousarray(p)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(b"\x00texts" if gt_texts is not None else b"\x00no-texts")
    for t in gt_texts or ():
        h.update(str(t).encode("utf-8", "surrogatepass") + b"\x00")
    h.update(b"\x00ignore" if gt_ignore is not None else b"\x00no-ignore")
    h.update(bytes(bool(v) for v in (gt_ignore or ())))
    return h.digest()


class GTCache:
    """LRU of :class:`PreparedGT` keyed by GT content; ``max_entries`` 0 disables it."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, PreparedGT] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
    ) -> PreparedGT:
        if self.max_entries <= 0:
            self.misses += 1
            return PreparedGT.build(gt_polys, gt_texts, gt_ignore)
        key = gt_fingerprint(gt_polys, gt_texts, gt_ignore)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        prepared = PreparedGT.build(gt_polys, gt_texts, gt_ignore)
        self._entries[key] = prepared
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return prepared

    def resolve(
        self,
        gt: PreparedGT | None,
        gt_polys: Sequence[np.ndarray],
        gt_texts: Sequence[str] | None = None,
        gt_ignore: Sequence[bool] | None = None,
    ) -> PreparedGT:
        """The caller's prepared ``gt`` (checked against ``gt_polys``), or by default the cached one."""
        if gt is None:
            return self.get(gt_polys, gt_texts, gt_ignore)
        if len(gt) != len(gt_polys):
            raise ValueError(f"prepared GT has {len(gt)} polygons, gt_polys {len(gt_polys)}")
        return gt

    def clear(self) -> None:
        self._entries.clear()
