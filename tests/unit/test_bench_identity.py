"""The one bit-identity check (ocr.bench.identity): stricter than ``==`` where it matters."""

from __future__ import annotations

import numpy as np

from ocr.bench.eval_work import same_detections
from ocr.bench.identity import same_bits, same_targets
from ocr.targets import make_db_targets


def test_same_bits_compares_bits_dtype_and_shape() -> None:
    a = np.array([0.0, np.nan, 1.0], np.float32)
    assert same_bits(a, a.copy())  # NaN is identical to itself (np.array_equal says no)
    assert not np.array_equal(a, a.copy())
    negative_zero = a.copy()
    negative_zero[0] = -0.0
    assert not same_bits(a, negative_zero)  # == calls them equal
    assert not same_bits(a, a.astype(np.float64))
    assert not same_bits(a, a.reshape(1, 3))


def test_same_targets_needs_every_map_and_the_ignore_count() -> None:
    square = np.array([[10, 10], [50, 10], [50, 50], [10, 50]], np.float32)
    a = make_db_targets([square], [False], (64, 64))
    b = make_db_targets([square], [False], (64, 64))
    assert same_targets(a, b)
    b.thresh_mask[0, 0] = np.nextafter(b.thresh_mask[0, 0], np.float32(2))
    assert not same_targets(a, b)
    c = make_db_targets([square], [False], (64, 64))
    c.ignored_count += 1
    assert not same_targets(a, c)


def test_same_detections_is_bit_identity_of_every_polygon() -> None:
    quad = np.array([[1, 2], [3, 2], [3, 4], [1, 4]], np.int32)
    assert same_detections([([quad], [0.9])], [([quad.copy()], [0.9])])
    assert not same_detections([([quad], [0.9])], [([quad.astype(np.int64)], [0.9])])
    assert not same_detections([([quad], [0.9])], [([quad + 1], [0.9])])
    assert not same_detections([([quad], [0.9])], [([quad], [0.8])])
