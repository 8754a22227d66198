"""Hand-checkable behaviour of the numpy reference DB targets (and the shared polygon preparation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocr.targets import DBTargetParams, DBTargets, make_db_targets_reference
from ocr.targets.reference import classic_edge_distance

SHAPE = (60, 110)
RECT = np.array([[10, 10], [90, 10], [90, 40], [10, 40]], dtype=np.float32)
RECT_D = 80 * 30 * (1 - 0.4**2) / (2 * (80 + 30))  # area * (1 - r^2) / perimeter


def rect_distance(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int]) -> np.ndarray:
    """True distance from every pixel to the boundary of an axis-aligned rectangle."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dx_out = np.maximum(np.maximum(x0 - xs, xs - x1), 0)
    dy_out = np.maximum(np.maximum(y0 - ys, ys - y1), 0)
    outside = np.hypot(dx_out, dy_out)
    inside = np.minimum.reduce([xs - x0, x1 - xs, ys - y0, y1 - ys])
    return np.where(inside > 0, inside, outside)


def classic_pixel_distance(px: float, py: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """The classic DB per-edge distance for one pixel, written from the formula with plain floats."""
    d1 = (px - a[0]) ** 2 + (py - a[1]) ** 2
    d2 = (px - b[0]) ** 2 + (py - b[1]) ** 2
    d = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    if d1 * d2 == 0:
        return 0.0
    cosin = (d - d1 - d2) / (2 * math.sqrt(d1 * d2))
    if cosin < 0:
        return math.sqrt(min(d1, d2))
    return math.sqrt(d1 * d2 * max(1 - cosin**2, 0.0) / d)


def classic_rect_distance(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int]) -> np.ndarray:
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    out = np.empty(shape)
    for py in range(shape[0]):
        for px in range(shape[1]):
            out[py, px] = min(
                classic_pixel_distance(px, py, corners[i], corners[(i + 1) % 4]) for i in range(4)
            )
    return out


def expected_thresh(distance: np.ndarray, d: float, params: DBTargetParams) -> np.ndarray:
    v = (1 - np.clip(distance / d, 0, 1)).astype(np.float32)
    return v * np.float32(params.thresh_max - params.thresh_min) + np.float32(params.thresh_min)


def assert_valid(t: DBTargets, params: DBTargetParams) -> None:
    for m in t.maps():
        assert m.dtype == np.float32
        assert np.isfinite(m).all()
    for m in (t.prob_map, t.prob_mask, t.thresh_mask):
        assert set(np.unique(m).tolist()) <= {0.0, 1.0}
    assert t.thresh_map.min() >= np.float32(params.thresh_min)
    assert t.thresh_map.max() <= np.float32(params.thresh_max) + 1e-6


def test_rectangle_prob_map_is_the_shrunk_rectangle() -> None:
    t = make_db_targets_reference([RECT], [False], SHAPE)
    expected = np.zeros(SHAPE, np.float32)
    # Shrunk by D = 9.16 and rounded to clipper's integer grid: x 19.16..80.84, y 19.16..30.84.
    expected[19:32, 19:82] = 1
    np.testing.assert_array_equal(t.prob_map, expected)
    np.testing.assert_array_equal(t.prob_mask, np.ones(SHAPE, np.float32))
    assert t.ignored_count == 0


def test_rectangle_thresh_map_follows_the_formula_everywhere() -> None:
    params = DBTargetParams()
    t = make_db_targets_reference([RECT], [False], SHAPE, params)
    expected = expected_thresh(classic_rect_distance(10, 10, 90, 40, SHAPE), RECT_D, params)
    np.testing.assert_allclose(t.thresh_map, expected, atol=1e-6, rtol=0)
    # The classic formula never underestimates the true distance, and is exact away from corners.
    true = expected_thresh(rect_distance(10, 10, 90, 40, SHAPE), RECT_D, params)
    assert (t.thresh_map <= true + 1e-6).all()
    np.testing.assert_allclose(t.thresh_map[:, 20:80], true[:, 20:80], atol=1e-6, rtol=0)
    # The quirk: beside the corner (10, 10), the right-angle edge seen at an acute angle.
    assert t.thresh_map[11, 4] < true[11, 4] - 1e-3
    # A few values by hand: centre (15 px from any edge > D), 2 px below the top edge, on a corner.
    assert t.thresh_map[25, 50] == np.float32(0.3)
    assert t.thresh_map[12, 50] == pytest.approx(0.3 + 0.4 * (1 - 2 / RECT_D), abs=1e-6)
    assert t.thresh_map[10, 10] == pytest.approx(0.7, abs=1e-6)
    assert t.thresh_map[5, 5] == pytest.approx(0.3 + 0.4 * (1 - math.sqrt(50) / RECT_D), abs=1e-6)


