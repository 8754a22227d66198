"""CLEval detection statistics of one image without the result objects cleval builds for dumping.

``cleval.eval_functions.evaluation`` (0.1.1) does, per call: ``prepare_gt`` (pseudo-character
centres, don't-care minus care areas), the area-precision and PCC-inclusion matrices, the
don't-care detections, the match matrix, ``get_box_results`` (a ``GTBoxResult``/``DetBoxResult``
with rounded ``Point`` lists for every box: only read when results are dumped) and ``eval_det``.
Here the GT part comes precomputed (:class:`~ocr.metrics.prepared_gt.CLEvalGT`), the box results
are never built, and the image is cut into connected groups of boxes whose bounding boxes touch
(no rule of CLEval looks at a pair that does not overlap, so per-group stats sum to the image's).

Each group is evaluated by the cheapest exact route:

* GT only: every care GT is missed; it adds its character count to ``num_char_gt``.
* detections only: every detection is a false positive of cleval's pseudo length
  ``min(round(0.5 + 1 / (1e-5 + aspect)), 10)``, added to ``num_char_fp`` and ``num_char_det``.
* one GT and one detection (most groups of a good model): cleval's rules in closed form, on
  cleval's own geometry (the Polygon3 intersection, ``isInside`` for the PCCs, float32 area
  precision against a float32 constraint, as ``ap_mat >= ap_constraint`` compares).
* anything else: cleval's own functions, in ``evaluation``'s order, minus ``get_box_results``.

``tests/unit/test_metrics_exact.py`` compares every summed state with the official whole-image
``CLEvalMetric.update`` on rotated, split, merged, don't-care, trapezoid and random receipts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from cleval.box_types import QUAD
from cleval.data import SampleResult, Stats
from cleval.eval_functions import (
    EvalMaterial,
    calc_area_precision,
    calc_match_matrix,
    calc_pcc_inclusion,
    eval_det,
    get_det_dc_indices,
)

from ocr.metrics.prepared_gt import CLEvalGT, quad_bounds


def fp_chars(box: QUAD) -> int:
    """cleval's ``get_num_fp_char`` weight of one unmatched detection."""
    return min(round(0.5 + 1 / (1e-5 + box.aspect_ratio())), 10)


class Tally:
    """The summed detection stats of one image (the fields ``CLEvalMetric.__accumulate`` reads)."""

    __slots__ = (
        "gran_precision",
        "gran_recall",
        "num_char_det",
        "num_char_fp",
        "num_char_gt",
        "num_char_overlapped",
        "num_merged",
        "num_splitted",
        "tp_precision",
        "tp_recall",
    )

    def __init__(self) -> None:
        self.num_char_gt = self.num_char_det = self.num_char_fp = 0
        self.tp_recall = self.tp_precision = 0
        self.gran_recall = self.gran_precision = 0.0
        self.num_splitted = self.num_merged = self.num_char_overlapped = 0

    def add_stats(self, stats: Stats) -> None:
        det = stats.det
        self.num_char_gt += det.num_char_gt
        self.num_char_det += det.num_char_det
        self.num_char_fp += det.num_char_fp
        self.tp_recall += det.num_char_tp_recall
        self.tp_precision += det.num_char_tp_precision
        self.gran_recall += det.gran_score_recall
        self.gran_precision += det.gran_score_precision
        self.num_splitted += stats.num_splitted
        self.num_merged += stats.num_merged
        self.num_char_overlapped += stats.num_char_overlapped

    def as_stats(self) -> Stats:
        stats = Stats()
        det = stats.det
        det.num_char_gt, det.num_char_det, det.num_char_fp = (
            self.num_char_gt,
            self.num_char_det,
            self.num_char_fp,
        )
        det.num_char_tp_recall, det.num_char_tp_precision = self.tp_recall, self.tp_precision
        det.gran_score_recall, det.gran_score_precision = self.gran_recall, self.gran_precision
        stats.num_splitted, stats.num_merged = self.num_splitted, self.num_merged
        stats.num_char_overlapped = self.num_char_overlapped
        return stats


