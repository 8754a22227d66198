"""Decoded-image cache for training: decode + resize once per node, augment every epoch.

Decoding a receipt and scaling it to ``image_size`` give the same result every epoch; only what
follows (augmentation, padding, crop, targets) is random. :class:`DecodedImageDataset` wraps a
training reader and keeps, per sample, the output of the transform's deterministic first step
(:meth:`ocr.data.transforms.ReceiptTransform.resize`): the uint8 image resized before
augmentation, its polygons, and the annotations. A hit skips the JPEG decode and the resize; the
workers then only augment and build targets. Hit or miss, the transform is applied to the very
same arrays, so the training input is the same bit for bit with the cache on or off.

It talks to the node's shared entry store (the one that holds the target maps and the validation
samples, so one byte budget covers all of them) through a :class:`ocr.cache.client.CacheClient` of
its own kind: ``read(key)``, ``write(key, parts)`` and ``discard(key)``.

Entries are keyed on the reader's ``identity(index)`` (path, size, mtime), the image size and
:func:`~ocr.cache.fingerprint.code_fingerprint` (the package source and the albumentations/OpenCV/
numpy versions).
Per-sample perf: ``decoded_cache`` (lookup, plus encode + store on a miss); counters
``decoded_cache_hits`` / ``decoded_cache_misses``.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np

from ocr.cache.client import CacheClient
from ocr.cache.codec import CorruptEntry, decode_pixels, encode_pixels
from ocr.cache.fingerprint import code_fingerprint
from ocr.data.datasets.base import ReceiptDataset
from ocr.data.image_io import ImageReadError
from ocr.data.sample import Item, TextSample
from ocr.data.sample_cache import CachedReader
from ocr.data.transforms import ReceiptTransform
from ocr.errors import SampleError

DECODED_VERSION = "decoded-cache-v2"  # v2: the pixels and the record as codec blob sections
_HEADER = struct.Struct("<III4x")  # H, W, C


def encode(image: np.ndarray, record: dict[str, Any]) -> list[Any]:
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 HWC image, got {image.dtype} {image.shape}")
    return encode_pixels(_HEADER.pack(*image.shape), image, record)


def decode(payload: memoryview) -> tuple[np.ndarray, dict[str, Any]]:
    (h, w, c), pixels, record = decode_pixels(payload, _HEADER)
    if len(pixels) != h * w * c:
        raise CorruptEntry("decoded-image entry of the wrong size")
    return np.frombuffer(pixels, np.uint8).reshape(h, w, c), record


class DecodedImageDataset(CachedReader):
    """``dataset[index]`` with the decode + resize served from the node store after the first time."""

    person = b"ocr-decoded"

    def __init__(self, dataset: ReceiptDataset, cache: CacheClient) -> None:
        transform = dataset.transform
        if not isinstance(transform, ReceiptTransform):
            raise ValueError("the decoded-image cache needs a ReceiptTransform")
        # the fingerprint holds the package source and the numpy/OpenCV/albumentations versions
        super().__init__(dataset, cache, (DECODED_VERSION, transform.config.image_size, code_fingerprint()))

    def __getitem__(self, index: int) -> Item:
        start = time.perf_counter()
        transform = self.dataset.transform
        assert isinstance(transform, ReceiptTransform)
        try:
            key = self.key(index)
        except OSError:  # the file is gone: let the reader report it as a skipped sample
            return self.dataset[index]
        payload = self.cache.read(key)
        if payload is not None:
            try:
                image, record = decode(payload)
            except CorruptEntry:
                self.cache.discard(key)
            else:
                looked = time.perf_counter() - start
                sample = TextSample(image, **record["sample"])
                out = transform(sample, resized=(image, record["resized"], record["orig_size"]))
                out["perf"] |= {"decode": 0.0, "decoded_cache": looked, "counters": {"decoded_cache_hits": 1}}
                out["index"] = index
                return out
        looked = time.perf_counter() - start
        t0 = time.perf_counter()
        try:
            sample = self.dataset.load(index)
        except (SampleError, ImageReadError, OSError) as exc:
            return self.dataset._skip(index, exc, time.perf_counter() - t0)
        decoded = time.perf_counter()
        small, polygons = transform.resize(sample.image, sample.polygons)
        resized = time.perf_counter()
        record = {
            "sample": {
                "polygons": sample.polygons,
                "texts": sample.texts,
                "ignore": sample.ignore,
                "name": sample.name,
                "meta": sample.meta,
            },
            "resized": polygons,
            "orig_size": tuple(int(v) for v in sample.image.shape[:2]),
        }
        self.cache.write(key, encode(np.ascontiguousarray(small), record))
        stored = time.perf_counter() - resized
        out = transform(sample, resized=(small, polygons, record["orig_size"]))
        out["perf"]["transform"] += resized - decoded  # the resize is the transform's first step
        out["perf"] |= {
            "decode": decoded - t0,
            "decoded_cache": looked + stored,
            "counters": {"decoded_cache_misses": 1},
        }
        out["index"] = index
        return out