def test_rectangle_thresh_mask_is_the_dilated_rectangle() -> None:
    t = make_db_targets_reference([RECT], [False], SHAPE)
    assert t.thresh_mask[25, 1] == 1 and t.thresh_mask[25, 0] == 0  # 10 - 9.16 rounds to 1
    assert t.thresh_mask[25, 99] == 1 and t.thresh_mask[25, 100] == 0
    assert t.thresh_mask[1, 50] == 1 and t.thresh_mask[0, 50] == 0
    assert t.thresh_mask[1, 1] == 0  # round corner: 12.7 px from (10, 10) > D
    assert t.thresh_mask[25, 50] == 1


def test_params_are_honoured() -> None:
    params = DBTargetParams(shrink_ratio=0.6, thresh_min=0.2, thresh_max=0.9)
    d = 80 * 30 * (1 - 0.6**2) / 220
    t = make_db_targets_reference([RECT], [False], SHAPE, params)
    expected = expected_thresh(classic_rect_distance(10, 10, 90, 40, SHAPE), d, params)
    np.testing.assert_allclose(t.thresh_map, expected, atol=1e-6, rtol=0)


def test_ignored_polygon_only_zeroes_the_mask() -> None:
    t = make_db_targets_reference([RECT], [True], SHAPE)
    assert t.ignored_count == 0  # flagged by the caller, not turned into ignore here
    assert t.prob_mask[25, 50] == 0 and t.prob_mask[10, 10] == 0 and t.prob_mask[40, 90] == 0
    assert t.prob_mask[5, 5] == 1 and t.prob_mask[25, 95] == 1
    assert not t.prob_map.any() and not t.thresh_mask.any()
    assert (t.thresh_map == np.float32(0.3)).all()


def test_small_polygon_becomes_an_ignore_region() -> None:
    small = np.array([[20, 20], [60, 20], [60, 25], [20, 25]], np.float32)  # 5 px tall < 8
    t = make_db_targets_reference([small, RECT + 0], [False, True], SHAPE)
    assert t.ignored_count == 1
    assert t.prob_mask[22, 40] == 0 and not t.prob_map.any() and not t.thresh_mask.any()
    drawn = make_db_targets_reference([small], [False], SHAPE, DBTargetParams(min_text_size=4))
    assert drawn.ignored_count == 0 and drawn.prob_mask.all() and drawn.thresh_mask.any()


def test_min_text_size_uses_the_visible_part() -> None:
    mostly_outside = np.array([[-50, 10], [4, 10], [4, 40], [-50, 40]], np.float32)  # 4 px visible
    t = make_db_targets_reference([mostly_outside], [False], SHAPE)
    assert t.ignored_count == 1 and t.prob_mask[25, 2] == 0 and not t.prob_map.any()