def group_stats(
    options: Any,
    gt_boxes: Sequence[QUAD],
    gt_pccs: Sequence[list[tuple[float, float]]],
    gt_is_dc: Sequence[bool],
    det_boxes: Sequence[QUAD],
) -> Stats:
    """cleval's ``evaluation`` (detection part) for boxes whose GT side is already prepared.

    The steps and their order are ``evaluation``'s; ``prepare_gt`` was done once for the image
    (:func:`~ocr.metrics.prepared_gt._build_cleval`), ``get_box_results`` is skipped: ``eval_det``
    reads the matches and the matrices only.
    """
    len_gt, len_det = len(gt_boxes), len(det_boxes)
    gt_dc_indices = {i for i in range(len_gt) if gt_is_dc[i]}
    ap_constraint = options.AREA_PRECISION_CONSTRAINT
    ap_mat, ap_mat_binary = calc_area_precision(gt_boxes, det_boxes, ap_constraint)
    pcc_mat_list, pcc_mat_sum = calc_pcc_inclusion(det_boxes, gt_pccs)
    det_dc_indices = get_det_dc_indices(
        gt_dc_indices, pcc_mat_sum, ap_mat, ap_mat_binary, ap_constraint, len_det
    )
    material = EvalMaterial(
        list(gt_pccs),
        pcc_mat_list,
        pcc_mat_sum,
        ap_mat,
        ap_mat_binary,
        ap_constraint,
        set(range(len_gt)) - gt_dc_indices,
        set(range(len_det)) - det_dc_indices,
        len_gt,
        len_det,
    )
    match_mat, match_results = calc_match_matrix(material)
    sample = SampleResult(match_results, [], [])
    eval_det(options, sample, gt_boxes, det_boxes, material, match_mat)
    return sample.stats


def _one_to_one(tally: Tally, gt: CLEvalGT, i: int, det: QUAD, ap_ok: bool, inside: int) -> None:
    """One GT and one detection, connected only to each other: ``evaluation``'s outcome in closed form.

    ``ap_ok``: area precision ``>=`` the constraint; ``inside``: how many of the GT's PCCs lie in the det.

    * a DC GT: the det is don't-care iff ``ap_ok`` (``get_det_dc_indices``; with one DC GT its
      ``ap_sum`` rule is the same comparison), else a false positive;
    * a care GT: matched (one-to-one) iff ``ap_ok`` and ``inside > 0``; a match scores ``inside``
      as TP on both sides (no granularity penalty for 1:1), a miss leaves the GT's characters
      unfound and the det a false positive (``calc_match_matrix`` clears unmatched PCC counts).
    """
    if gt.is_dc[i]:
        if not ap_ok:
            _false_positive(tally, det)
        return
    tally.num_char_gt += gt.num_chars[i]
    if ap_ok and inside > 0:
        tally.tp_recall += inside
        tally.tp_precision += inside
        tally.num_char_det += inside
    else:
        _false_positive(tally, det)


def _false_positive(tally: Tally, det: QUAD) -> None:
    fp = fp_chars(det)
    tally.num_char_fp += fp
    tally.num_char_det += fp


