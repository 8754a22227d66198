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

Entries are keyed on the reader's ``identity(index)`` (path, size, mtime), the image size, the
albumentations/OpenCV/numpy versions and a fingerprint of the reader and transform sources.
Per-sample perf: ``decoded_cache`` (lookup, plus encode + store on a miss); counters
``decoded_cache_hits`` / ``decoded_cache_misses``.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import time
from typing import Any, Protocol

import numpy as np
from torch.utils.data import Dataset

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.image_io import ImageReadError
from ocr.data.sample import Item, TextSample
from ocr.data.transforms import ReceiptTransform
from ocr.errors import SampleError

DECODED_VERSION = "decoded-cache-v1"
_HEADER = struct.Struct("<IIIQ")  # H, W, C, record length


class EntryStore(Protocol):
    """The part of a node-cache client (``ocr.cache.client.CacheClient``) this module uses."""

    def read(self, key: str) -> memoryview | None: ...

    def write(self, key: str, parts: list[Any]) -> None: ...

    def discard(self, key: str) -> None: ...


class CorruptDecoded(ValueError):
    pass


def encode(image: np.ndarray, record: dict[str, Any]) -> list[Any]:
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 HWC image, got {image.dtype} {image.shape}")
    blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    h, w, c = image.shape
    data = np.ascontiguousarray(image)
    return [_HEADER.pack(h, w, c, len(blob)), data.reshape(-1).data, blob]


def decode(payload: memoryview) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        h, w, c, n_blob = _HEADER.unpack_from(payload)
        size = h * w * c
        if _HEADER.size + size + n_blob != len(payload):
            raise CorruptDecoded("decoded-image entry of the wrong size")
        image = np.frombuffer(payload, np.uint8, size, _HEADER.size).reshape(h, w, c)
        record = pickle.loads(payload[_HEADER.size + size :])
    except (struct.error, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise CorruptDecoded(f"malformed decoded-image entry: {exc}") from None
    return image, record


def _versions_and_sources(dataset: ReceiptDataset) -> tuple[str, ...]:
    import albumentations
    import cv2

    from ocr.cache.fingerprint import code_fingerprint

    return (
        str(albumentations.__version__),
        str(cv2.__version__),
        str(np.__version__),
        code_fingerprint(),  # the whole package source: an edit anywhere can't serve stale images
    )


class DecodedImageDataset(Dataset[Item]):
    """``dataset[index]`` with the decode + resize served from the node store after the first time."""

    def __init__(self, dataset: ReceiptDataset, store: EntryStore) -> None:
        transform = dataset.transform
        if not isinstance(transform, ReceiptTransform):
            raise ValueError("the decoded-image cache needs a ReceiptTransform")
        self.dataset = dataset
        self.store = store
        self._prefix = repr(
            (DECODED_VERSION, transform.config.image_size, *_versions_and_sources(dataset))
        ).encode()

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def transform(self) -> Any:
        return self.dataset.transform

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def key(self, index: int) -> str:
        digest = hashlib.blake2b(self._prefix, digest_size=32, person=b"ocr-decoded")
        digest.update(repr(self.dataset.identity(index)).encode())
        return digest.hexdigest()

    def __getitem__(self, index: int) -> Item:
        start = time.perf_counter()
        transform = self.dataset.transform
        assert isinstance(transform, ReceiptTransform)
        try:
            key = self.key(index)
        except OSError:  # the file is gone: let the reader report it as a skipped sample
            return self.dataset[index]
        payload = self.store.read(key)
        if payload is not None:
            try:
                image, record = decode(payload)
            except CorruptDecoded:
                self.store.discard(key)
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
        self.store.write(key, encode(np.ascontiguousarray(small), record))
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
