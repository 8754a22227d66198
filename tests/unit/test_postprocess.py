"""DB post-processing: geometry round trip into ORIGINAL coordinates, scoring and filters."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from ocr.postprocess import DBPostProcessor, order_points_clockwise, polygon_to_quad
from ocr.postprocess.scoring import polygon_mean_score

# Original 1000x750 (h, w) receipt letterboxed into 640x640: scale 0.64 -> 640x480, padded right.
ORIG_H, ORIG_W, SCALE = 1000, 750, 0.64
PAD = 640
META = {"orig_size": (ORIG_H, ORIG_W), "scale": SCALE}


def empty_map() -> np.ndarray:
    return np.zeros((PAD, PAD), dtype=np.float32)


def db_distance(w: float, h: float, ratio: float = 1.5) -> float:
    return w * h * ratio / (2 * (w + h))


def expected_rect(x0: int, y0: int, x1: int, y1: int, ratio: float = 1.5) -> np.ndarray:
    """Expected quad (original coords) for a filled pixel rect [x0..x1]x[y0..y1] in the map.

    The contour runs through the border pixel centres, so the candidate is (x1-x0) x (y1-y0);
    DB unclips it by area*ratio/perimeter on every side, then we divide by the scale.
    """
    d = db_distance(x1 - x0, y1 - y0, ratio)
    q = np.array([[x0 - d, y0 - d], [x1 + d, y0 - d], [x1 + d, y1 + d], [x0 - d, y1 + d]]) / SCALE
    q[:, 0] = q[:, 0].clip(0, ORIG_W - 1)
    q[:, 1] = q[:, 1].clip(0, ORIG_H - 1)
    return q


def fill_rotated(
    pm: np.ndarray, center: tuple[float, float], size: tuple[float, float], angle: float, value: float
) -> None:
    """Set the pixels whose centres lie inside the rotated rectangle (no fillPoly edge inflation)."""
    ys, xs = np.mgrid[0 : pm.shape[0], 0 : pm.shape[1]].astype(np.float32)
    t = np.deg2rad(angle)
    dx, dy = xs - center[0], ys - center[1]
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    pm[(np.abs(u) <= size[0] / 2) & (np.abs(v) <= size[1] / 2)] = value


def match_quads(found: list[np.ndarray], expected: list[np.ndarray], tol: float) -> None:
    """Every expected quad has exactly one found quad with all corners within ``tol`` px."""
    assert len(found) == len(expected)
    for exp in expected:
        errs = [np.abs(f - exp).max() for f in found]
        assert min(errs) <= tol, (
            f"closest quad is {min(errs):.2f} px off: {found[int(np.argmin(errs))]} vs {exp}"
        )


def test_axis_aligned_round_trip_to_original_coords() -> None:
    rects = [(40, 30, 300, 52), (60, 100, 420, 118), (10, 400, 200, 440)]
    pm = empty_map()
    for x0, y0, x1, y1 in rects:
        pm[y0 : y1 + 1, x0 : x1 + 1] = 0.9
    polys, scores = DBPostProcessor()(pm, META)
    match_quads(polys, [expected_rect(*r) for r in rects], tol=1.0)
    assert all(p.shape == (4, 2) and p.dtype == np.float32 for p in polys)
    assert scores == pytest.approx([0.9] * 3, abs=1e-4)


@pytest.mark.parametrize("angle", [-20.0, 12.0, 35.0])
def test_rotated_box_round_trip(angle: float) -> None:
    center, size = (240.0, 300.0), (260.0, 24.0)
    pm = empty_map()
    fill_rotated(pm, center, size, angle, 0.8)
    polys, scores = DBPostProcessor()(pm, META)
    assert len(polys) == 1
    d = db_distance(*size)
    exp = cv2.boxPoints((center, (size[0] + 2 * d, size[1] + 2 * d), angle)) / SCALE
    got, exp = order_points_clockwise(polys[0]), order_points_clockwise(exp)
    assert np.abs(got - exp).max() <= 1.0
    assert scores[0] == pytest.approx(0.8, abs=1e-3)


def test_quads_are_clockwise_from_top_left() -> None:
    pm = empty_map()
    fill_rotated(pm, (200, 200), (200, 30), 15.0, 0.9)
    (quad,), _ = DBPostProcessor()(pm, META)
    tl, tr, br, bl = quad
    assert tl[0] < tr[0] and tl[1] < bl[1] and br[1] > tr[1]  # 15° clockwise tilt: TR is lower
    x, y = quad[:, 0], quad[:, 1]
    assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0  # clockwise on screen (y down)


def test_score_is_polygon_mean_not_bbox_mean() -> None:
    """A thin line at 40° fills ~10% of its bbox; a bbox mean would drop it below box_thresh."""
    pm = empty_map()
    fill_rotated(pm, (300, 300), (400, 16), 40.0, 0.9)
    polys, scores = DBPostProcessor(box_thresh=0.6)(pm, META)
    assert len(polys) == 1
    assert scores[0] == pytest.approx(0.9, abs=0.02)


def test_score_averages_the_inside() -> None:
    pm = empty_map()
    pm[100:121, 50:251] = 0.95
    pm[100:121, 150:251] = 0.55  # right half weaker -> mean ~0.75
    (_,), (score,) = DBPostProcessor()(pm, META)
    assert score == pytest.approx(np.mean(pm[100:121, 50:251]), abs=1e-3)


def test_box_thresh_filters_weak_candidates() -> None:
    pm = empty_map()
    pm[50:70, 50:250] = 0.5  # above thresh (0.3) but below box_thresh
    pm[150:170, 50:250] = 0.7
    polys, scores = DBPostProcessor(box_thresh=0.6)(pm, META)
    assert len(polys) == 1 and scores[0] == pytest.approx(0.7, abs=1e-4)
    polys, _ = DBPostProcessor(box_thresh=0.45)(pm, META)
    assert len(polys) == 2


def test_min_size_before_and_after_unclip() -> None:
    pm = empty_map()
    pm[50:52, 50:250] = 0.9  # short side 1 px: dropped before scoring
    pm[100:105, 50:250] = 0.9  # short side 4
    pm[150:157, 50:250] = 0.9  # short side 6
    polys, _ = DBPostProcessor()(pm, META)
    assert len(polys) == 2  # default unclip makes the 4-px line ~10 px
    # with almost no unclip the 4-px line stays < min_size + 2 afterwards and is dropped
    polys, _ = DBPostProcessor(unclip_ratio=0.1)(pm, META)
    assert len(polys) == 1
    assert polys[0][:, 1].min() > 140 / SCALE


def test_max_candidates_caps_the_contours() -> None:
    pm = empty_map()
    for i in range(10):
        pm[20 + 40 * i : 40 + 40 * i, 50:250] = 0.9
    assert len(DBPostProcessor()(pm, META)[0]) == 10
    assert len(DBPostProcessor(max_candidates=3)(pm, META)[0]) == 3


@pytest.mark.parametrize("value", [0.0, 0.2])
def test_empty_map_gives_no_boxes(value: float) -> None:
    polys, scores = DBPostProcessor()(np.full((PAD, PAD), value, np.float32), META)
    assert polys == [] and scores == []


def test_boxes_are_clipped_to_the_original_image() -> None:
    """A line touching the right edge of the valid area unclips into the padding: clip to orig w."""
    pm = empty_map()
    right = int(ORIG_W * SCALE) - 1  # 479: last resized column with image content
    pm[0:20, 300 : right + 1] = 0.9
    (quad,), _ = DBPostProcessor()(pm, META)
    assert quad[:, 0].max() == pytest.approx(ORIG_W - 1)
    assert quad[:, 1].min() == pytest.approx(0.0)
    assert (quad >= 0).all()


def test_polygon_output_covers_the_region() -> None:
    pm = empty_map()
    pm[100:131, 50:351] = 0.9
    polys, scores = DBPostProcessor(output="polygon")(pm, META)
    assert len(polys) == 1 and polys[0].shape[0] >= 4
    poly = polys[0]
    exp = expected_rect(50, 100, 350, 130)
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    assert np.abs(np.array([x0, y0, x1, y1]) - np.r_[exp.min(axis=0), exp.max(axis=0)]).max() <= 2.0
    assert scores[0] == pytest.approx(0.9, abs=1e-4)


def test_bad_output_mode_is_rejected() -> None:
    with pytest.raises(ValueError):
        DBPostProcessor(output="box")  # type: ignore[arg-type]


@dataclass
class _Meta:
    orig_size: tuple[int, int]
    scale: float


def test_batch_tensor_and_meta_objects_match_single_calls() -> None:
    a, b = empty_map(), empty_map()
    a[40:60, 40:300] = 0.9
    b[200:230, 100:200] = 0.8
    b[300:320, 10:400] = 0.95
    metas = [_Meta((ORIG_H, ORIG_W), SCALE), {"orig_size": (500, 500), "scale": 1.28}]
    post = DBPostProcessor()
    batched = post.batch(torch.from_numpy(np.stack([a, b]))[:, None], metas)
    singles = [post(a, metas[0]), post(b, metas[1])]
    assert len(batched) == 2
    for (bp, bs), (sp, ss) in zip(batched, singles, strict=True):
        assert bs == ss
        for p, q in zip(bp, sp, strict=True):
            np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError):
        post.batch(np.stack([a, b]), metas[:1])


def test_order_points_clockwise_from_any_start() -> None:
    rect = np.array([[10, 5], [110, 5], [110, 25], [10, 25]], np.float32)
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [1, 2, 3, 0]):
        np.testing.assert_array_equal(order_points_clockwise(rect[perm]), rect)
    many = np.array([[10, 5], [60, 3], [110, 5], [110, 25], [60, 27], [10, 25]], np.float32)
    np.testing.assert_array_equal(order_points_clockwise(many[::-1]), many)


def test_polygon_to_quad_uses_min_area_rect_for_long_polygons() -> None:
    many = np.array([[10, 5], [60, 5], [110, 5], [110, 25], [60, 25], [10, 25]], np.float32)
    np.testing.assert_allclose(polygon_to_quad(many), [[10, 5], [110, 5], [110, 25], [10, 25]], atol=1e-4)


def test_polygon_mean_score_matches_a_full_image_mask() -> None:
    rng = np.random.default_rng(3)
    pm = rng.random((120, 160), dtype=np.float32)
    poly = np.array([[5, 40], [90, 2], [150, 60], [70, 118], [-10, 100]], np.int32)  # partly outside
    full = np.zeros(pm.shape, np.uint8)
    cv2.fillPoly(full, [poly], 1)
    assert polygon_mean_score(pm, poly) == pytest.approx(float(pm[full > 0].mean()), abs=1e-5)
