"""The cheaper exact work of the metrics against the official paths, state by state.

* CLEval: the fast path (prepared + cached GT, stats per interaction component, no dump objects,
  1:1 components in closed form) against the official ``CLEvalMetric.update`` on the whole image
  (``split_groups=False``), on rotated, split, merged, don't-care, trapezoid and random receipts.
* IoU: the prepared-GT, vectorised-geometry update against a brute-force ICDAR15 count.
* Point order: trapezoids keep their top-left anchor; the vectorised order equals the per-quad one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import shapely
import torch
from cleval.box_types import QUAD

from ocr.metrics import CLEvalDetectionMetric, DetectionMetrics, IoUDetectionMetric
from ocr.metrics.cleval_metric import quads_array
from ocr.metrics.prepared_gt import GTCache, PreparedGT
from ocr.postprocess.geometry import order_points_clockwise, order_quads_clockwise, polygons_to_quads

Poly = np.ndarray
Image = tuple[list[Poly], list[Poly], list[str], list[bool]]
DET_STATES = (
    "det_num_char_gt",
    "det_num_char_det",
    "det_gran_score_recall",
    "det_num_char_tp_recall",
    "det_gran_score_precision",
    "det_num_char_tp_precision",
    "det_num_char_fp",
    "num_splitted",
    "num_merged",
    "num_char_overlapped",
)


def rect(x0: float, y0: float, x1: float, y1: float) -> Poly:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def rotated(cx: float, cy: float, w: float, h: float, deg: float) -> Poly:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return (base @ np.array([[c, s], [-s, c]]) + [cx, cy]).astype(np.float32)


def trapezoid(x0: float, y0: float, w: float, h: float, slant: float) -> Poly:
    """Top edge shifted by ``slant`` px against the bottom one (italic-like line)."""
    return np.array([[x0 + slant, y0], [x0 + w + slant, y0], [x0 + w, y0 + h], [x0, y0 + h]], np.float32)


def text(rng: np.random.Generator, w: float) -> str:
    return "".join(rng.choice(list("ab12"), size=max(1, int(w / 12))))


def scene(rng: np.random.Generator, kind: str, n: int = 24) -> Image:
    """Dense lines of one ``kind`` with jittered, split, merged, missing and spurious detections."""
    preds: list[Poly] = []
    gts: list[Poly] = []
    texts: list[str] = []
    ign: list[bool] = []
    for i in range(n):
        x0, w, y0, h = rng.uniform(20, 200), rng.uniform(60, 400), 20 + i * 24, rng.uniform(14, 22)
        if kind == "rotated":
            gt = rotated(x0 + w / 2, y0 + h / 2, w, h, rng.uniform(-35, 35))
        elif kind == "trapezoid":
            gt = trapezoid(x0, y0, w, h, rng.uniform(-25, 25))
        else:
            gt = rect(x0, y0, x0 + w, y0 + h)
        gts.append(gt)
        dc = kind == "dont_care" and bool(rng.random() < 0.35)
        texts.append(("###" if rng.random() < 0.5 else "") if dc else text(rng, w))
        ign.append(dc and bool(rng.random() < 0.6))
        jit = rng.normal(0, 1.5, size=(4, 2)).astype(np.float32)
        r = rng.random()
        if r < 0.08:
            continue  # missed
        if kind == "split" or (r < 0.18 and kind != "merged"):
            a, b = gt[[0, 1, 2, 3]], gt.copy()
            mid_top, mid_bot = (gt[0] + gt[1]) / 2, (gt[3] + gt[2]) / 2
            a = np.stack([gt[0], mid_top, mid_bot, gt[3]])
            b = np.stack([mid_top, gt[1], gt[2], mid_bot])
            preds += [a + jit, b + jit]
        elif r < 0.26:  # far too long: PCCs inside, but area precision < 0.3 (no match)
            preds.append(rect(x0 - 2 * w, y0, x0 + 3 * w, y0 + h) + jit)
        elif kind == "merged" and r < 0.6:
            preds.append(rect(x0, y0, x0 + w, y0 + h + 24) + jit)  # this line and the next
        else:
            preds.append(gt + jit)
    if kind == "dont_care":  # detections lying on don't-care lines, partly and wholly
        for i in [k for k, t in enumerate(texts) if t in ("###", "")][:4]:
            box = gts[i]
            preds.append(box * np.float32(1.0) + np.float32([5.0, 0.0]))
    for _ in range(3):
        x0, y0 = rng.uniform(0, 600), rng.uniform(0, 600)
        preds.append(rect(x0, y0, x0 + rng.uniform(10, 80), y0 + 15))  # spurious
    order = rng.permutation(len(preds))
    return [preds[k] for k in order], gts, texts, ign


KINDS = ("plain", "rotated", "split", "merged", "dont_care", "trapezoid")


def scenes(seed: int, per_kind: int = 3) -> Iterator[tuple[str, Image]]:
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        for _ in range(per_kind):
            yield kind, scene(rng, kind)


def official(*images: Image) -> CLEvalDetectionMetric:
    m = CLEvalDetectionMetric(split_groups=False)
    for img in images:
        m.update(*img)
    return m


def assert_same_states(fast: CLEvalDetectionMetric, ref: CLEvalDetectionMetric, where: str) -> None:
    for name in DET_STATES:
        assert torch.equal(getattr(fast, name), getattr(ref, name)), (
            f"{where}: {name} {getattr(fast, name)} != official {getattr(ref, name)}"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_cleval_fast_equals_official_per_kind(kind: str) -> None:
    rng = np.random.default_rng(hash(kind) % 2**32)
    for _ in range(4):
        img = scene(rng, kind)
        fast = CLEvalDetectionMetric()
        fast.update(*img)
        assert_same_states(fast, official(img), kind)


def test_cleval_fast_equals_official_summed_and_cache_reuse() -> None:
    """Many receipts summed, each fed three times (epochs: the GT cache hits), every state equal."""
    images = [img for _, img in scenes(seed=7)]
    fast = CLEvalDetectionMetric()
    for epoch in range(3):
        fast.reset()
        for img in images:
            fast.update(*img)
        assert_same_states(fast, official(*images), f"epoch {epoch}")
    assert fast.gt_cache.hits == 2 * len(images) and fast.gt_cache.misses == len(images)
    # the random scenes exercise every branch: splits, merges, false positives, granularity
    assert int(fast.num_splitted) > 0 and int(fast.num_merged) > 0
    assert int(fast.det_num_char_fp) > 0 and float(fast.det_gran_score_recall) > 0


def test_cleval_dc_minus_care_and_dc_detections() -> None:
    """A DC box overlapping care boxes (cleval subtracts them from it) and detections on it."""
    care = rect(10, 10, 210, 30)
    dc = rect(150, 15, 320, 40)  # overlaps the care line's right end
    # rect(160, 16, 200, 32) lies mostly on the care part: a DC detection only without the subtraction
    dets = [care + 1.0, rect(220, 18, 318, 38), rect(160, 16, 200, 32), rect(300, 30, 400, 50)]
    img = (dets, [care, dc], ["abcdefghij", "###"], [False, True])
    fast = CLEvalDetectionMetric()
    fast.update(*img)
    assert_same_states(fast, official(img), "dc")


def test_cleval_one_det_on_many_and_many_on_one() -> None:
    lines = [rect(10, 10 + 22 * i, 210, 30 + 22 * i) for i in range(4)]
    texts = ["abcdefghij"] * 4
    cover = rect(8, 8, 212, 98)  # one det over four lines: many-to-one
    pieces = [rect(10 + 50 * k, 10, 60 + 50 * k, 30) for k in range(4)]  # four dets on line 0
    for dets in ([cover], pieces, [cover, *pieces], []):
        img = (dets, lines, texts, [False] * 4)
        fast = CLEvalDetectionMetric()
        fast.update(*img)
        assert_same_states(fast, official(img), f"{len(dets)} dets")


def test_cleval_polygon_detections_and_empty_images() -> None:
    poly = np.array([[10, 10], [60, 8], [110, 10], [110, 30], [60, 32], [10, 30]], np.float32)
    cases = [([poly], [rect(10, 10, 110, 30)], ["abcde"], [False]), ([], [], [], []), ([poly], [], [], [])]
    fast = CLEvalDetectionMetric()
    for img in cases:
        fast.update(*img)
    assert_same_states(fast, official(*cases), "polygons")


def test_prepared_gt_is_not_mutated_by_updates() -> None:
    _, img = next(iter(scenes(seed=3)))
    gt = PreparedGT.build(img[1], img[2], img[3])
    part = gt.cleval(0.5)
    areas = [b.area() for b in part.boxes]
    letters = [b.transcription for b in part.boxes]
    m = CLEvalDetectionMetric()
    for _ in range(10):
        m.update(img[0], img[1], img[2], img[3], gt=gt)
    assert [b.area() for b in part.boxes] == areas and [b.transcription for b in part.boxes] == letters
    ref = official(*[img] * 10)
    assert_same_states(m, ref, "ten uses of one prepared GT")


def test_gt_cache_keys_on_content() -> None:
    cache = GTCache(max_entries=2)
    a = [rect(0, 0, 10, 10)]
    first = cache.get(a, ["x"], [False])
    assert cache.get([a[0].copy()], ["x"], [False]) is first  # same content, another array
    assert cache.get(a, ["y"], [False]) is not first  # another text
    assert cache.get(a, ["x"], [True]) is not first  # another flag
    assert cache.get([a[0] + 1], ["x"], [False]) is not first  # moved
    assert len(cache) == 2 and cache.hits == 1


def test_detection_metrics_prepared_gt_argument_and_float64() -> None:
    images = [img for _, img in scenes(seed=11, per_kind=1)]
    by_cache, by_arg = DetectionMetrics(), DetectionMetrics()
    for img in images:
        by_cache.update(*img)
        by_arg.update(*img, gt=DetectionMetrics.prepare_gt(img[1], img[2], img[3]))
    a, b = by_cache.compute(), by_arg.compute()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for key in ("precision", "recall", "hmean", "iou_precision", "iou_recall", "iou_hmean"):
        assert a[key].dtype == torch.float64, key


# --------------------------------------------------------------------------- IoU
def brute_force_iou_counts(preds: list[Poly], gts: list[Poly], ignore: list[bool]) -> tuple[int, int, int]:
    """ICDAR15 by the book: every pair, shapely polygons made valid, greedy by IoU, IoU > 0.5."""

    def geom(p: Poly) -> shapely.Geometry:
        g = shapely.Polygon(np.asarray(p, np.float64))
        return g if g.is_valid else shapely.make_valid(g)

    care = [geom(g) for g, ig in zip(gts, ignore, strict=True) if not ig]
    dc = [geom(g) for g, ig in zip(gts, ignore, strict=True) if ig]
    dets = [geom(p) for p in preds]
    dets = [d for d in dets if not any(d.area > 0 and d.intersection(x).area / d.area > 0.5 for x in dc)]
    pairs = sorted(
        (
            (-(g.intersection(d).area / g.union(d).area), i, j)
            for i, g in enumerate(care)
            for j, d in enumerate(dets)
        ),
    )
    used_g: set[int] = set()
    used_d: set[int] = set()
    matched = 0
    for neg, i, j in pairs:
        if -neg > 0.5 and i not in used_g and j not in used_d:
            used_g.add(i)
            used_d.add(j)
            matched += 1
    return len(care), len(dets), matched


def test_iou_fast_equals_brute_force() -> None:
    for kind, (preds, gts, _texts, ign) in scenes(seed=5):
        m = IoUDetectionMetric()
        for _ in range(2):  # second time through the GT cache
            m.reset()
            m.update(preds, gts, ign)
            assert (int(m.num_gt), int(m.num_det), int(m.num_matched)) == brute_force_iou_counts(
                preds, gts, ign
            ), kind


# --------------------------------------------------------------------------- point order
def test_trapezoid_keeps_its_top_left_anchor() -> None:
    """A slanted line whose bottom-left corner has the smallest x + y still starts at its top-left."""
    trap = np.array([[30, 0], [100, 0], [100, 20], [0, 20]], np.float32)  # x+y: TL 30 > BL 20
    for perm in ([0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0], [1, 2, 3, 0]):
        np.testing.assert_array_equal(order_points_clockwise(trap[perm]), trap)
    # CLEval's weight follows the anchor: re-anchored at BL, the quad would read as a vertical box
    gt = QUAD(quads_array([trap])[0], transcription="abcdefgh")
    assert gt.aspect_ratio() > 1 and len(gt.pseudo_character_center(0.5)) == 8
    ys = [y for _, y in gt.pseudo_character_center(0.5)]
    assert max(ys) - min(ys) < 1e-4  # the centres run along the line, not across it


def test_vectorised_order_equals_per_quad_order() -> None:
    rng = np.random.default_rng(0)
    quads = [
        rotated(*rng.uniform(50, 500, 2), *rng.uniform(5, 300, 2), rng.uniform(-89, 89)) for _ in range(200)
    ]
    quads += [
        trapezoid(*rng.uniform(0, 300, 2), *rng.uniform(10, 200, 2), rng.uniform(-40, 40)) for _ in range(100)
    ]
    quads = [q[rng.permutation(4)] for q in quads]
    batch = order_quads_clockwise(np.stack(quads))
    for q, b in zip(quads, batch, strict=True):
        np.testing.assert_array_equal(order_points_clockwise(q), b)
    np.testing.assert_array_equal(polygons_to_quads(quads), batch)