DEGENERATE = {
    "empty": np.zeros((0, 2), np.float32),
    "one_point": np.array([[5, 5]], np.float32),
    "two_points": np.array([[5, 5], [50, 30]], np.float32),
    "collinear": np.array([[5, 5], [50, 5], [80, 5]], np.float32),
    "zero_area_repeated": np.array([[20, 20], [20, 20], [20, 20], [20, 20]], np.float32),
    "nan": np.array([[10, 10], [90, np.nan], [90, 40], [10, 40]], np.float32),
    "inf": np.array([[10, 10], [np.inf, 10], [90, 40], [10, 40]], np.float32),
    "all_nan": np.full((4, 2), np.nan, np.float32),
    "symmetric_bowtie": np.array([[10, 10], [90, 40], [90, 10], [10, 40]], np.float32),
    "fully_outside": np.array([[200, 200], [300, 200], [300, 260], [200, 260]], np.float32),
    "fully_outside_negative": np.array([[-90, -60], [-10, -60], [-10, -20], [-90, -20]], np.float32),
    "huge": np.array([[0, 0], [1e9, 0], [1e9, 1e9], [0, 1e9]], np.float32),
    "tiny": np.array([[30, 30], [31, 30], [31, 31]], np.float32),
    "needle": np.array([[10, 10], [90, 11], [10, 10.5]], np.float32),
    "flat_list": np.array([10, 10, 90, 10, 90, 40, 10, 40, 55], np.float32),
    "wrong_ndim": np.zeros((2, 2, 2), np.float32),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_polygons_never_crash_and_are_masked(name: str) -> None:
    params = DBTargetParams()
    t = make_db_targets_reference([DEGENERATE[name]], [False], SHAPE, params)
    assert_valid(t, params)
    assert t.ignored_count == 1
    assert not t.prob_map.any() and not t.thresh_mask.any()
    assert (t.thresh_map == np.float32(params.thresh_min)).all()


def test_degenerate_polygon_masks_its_finite_part() -> None:
    t = make_db_targets_reference([DEGENERATE["nan"]], [False], SHAPE)
    assert t.prob_mask[20, 20] == 0  # inside the triangle of the 3 finite corners
    t = make_db_targets_reference([DEGENERATE["two_points"]], [False], SHAPE)
    assert t.prob_mask[5, 5] == 0 and t.prob_mask[30, 50] == 0 and t.prob_mask[50, 5] == 1


def test_self_intersecting_polygon_does_not_crash() -> None:
    lopsided_bowtie = np.array([[10, 10], [100, 50], [100, 10], [10, 30]], np.float32)
    params = DBTargetParams()
    t = make_db_targets_reference([lopsided_bowtie, RECT], [False, False], SHAPE, params)
    assert_valid(t, params)


def test_degenerate_next_to_a_good_polygon_leaves_it_untouched() -> None:
    alone = make_db_targets_reference([RECT], [False], SHAPE)
    polys = [DEGENERATE["nan"] + 200, RECT, DEGENERATE["two_points"] * 0, DEGENERATE["empty"]]
    mixed = make_db_targets_reference(polys, [False] * 4, SHAPE)
    assert mixed.ignored_count == 3
    for a, b in zip(alone.maps(), mixed.maps(), strict=True):
        if b is not mixed.prob_mask:
            np.testing.assert_array_equal(a, b)


def test_polygon_crossing_the_border_is_clipped_not_clamped() -> None:
    params = DBTargetParams()
    crossing = np.array([[-20, 10], [50, 10], [50, 40], [-20, 40]], np.float32)
    t = make_db_targets_reference([crossing], [False], SHAPE, params)
    d = 70 * 30 * (1 - 0.4**2) / (2 * (70 + 30))
    # The left edge lies outside the image: no ridge along x = 0, just the true distance.
    expected = expected_thresh(classic_rect_distance(-20, 10, 50, 40, SHAPE), d, params)
    np.testing.assert_allclose(t.thresh_map, expected, atol=1e-6, rtol=0)
    assert t.thresh_map[25, 0] == np.float32(0.3)
    assert t.prob_map[25, 0] == 1 and t.prob_map[25, 45] == 0
    assert t.thresh_mask[25, 0] == 1
    bottom_right = np.array([[80, 45], [130, 45], [130, 80], [80, 80]], np.float32)
    t = make_db_targets_reference([bottom_right], [False], SHAPE, params)
    assert_valid(t, params)
    assert t.prob_map[59, 109] == 1 and t.thresh_map[45, 109] == pytest.approx(0.7, abs=1e-6)


def test_pixels_on_vertices_and_repeated_vertices_give_no_nan() -> None:
    params = DBTargetParams()
    poly = np.array([[10, 10], [10, 10], [90, 10], [90, 40], [90, 40], [10, 40]], np.float32)
    t = make_db_targets_reference([poly], [False], SHAPE, params)
    assert_valid(t, params)
    assert t.thresh_map[10, 10] == pytest.approx(0.7, abs=1e-6)
    plain = make_db_targets_reference([RECT], [False], SHAPE, params)
    np.testing.assert_array_equal(t.thresh_map, plain.thresh_map)


def test_orientation_does_not_matter() -> None:
    cw = make_db_targets_reference([RECT], [False], SHAPE)
    ccw = make_db_targets_reference([RECT[::-1].copy()], [False], SHAPE)
    for a, b in zip(cw.maps(), ccw.maps(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_overlapping_polygons_combine_with_max() -> None:
    other = RECT + np.float32(12)
    both = make_db_targets_reference([RECT, other], [False, False], SHAPE)
    a = make_db_targets_reference([RECT], [False], SHAPE)
    b = make_db_targets_reference([other], [False], SHAPE)
    np.testing.assert_array_equal(both.thresh_map, np.fmax(a.thresh_map, b.thresh_map))
    np.testing.assert_array_equal(both.prob_map, np.fmax(a.prob_map, b.prob_map))
    np.testing.assert_array_equal(both.thresh_mask, np.fmax(a.thresh_mask, b.thresh_mask))


def test_no_polygons_and_empty_image() -> None:
    t = make_db_targets_reference([], [], SHAPE)
    assert not t.prob_map.any() and t.prob_mask.all() and not t.thresh_mask.any()
    assert (t.thresh_map == np.float32(0.3)).all() and t.ignored_count == 0
    t = make_db_targets_reference([RECT], [False], (0, 0))
    assert t.prob_map.shape == (0, 0)


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        make_db_targets_reference([RECT], [], SHAPE)


# --- the classic per-edge distance ---------------------------------------------------------------


def _grid(xs: list[float], ys: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([xs], np.float64), np.array([ys], np.float64)


def test_classic_distance_obtuse_side_is_the_line_distance() -> None:
    xs, ys = _grid([50.0, 50.0], [13.0, 7.0])
    d = classic_edge_distance(xs, ys, np.array([10.0, 10.0]), np.array([90.0, 10.0]))
    np.testing.assert_allclose(d, [[3.0, 3.0]])


def test_classic_distance_keeps_the_acute_angle_quirk() -> None:
    # Short edge seen from far along its normal: the angle at the pixel is acute, so the classic
    # formula returns the nearer endpoint (sqrt(20**2 + 2**2)), not the true distance 20.
    xs, ys = _grid([10.0], [30.0])
    d = classic_edge_distance(xs, ys, np.array([8.0, 10.0]), np.array([12.0, 10.0]))
    assert d[0, 0] == pytest.approx(math.hypot(20, 2))


def test_classic_distance_degenerate_inputs_are_finite() -> None:
    a, b = np.array([10.0, 10.0]), np.array([90.0, 10.0])
    xs, ys = _grid([10.0, 90.0, 37.0, 50.0], [10.0, 10.0, 10.0, 10.0])  # endpoints, on the segment
    d = classic_edge_distance(xs, ys, a, b)
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d, 0.0, atol=1e-6)
    xs, ys = _grid([10.0, 13.0], [10.0, 14.0])
    d = classic_edge_distance(xs, ys, a, a.copy())  # zero-length edge: distance to the point
    np.testing.assert_allclose(d, [[0.0, 5.0]])


def test_params_validation_and_key() -> None:
    assert DBTargetParams().as_key() == DBTargetParams().as_key()
    assert DBTargetParams(formula="db").as_key() != DBTargetParams().as_key()
    assert hash(DBTargetParams().as_key()) == hash(DBTargetParams().as_key())
    assert DBTargetParams().formula == "exact"
    with pytest.raises(ValueError):
        DBTargetParams(formula="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DBTargetParams(thresh_min=0.8, thresh_max=0.3)
    with pytest.raises(ValueError):
        DBTargetParams(shrink_ratio=1.0)
