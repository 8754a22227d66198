"""Property tests of the fast (numba) DB targets against the reference and a shapely brute force."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr.bench.identity import same_bits
from ocr.targets import (
    DBTargetParams,
    DBTargets,
    make_db_targets,
    make_db_targets_reference,
    slowdown_injected,
)
from ocr.targets.db_targets import SLOWDOWN_ENV
from ocr.targets.prepare import prepare_polygons

DB = DBTargetParams(formula="db")
EXACT = DBTargetParams(formula="exact")
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Case = tuple[tuple[int, int], list[np.ndarray], list[bool]]


# --- strategies ------------------------------------------------------------------------------------


def coord(limit: int) -> st.SearchStrategy[float]:
    """A coordinate mostly inside an image side of ``limit`` pixels, sometimes across the border."""
    inside = st.floats(0.1 * limit, 0.9 * limit)
    return st.one_of(inside, inside, inside, st.floats(-0.25 * limit, 1.25 * limit))


def _maybe_snap(draw: st.DrawFn, pts: np.ndarray) -> np.ndarray:
    """Often put vertices on integer / half-pixel positions (pixels exactly on vertices and edges)."""
    mode = draw(st.sampled_from(["float", "int", "half"]))
    if mode == "int":
        pts = np.round(pts)
    elif mode == "half":
        pts = np.round(pts * 2) / 2
    return pts.astype(np.float32)


@st.composite
def rotated_rect(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    cx, cy = draw(coord(w)), draw(coord(h))
    width = draw(st.floats(6, 1.5 * w + 6))
    height = draw(st.floats(6, 50))
    a = draw(st.sampled_from([0.0, math.pi / 2])) if draw(st.booleans()) else draw(st.floats(0, math.pi))
    c, s = math.cos(a), math.sin(a)
    corners = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2
    pts = corners @ np.array([[c, s], [-s, c]]) + [cx, cy]
    return _maybe_snap(draw, pts)


@st.composite
def star_polygon(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    """Simple polygon, convex or concave: radii around a centre at sorted angles."""
    n = draw(st.integers(3, 9))
    cx, cy = draw(coord(w)), draw(coord(h))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n, unique=True))))
    if len(np.unique(np.round(angles, 3))) < n:
        angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r_max = draw(st.floats(6, 60))
    convex = draw(st.booleans())
    radii = (
        np.full(n, r_max)
        if convex
        else np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))) * r_max
    )
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return _maybe_snap(draw, pts)


@st.composite
def tiny_polygon(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    x, y = draw(coord(w)), draw(coord(h))
    d = np.array(draw(st.lists(st.floats(-6, 6), min_size=6, max_size=6))).reshape(3, 2)
    return (np.array([x, y]) + d).astype(np.float32)


@st.composite
def degenerate_polygon(draw: st.DrawFn, h: int, w: int) -> np.ndarray:
    kind = draw(st.sampled_from(["few", "collinear", "repeated", "nan", "inf", "bowtie", "far"]))
    x, y = draw(coord(w)), draw(coord(h))
    if kind == "few":
        return np.array([[x, y], [x + 20, y + 5]][: draw(st.integers(0, 2))], np.float32).reshape(-1, 2)
    if kind == "collinear":
        return np.array([[x, y], [x + 30, y + 10], [x + 60, y + 20]], np.float32)
    if kind == "repeated":
        return np.array([[x, y]] * 4, np.float32)
    if kind in ("nan", "inf"):
        pts = np.array([[x, y], [x + 40, y], [x + 40, y + 20], [x, y + 20]], np.float32)
        pts[draw(st.integers(0, 3)), draw(st.integers(0, 1))] = np.nan if kind == "nan" else -np.inf
        return pts
    if kind == "bowtie":
        dy = draw(st.floats(5, 40))
        return np.array([[x, y], [x + 50, y + dy], [x + 50, y], [x, y + draw(st.floats(5, 40))]], np.float32)
    return np.array([[x + 1e4, y], [x + 1e4 + 50, y], [x + 1e4 + 50, y + 30]], np.float32)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    h, w = draw(st.integers(1, 100)), draw(st.integers(1, 100))
    if draw(st.integers(0, 4)):  # mostly images big enough to hold text
        h, w = max(h, 24), max(w, 24)
    polygon = st.one_of(
        rotated_rect(h, w),
        rotated_rect(h, w),
        star_polygon(h, w),
        star_polygon(h, w),
        tiny_polygon(h, w),
        degenerate_polygon(h, w),
    )
    polys = draw(st.lists(polygon, min_size=0, max_size=6))
    # Mostly not ignored, so most polygons get drawn.
    ignore = [draw(st.integers(0, 5)) == 5 for _ in polys]
    return (h, w), polys, ignore


# --- helpers ----------------------------------------------------------------------------------------


def assert_same(a: DBTargets, b: DBTargets) -> None:
    assert a.ignored_count == b.ignored_count
    for name in ("prob_map", "prob_mask", "thresh_map", "thresh_mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.float32, name
        assert same_bits(x, y), (
            f"{name} differs at {np.argwhere(x.view(np.uint32) != y.view(np.uint32))[:5].tolist()}"
        )


def assert_finite(t: DBTargets) -> None:
    for m in t.maps():
        assert np.isfinite(m).all()


def brute_force_thresh(case: Case, params: DBTargetParams, pixels: np.ndarray) -> np.ndarray:
    """Expected thresh at ``pixels`` (K, 2) as (x, y): shapely distance to the original edges."""
    shape, polys, ignore = case
    scratch = [np.zeros(shape, np.float32) for _ in range(3)]
    jobs, _ = prepare_polygons(polys, ignore, shape, params, *scratch)  # which polygons are drawn
    points = shapely.points(pixels.astype(np.float64))
    v = np.zeros(len(pixels))
    for k in range(len(jobs)):
        s, e = jobs.spans[k]
        ring = jobs.points[s:e]
        poly = shapely.Polygon(ring)
        d = poly.area * (1 - params.shrink_ratio**2) / poly.length
        assert jobs.distances[k] == pytest.approx(d, rel=1e-9)
        dist = shapely.distance(points, shapely.LinearRing(ring))
        v = np.fmax(v, 1 - np.clip(dist / d, 0, 1))
    return params.thresh_min + v * (params.thresh_max - params.thresh_min)


# --- properties -------------------------------------------------------------------------------------


@FAST
@given(cases())
def test_fast_db_is_bit_identical_to_the_reference(case: Case) -> None:
    shape, polys, ignore = case
    ref = make_db_targets_reference(polys, ignore, shape, DB)
    fast = make_db_targets(polys, ignore, shape, DB)
    assert_same(ref, fast)
    assert_finite(fast)


@FAST
@given(cases(), st.data())
def test_fast_exact_matches_shapely_brute_force(case: Case, data: st.DataObject) -> None:
    shape, polys, ignore = case
    fast = make_db_targets(polys, ignore, shape, EXACT)
    h, w = shape
    if h * w <= 2500:
        ys, xs = np.mgrid[0:h, 0:w]
        pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)
    else:
        seed = data.draw(st.integers(0, 2**31 - 1))
        rng = np.random.default_rng(seed)
        pixels = np.stack([rng.integers(0, w, 1500), rng.integers(0, h, 1500)], axis=1)
    expected = brute_force_thresh(case, EXACT, pixels)
    got = fast.thresh_map[pixels[:, 1], pixels[:, 0]]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@FAST
@given(cases())
def test_formulas_share_everything_but_the_thresh_map(case: Case) -> None:
    shape, polys, ignore = case
    db = make_db_targets(polys, ignore, shape, DB)
    exact = make_db_targets(polys, ignore, shape, EXACT)
    assert db.ignored_count == exact.ignored_count
    for name in ("prob_map", "prob_mask", "thresh_mask"):
        assert np.array_equal(getattr(db, name), getattr(exact, name)), name
    assert_finite(db)
    assert_finite(exact)
    # The classic formula never underestimates a distance, so its border values are never higher.
    assert (db.thresh_map <= exact.thresh_map + 1e-6).all()


@FAST
@given(cases(), st.sampled_from([DB, EXACT]))
def test_buffer_reuse_gives_the_same_result_as_fresh_buffers(case: Case, params: DBTargetParams) -> None:
    shape, polys, ignore = case
    fresh = make_db_targets(polys, ignore, shape, params)
    dirty = DBTargets.empty(shape)
    for m in dirty.maps():
        m.fill(np.nan)
    dirty.ignored_count = 99
    reused = make_db_targets(polys, ignore, shape, params, out=dirty)
    assert reused is dirty
    assert_same(fresh, reused)
    again = make_db_targets(polys, ignore, shape, params, out=reused)
    assert_same(fresh, again)


# --- examples the strategies may miss ----------------------------------------------------------------


def test_wrong_sized_buffers_are_replaced_not_reused() -> None:
    rect = np.array([[10, 10], [90, 10], [90, 40], [10, 40]], np.float32)
    small = DBTargets.empty((10, 10))
    t = make_db_targets([rect], [False], (60, 110), out=small)
    assert t is not small and t.shape == (60, 110)
    strided = [np.zeros((60, 220), np.float32)[:, ::2] for _ in range(4)]
    not_contiguous = DBTargets(strided[0], strided[1], strided[2], strided[3])
    t = make_db_targets([rect], [False], (60, 110), out=not_contiguous)
    assert t is not not_contiguous
    assert_same(t, make_db_targets([rect], [False], (60, 110)))


def test_long_thin_and_large_polygons_stay_bit_identical() -> None:
    # Long edges with a small D stress the "db" kernel's skip margin; integer vertices put pixels
    # exactly on vertices and on edges.
    polys = [
        np.array([[-500, 20], [700, 21], [700, 29], [-500, 28]], np.float32),
        np.array([[3, 3], [257, 3], [257, 251], [3, 251]], np.float32),
        np.array([[0, 60], [255.5, 90.25], [255.5, 98.75], [0, 68.5]], np.float32),
        np.array([[40, 120], [200, 121], [120, 200]], np.float32),
    ]
    for shape in ((256, 256), (100, 300)):
        ref = make_db_targets_reference(polys, [False] * 4, shape, DB)
        assert_same(ref, make_db_targets(polys, [False] * 4, shape, DB))


def test_targets_written_into_batch_slots() -> None:
    """``out=`` views into (B, H, W) batch arrays (as the collate passes them) are filled in place
    and reset between samples: what an earlier sample left in a slot never leaks into the next."""
    rect = np.array([[10, 10], [90, 10], [90, 40], [10, 40]], np.float32)
    tiny = np.array([[1, 1], [2, 1], [2, 2]], np.float32)
    samples = [([rect], [False]), ([rect + 5, tiny], [False, False]), ([], [])]
    arrays = [np.full((3, 60, 110), 7.0, np.float32) for _ in range(4)]
    for order in (samples, samples[::-1]):
        counts = []
        for b, (polys, ignore) in enumerate(order):
            view = DBTargets(*(a[b] for a in arrays))
            result = make_db_targets(polys, ignore, (60, 110), DB, out=view)
            assert result is view
            counts.append(result.ignored_count)
            single = make_db_targets(polys, ignore, (60, 110), DB)
            for a, m in zip(arrays, single.maps(), strict=True):
                assert np.array_equal(a[b], m)
        assert counts == [0, 1, 0]  # the tiny triangle becomes an ignore region


def test_slowdown_env_falls_back_to_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rect = np.array([[10, 10], [90, 10], [90, 40], [10, 40]], np.float32)
    monkeypatch.delenv(SLOWDOWN_ENV, raising=False)
    assert not slowdown_injected()
    monkeypatch.setenv(SLOWDOWN_ENV, "0")
    assert not slowdown_injected()
    monkeypatch.setenv(SLOWDOWN_ENV, "1")
    assert slowdown_injected()
    ref = make_db_targets_reference([rect], [False], (60, 110), DB)
    assert_same(ref, make_db_targets([rect], [False], (60, 110), EXACT))  # reference ignores formula
    out = DBTargets.empty((60, 110))
    assert make_db_targets([rect], [False], (60, 110), DB, out=out) is out
    assert_same(ref, out)


def test_bench_on_a_tiny_sroie_folder(tmp_path: Path) -> None:
    from PIL import Image

    from ocr.bench.targets import CACHE_HIT, FAST_DB, FAST_EXACT, REFERENCE, load_sroie_items, time_targets

    (tmp_path / "images").mkdir()
    (tmp_path / "gt").mkdir()
    Image.new("RGB", (200, 400)).save(tmp_path / "images" / "001.jpg")
    (tmp_path / "gt" / "001.txt").write_text(
        "\ufeff10,20,180,20,180,50,10,50,TOTAL, INCL. GST\n20,100,150,100,150,130,20,130,###\n\n",
        encoding="utf-8",
    )
    items = load_sroie_items(tmp_path, 800)
    assert len(items) == 1
    shape, polys, ignore = items[0]
    assert shape == (800, 400)
    np.testing.assert_array_equal(
        polys[0], np.array([[20, 40], [360, 40], [360, 100], [20, 100]], np.float32)
    )
    assert ignore == [False, True]
    calls: list[tuple[int, int]] = []
    timing = time_targets(items, repeats=3, exact=True, cache_lookup=lambda s, p, g: calls.append(s))
    assert timing.images == 1 and timing.db_identical == 1
    # one pass per arm per repeat (plus one untimed warm-up pass of the cache arm)
    assert calls == [(800, 400)] * 4
    assert {arm: len(v) for arm, v in timing.passes_s.items()} == dict.fromkeys(
        (REFERENCE, FAST_DB, FAST_EXACT, CACHE_HIT), 3
    )
    assert set(timing.ratios) == {FAST_DB, FAST_EXACT, CACHE_HIT}
    for arm in timing.passes_s:
        assert timing.ms_per_image(arm) > 0
    assert timing.speedup(FAST_DB) == pytest.approx(
        sorted(r / f for r, f in zip(timing.passes_s[REFERENCE], timing.passes_s[FAST_DB], strict=True))[1]
    )


def test_timer_counts_a_fast_path_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity count is real: a fast path off by one ulp in one pixel is not identical."""
    import ocr.bench.targets as bench

    real = bench.make_db_targets

    def off_by_one_ulp(*args: Any, **kwargs: Any) -> DBTargets:
        out = real(*args, **kwargs)
        out.thresh_map[0, 0] = np.nextafter(out.thresh_map[0, 0], np.float32(2))
        return out

    rect = np.array([[10, 10], [100, 10], [100, 50], [10, 50]], np.float32)
    items = [((60, 110), [rect], [False]), ((70, 120), [rect], [False])]
    assert bench.time_targets(items, repeats=1).db_identical == 2
    monkeypatch.setattr(bench, "make_db_targets", off_by_one_ulp)
    assert bench.time_targets(items, repeats=1).db_identical == 0
