"""All candidates scored at once (ocr.postprocess.scoring) against one contour at a time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.postprocess.scoring import _layout, _raster, contour_mean_scores, polygon_mean_score
from tests.unit.test_postprocess_fast import META, PAD, blob_map, receipt_map

KINDS = ["plain", "rotated", "split", "merged", "trapezoid", "holes"]


def contours_of(pm: np.ndarray, thresh: float) -> list[np.ndarray]:
    contours, _ = cv2.findContours((pm > thresh).view(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    return list(contours)


def groups_of(contours: list[np.ndarray]) -> np.ndarray:
    points = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    offsets = np.zeros(len(contours) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in contours], out=offsets[1:])
    return _layout(points, offsets)[1]


def random_blobs(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Overlapping ellipses, rings and noise: holes, nested blobs, odd shapes touching the edges."""
    pm = rng.uniform(0, 0.25, shape).astype(np.float32)
    for _ in range(int(rng.integers(5, 40))):
        centre = (int(rng.integers(-10, shape[1] + 10)), int(rng.integers(-10, shape[0] + 10)))
        axes = (int(rng.integers(1, 60)), int(rng.integers(1, 25)))
        value = float(rng.uniform(0.2, 1.0))
        thickness = -1 if rng.random() < 0.6 else int(rng.integers(1, 5))
        cv2.ellipse(pm, centre, axes, float(rng.uniform(0, 180)), 0, 360, value, thickness)
    return cv2.blur(pm, (3, 3))


def assert_same_scores(pm: np.ndarray, contours: list[np.ndarray]) -> None:
    scores = contour_mean_scores(pm, contours)
    assert scores.dtype == np.float64 and scores.shape == (len(contours),)
    expected = [polygon_mean_score(pm, c) for c in contours]
    assert scores.tolist() == expected  # bit for bit, not approximately
    assert not _raster(pm.shape).any()  # the shared raster is left clean for the next image


@pytest.mark.parametrize("kind", KINDS)
def test_scores_equal_one_at_a_time_on_blob_maps(kind: str) -> None:
    rng = np.random.default_rng(7 + len(kind))
    for thresh in (0.3, 0.5):
        pm = blob_map(rng, kind)
        contours = contours_of(pm, thresh)
        assert len(contours) > 10
        assert_same_scores(pm, contours)


def test_scores_equal_one_at_a_time_on_random_blobs() -> None:
    rng = np.random.default_rng(3)
    seen = {"grouped": 0, "alone": 0, "several_groups": 0}
    for trial in range(60):
        shape = (int(rng.integers(20, 200)), int(rng.integers(20, 200)))
        pm = random_blobs(rng, shape)
        if trial % 3 == 0:  # a strided (non-contiguous) map
            pm = np.ascontiguousarray(np.pad(pm, ((0, 0), (0, 5))))[:, :-5]
        contours = contours_of(pm, float(rng.choice([0.2, 0.3, 0.45])))
        assert_same_scores(pm, contours)
        if contours:
            group = groups_of(contours)
            seen["grouped"] += int((group >= 0).sum())
            seen["alone"] += int((group < 0).sum())
            seen["several_groups"] += int(group.max() >= 1)
    # both paths and multi-group rasters were exercised, so the equality above means something
    assert min(seen.values()) > 5, seen


@pytest.mark.parametrize("seed", range(3))
def test_scores_equal_one_at_a_time_on_generated_receipts(seed: int) -> None:
    pm = receipt_map(np.random.default_rng(seed))
    contours = contours_of(pm, 0.3)
    assert len(contours) > 20
    assert_same_scores(pm, contours)


def test_holes_and_nested_blobs_are_scored_alone() -> None:
    """A hole border shares pixels with its neighbours; a blob in a hole lies in the outer fill."""
    pm = np.zeros((60, 80), np.float32)
    pm[5:40, 5:60] = 0.9
    pm[10:30, 10:25] = 0.1  # two holes with a one-pixel wall between them
    pm[10:30, 26:40] = 0.2
    pm[15:20, 30:35] = 0.7  # a blob inside the second hole
    pm[45:55, 10:70] = 0.8  # an ordinary line
    contours = contours_of(pm, 0.3)
    assert len(contours) == 5
    group = groups_of(contours)
    assert (group >= 0).sum() == 1  # only the ordinary line shares the raster
    assert_same_scores(pm, contours)


def test_past_255_groups_contours_are_scored_alone() -> None:
    """Parallel diagonal strokes whose boxes all overlap: each stroke needs a label of its own."""
    count, step = 300, 3
    length = count * step
    pm = np.zeros((length + count * step + 20, length + count * step + 20), np.float32)
    for k in range(count):
        a, b = 10 + k * step, 10 + length + k * step
        band = np.array([[a, b], [a + 2, b], [b + 2, a], [b, a]], np.int32)  # 3 px wide
        cv2.fillPoly(pm, [band], float(0.4 + 0.5 * (k % 7) / 7))
    contours = contours_of(pm, 0.3)
    assert len(contours) == count
    group = groups_of(contours)
    assert group.max() == 254 and (group < 0).sum() == count - 255
    assert_same_scores(pm, contours)


def test_no_contours() -> None:
    assert contour_mean_scores(np.zeros((PAD, PAD), np.float32), []).shape == (0,)


def test_polygon_output_equals_reference() -> None:
    """``output="polygon"`` scores the contours, not their approximations, one pass per image."""
    from ocr.postprocess import DBPostProcessor
    from ocr.postprocess.reference import reference_polygons

    post = DBPostProcessor(output="polygon", box_thresh=0.5)
    for i, kind in enumerate(KINDS):
        pm = blob_map(np.random.default_rng(i), kind)
        polys, scores = post(pm, META)
        ref_polys, ref_scores = reference_polygons(post, pm, META)
        assert scores == ref_scores and len(polys) == len(ref_polys) > 5
        for a, b in zip(polys, ref_polys, strict=True):
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b)