def pair_matrices(
    options: Any, gt: CLEvalGT, det_boxes: Sequence[QUAD], det_bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(G, D) ``ap >= constraint`` and PCC-inclusion counts, as cleval computes them, for every pair.

    Only pairs that can be non-zero are computed: the intersection for boxes whose bounds meet, and
    ``isInside`` for PCCs inside a detection's bounds (cleval's polygon lies within them). Area
    precision is cleval's: a float64 ratio stored as float32 (``calc_area_precision``), compared
    with the constraint as ``ap_mat >= ap_constraint`` does.
    """
    n_gt, n_det = len(gt.boxes), len(det_boxes)
    gb, db = gt.bounds, det_bounds
    meet = (
        (gb[:, None, 0] <= db[None, :, 2])
        & (db[None, :, 0] <= gb[:, None, 2])
        & (gb[:, None, 1] <= db[None, :, 3])
        & (db[None, :, 1] <= gb[:, None, 3])
    )
    ap = np.zeros((n_gt, n_det), dtype=np.float32)
    for g, d in zip(*np.nonzero(meet), strict=True):
        det = det_boxes[d]
        det_area = det.area()
        if det_area > 0.0:
            ap[g, d] = (gt.boxes[g] & det) / det_area
    ap_ok = ap >= options.AREA_PRECISION_CONSTRAINT

    inside = np.zeros((n_gt, n_det), dtype=np.int64)
    xy = gt.pcc_xy
    if len(xy):
        in_bounds = (
            (xy[:, None, 0] >= db[None, :, 0])
            & (xy[:, None, 0] <= db[None, :, 2])
            & (xy[:, None, 1] >= db[None, :, 1])
            & (xy[:, None, 1] <= db[None, :, 3])
        )
        points, dets = np.nonzero(in_bounds)
        flat = gt.pcc_flat
        hit = np.fromiter(
            (det_boxes[d].is_inside(*flat[p]) for p, d in zip(points.tolist(), dets.tolist(), strict=True)),
            dtype=bool,
            count=len(points),
        )
        np.add.at(inside, (gt.pcc_owner[points[hit]], dets[hit]), 1)
    return ap_ok, inside


def _components(n_gt: int, n_det: int, edges: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Connected components of the bipartite GT/det graph ``edges`` (G, D): (GT ids, det ids) each,
    ascending; unconnected boxes are components of their own."""
    parent = list(range(n_gt + n_det))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g, d in zip(*np.nonzero(edges), strict=True):
        a, b = find(int(g)), find(n_gt + int(d))
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, tuple[list[int], list[int]]] = {}
    for node in range(n_gt + n_det):
        gs, ds = members.setdefault(find(node), ([], []))
        if node < n_gt:
            gs.append(node)
        else:
            ds.append(node - n_gt)
    return list(members.values())


def image_stats(options: Any, gt: CLEvalGT, det_quads: np.ndarray) -> Stats:
    """Summed detection stats of one image: ``det_quads`` (K, 8) float32 against a prepared GT.

    Two boxes interact in CLEval only through an area precision at or above the constraint or a
    PCC of the GT inside the detection (every matching rule, the don't-care detections and the
    character counts read one of the two; the don't-care-minus-care areas are in the prepared GT).
    So the image splits into the connected components of that relation, each evaluated on its
    own, and their stats (all sums over boxes or matches) add up to the whole image's.
    """
    n_gt, n_det = len(gt.boxes), len(det_quads)
    tally = Tally()
    det_boxes = [QUAD(q, confidence=0.0, transcription="") for q in det_quads]
    if n_gt == 0 or n_det == 0:
        tally.num_char_gt += sum(gt.num_chars)
        for det in det_boxes:
            _false_positive(tally, det)
        return tally.as_stats()
    ap_ok, inside = pair_matrices(options, gt, det_boxes, quad_bounds(det_quads.reshape(-1, 4, 2)))
    for gs, ds in _components(n_gt, n_det, ap_ok | (inside > 0)):
        if len(gs) == 1 and len(ds) == 1:
            g, d = gs[0], ds[0]
            _one_to_one(tally, gt, g, det_boxes[d], bool(ap_ok[g, d]), int(inside[g, d]))
        elif not ds:
            tally.num_char_gt += gt.num_chars[gs[0]]
        elif not gs:
            _false_positive(tally, det_boxes[ds[0]])
        else:
            stats = group_stats(
                options,
                [gt.boxes[i] for i in gs],
                [gt.pccs[i] for i in gs],
                [gt.is_dc[i] for i in gs],
                [det_boxes[j] for j in ds],
            )
            tally.add_stats(stats)
    return tally.as_stats()
