"""Fast DB post-processing against the one-box-at-a-time reference, and the padding-blob fix."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr.postprocess import DBPostProcessor
from ocr.postprocess.reference import reference_quads

ORIG_H, ORIG_W, SCALE = 1000, 750, 0.64  # letterboxed into 640x640: content 640x480, padding right
PAD = 640
META = {"orig_size": (ORIG_H, ORIG_W), "scale": SCALE}


def blob_map(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A map with text-like blobs of one kind, blurred like a model output."""
    pm = np.zeros((PAD, PAD), np.float32)
    for i in range(14):
        cx, cy = rng.uniform(40, 440), 25 + 44 * i
        w, h = rng.uniform(20, 300), rng.uniform(6, 16)
        angle = rng.uniform(-30, 30) if kind == "rotated" else 0.0
        if kind == "trapezoid":
            s = rng.uniform(-12, 12)
            pts = np.array([[cx + s, cy - h], [cx + w + s, cy - h], [cx + w, cy + h], [cx, cy + h]])
        else:
            pts = cv2.boxPoints(((cx, cy), (w, 2 * h), angle))
        cv2.fillPoly(pm, [np.round(pts).astype(np.int32)], float(rng.uniform(0.5, 1.0)))
        if kind == "split":  # a gap through the line
            gx = int(cx + w / 2)
            pm[int(cy - h) - 1 : int(cy + h) + 2, gx : gx + 2] = 0.0
        if kind == "merged":  # a bridge to the next line
            pm[int(cy) : int(cy) + 44, int(cx) + 5 : int(cx) + 9] = 0.9
        if kind == "holes":  # a hole (its border scores alone) and a blob nested inside it
            x0, y0 = int(cx), int(cy - h)
            pm[y0 + 3 : y0 + 2 * int(h) - 2, x0 + 6 : x0 + 16] = 0.0
            pm[y0 + 3 : y0 + 2 * int(h) - 2, x0 + 17 : x0 + 30] = 0.0  # one-pixel wall between holes
            pm[y0 + 5 : y0 + 8, x0 + 9 : x0 + 13] = 0.9
    if kind == "holes":  # a one-pixel cross: zero area, but a min-area rect above min_size
        pm[200:240, 450] = 0.9
        pm[220, 430:470] = 0.9
    pm[:, 470:] = 0.0
    pm[300:320, 500:600] = 0.95  # wholly in the padding (x >= 480)
    pm[100:130, 470:520] = 0.9  # straddles the content edge
    pm += rng.uniform(0, 0.35, pm.shape).astype(np.float32)  # noise below and around the threshold
    return cv2.blur(np.clip(pm, 0, 1), (3, 3))


def receipt_map(rng: np.random.Generator) -> np.ndarray:
    """A SROIE-like perfect-model map: the GT shrink map of a generated receipt (3x3 blur).

    Two columns of text lines, the page slightly rotated, some lines slanted (trapezoids), some
    don't-care (``###``) lines, some lines close enough to touch once blurred.
    """
    from ocr.bench.eval_work import perfect_map

    page = rng.uniform(-6, 6)
    polygons, ignore = [], []
    y = 20.0
    while y < ORIG_H - 40:
        height = rng.uniform(14, 30)
        for x0, x1 in ((20.0, rng.uniform(150, 360)), (rng.uniform(400, 520), rng.uniform(560, 730))):
            if rng.random() < 0.2:
                continue
            slant = rng.uniform(-8, 8) if rng.random() < 0.3 else 0.0
            quad = np.array([[x0 + slant, y], [x1 + slant, y], [x1, y + height], [x0, y + height]])
            centre = np.array([ORIG_W / 2, ORIG_H / 2])
            t = np.deg2rad(page)
            rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
            polygons.append(((quad - centre) @ rot.T + centre).astype(np.float32))
            ignore.append(bool(rng.random() < 0.15))
        y += height + rng.choice([2.0, rng.uniform(6, 20)])
    return perfect_map(polygons, ignore, SCALE, PAD)


def assert_same_detections(post: DBPostProcessor, pm: np.ndarray) -> int:
    fast_polys, fast_scores = post(pm, META)
    ref_polys, ref_scores = reference_quads(post, pm, META)
    assert fast_scores == ref_scores
    assert len(fast_polys) == len(ref_polys)
    for a, b in zip(fast_polys, ref_polys, strict=True):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    return len(fast_polys)


@pytest.mark.parametrize("seed", range(4))
def test_fast_postprocess_equals_reference_on_generated_receipts(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    pm = receipt_map(rng)
    for post in (DBPostProcessor(), DBPostProcessor(thresh=0.2, box_thresh=0.5)):
        assert assert_same_detections(post, pm) > 20


@pytest.mark.parametrize("kind", ["plain", "rotated", "split", "merged", "trapezoid", "holes"])
def test_fast_postprocess_equals_reference(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    for box_thresh in (0.5, 0.6):
        post = DBPostProcessor(box_thresh=box_thresh)
        for _ in range(2):
            pm = blob_map(rng, kind)
            fast_polys, fast_scores = post(pm, META)
            ref_polys, ref_scores = reference_quads(post, pm, META)
            assert fast_scores == ref_scores
            assert len(fast_polys) == len(ref_polys) > 0
            for a, b in zip(fast_polys, ref_polys, strict=True):
                assert a.dtype == b.dtype == np.float32
                np.testing.assert_array_equal(a, b)


def test_fast_postprocess_equals_reference_on_real_receipts(sroie_root) -> None:
    from ocr.bench.eval_work import load_items

    post = DBPostProcessor()
    for item in load_items(sroie_root / "val", 512, limit=3):
        fast, fs = post(item.prob_map, item.meta)
        ref, rs = reference_quads(post, item.prob_map, item.meta)
        assert fs == rs and len(fast) == len(ref) > 10
        for a, b in zip(fast, ref, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("output", ["quad", "polygon"])
def test_blob_in_the_padding_gives_no_box(output: str) -> None:
    """All its corners clip to x = orig_w - 1: a zero-width quad on the edge, a false positive."""
    pm = np.zeros((PAD, PAD), np.float32)
    pm[300:320, 500:600] = 0.95  # content ends at x = 480
    assert DBPostProcessor(output=output)(pm, META) == ([], [])
    pm[100:120, 300:470] = 0.95  # a real line still comes out
    polys, _ = DBPostProcessor(output=output)(pm, META)
    assert len(polys) == 1 and polys[0][:, 0].min() < 300 / SCALE
