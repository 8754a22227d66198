"""Whole-sample cache: a deterministic split is decoded, resized and padded once per node.

Once targets are fast, JPEG decoding and resizing dominate a validation sample (SROIE at 1024:
~11 ms decode + ~13 ms transform, vs ~2 ms of targets). :class:`CachedSampleDataset` wraps a
reader whose transform is deterministic and stores, per sample, what the transform produced:

* the **uint8 image before normalisation**, cropped to its non-zero box (the padding is zeros):
  ~1.2 MB instead of 12 MB of float32 at 1024, and exact, because a hit runs the transform's own
  normaliser on the very uint8 array the miss normalised. The first few stores of each process
  also decode their entry and compare it with the live sample bit for bit; a mismatch turns the
  cache off for that dataset instead of serving a different input.
* polygons, ignore flags and metadata, pickled.

The target maps are not stored twice: the cached polygons give the same target key, so the
collate's :class:`~ocr.targets.cache.PolygonCache` lookup hits. Keys cover the reader's
``identity(index)`` (path, size, mtime), ``TransformConfig.cache_key()``, the target parameters,
the albumentations/OpenCV versions and a fingerprint of the reader and transform sources.

Per-sample perf: ``sample_cache`` (lookup, plus encode + store on a miss) next to ``decode`` and
``transform``; counters ``sample_cache_hits``/``sample_cache_misses`` (summed by the collate).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import struct
import time
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ocr.data.datasets.base import ReceiptDataset, is_skipped
from ocr.data.transforms import ReceiptTransform
from ocr.targets.cache import PolygonCache, source_fingerprint
from ocr.targets.cache_format import KIND_SAMPLE, Buffer, CorruptEntry, raw
from ocr.targets.params import DBTargetParams

log = logging.getLogger(__name__)

SAMPLE_VERSION = "sample-cache-v1"
_SAMPLE = struct.Struct("<IIIIIIIQ")  # H, W, C, y0, y1, x0, x1, pickle length
VERIFY_FIRST = 4


def encode_sample(image: np.ndarray, record: dict[str, Any]) -> list[Buffer]:
    """uint8 HWC image (stored as its non-zero box) + a picklable record."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 HWC image, got {image.dtype} {image.shape}")
    h, w, c = image.shape
    nonzero = np.any(image, axis=2)
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
    x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return [_SAMPLE.pack(h, w, c, y0, y1, x0, x1, len(blob)), raw(crop), b"\0" * (-crop.nbytes % 8), blob]


def decode_sample(payload: memoryview) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        h, w, c, y0, y1, x0, x1, n_blob = _SAMPLE.unpack_from(payload)
        if not (y0 <= y1 <= h and x0 <= x1 <= w):
            raise CorruptEntry("crop box outside the image")
        offset = _SAMPLE.size
        size = (y1 - y0) * (x1 - x0) * c
        crop = np.frombuffer(payload, np.uint8, size, offset).reshape(y1 - y0, x1 - x0, c)
        offset += size + (-size % 8)
        if offset + n_blob != len(payload):
            raise CorruptEntry("sample record of the wrong size")
        record = pickle.loads(payload[offset:])
    except (struct.error, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise CorruptEntry(f"malformed sample entry: {exc}") from None
    image = np.zeros((h, w, c), np.uint8)
    image[y0:y1, x0:x1] = crop
    return image, record


class _Capture:
    """Stands in for ``ReceiptTransform.normalize`` and keeps the uint8 image it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> Any:
        self.last = image
        return self.inner(image)

    def take(self) -> np.ndarray | None:
        image, self.last = self.last, None
        return image

    def __getattr__(self, name: str) -> Any:  # e.g. ``invert`` for overlays
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _versions() -> tuple[str, ...]:
    import albumentations
    import cv2

    return (str(albumentations.__version__), str(cv2.__version__), str(np.__version__))


class CachedSampleDataset(Dataset[dict[str, Any]]):
    """Serves ``dataset[index]`` from the node cache after the first epoch (deterministic splits only)."""

    def __init__(
        self, dataset: ReceiptDataset, cache: PolygonCache, params: DBTargetParams | None = None
    ) -> None:
        transform = dataset.transform
        if not isinstance(transform, ReceiptTransform) or not transform.deterministic:
            raise ValueError("the sample cache needs a deterministic ReceiptTransform (no augmentation)")
        self.dataset = dataset
        self.cache = cache
        modules = ("ocr.data.transforms", "ocr.data.datasets.base", type(dataset).__module__)
        self._prefix = repr((
            SAMPLE_VERSION,
            transform.config.cache_key(),
            (params or DBTargetParams()).as_key(),
            _versions(),
            source_fingerprint(*modules),
        )).encode()
        self.exact = True
        self._verified = 0

    # -- the wrapped reader's interface ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def transform(self) -> Any:
        return self.dataset.transform

    def identity(self, index: int) -> tuple[Any, ...]:
        return self.dataset.identity(index)

    def describe(self, index: int) -> str:
        return self.dataset.describe(index)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    # -- cache ----------------------------------------------------------------------------------
    def key(self, index: int) -> str:
        digest = hashlib.blake2b(self._prefix, digest_size=32, person=b"ocr-sample")
        digest.update(repr(self.dataset.identity(index)).encode())
        return digest.hexdigest()

    def _normalize(self) -> Any:
        normalize = self.dataset.transform.normalize  # type: ignore[union-attr]
        return normalize.inner if isinstance(normalize, _Capture) else normalize

    def _capture(self) -> _Capture:
        transform = self.dataset.transform
        assert isinstance(transform, ReceiptTransform)
        if not isinstance(transform.normalize, _Capture):
            transform.normalize = _Capture(transform.normalize)  # type: ignore[assignment]
        return transform.normalize  # type: ignore[return-value]

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = time.perf_counter()
        key = self.key(index) if self.exact else ""
        payload = self.cache.read_entry(key, KIND_SAMPLE) if self.exact else None
        if payload is not None:
            try:
                image, record = decode_sample(payload)
            except CorruptEntry:
                self.cache.discard(key, KIND_SAMPLE)
            else:
                read = time.perf_counter()
                record["image"] = self._normalize()(image)
                record["perf"] = {
                    "decode": 0.0,
                    "transform": time.perf_counter() - read,
                    "sample_cache": read - start,
                    "counters": {"sample_cache_hits": 1},
                }
                return record
        looked = time.perf_counter() - start
        capture = self._capture()
        out = self.dataset[index]
        captured = capture.take()
        if is_skipped(out) or captured is None or not self.exact:
            return out
        t0 = time.perf_counter()
        record = {k: v for k, v in out.items() if k not in ("image", "perf")}
        parts = encode_sample(captured, record)
        if self._verified < VERIFY_FIRST:
            self._verify(parts, out)
        if self.exact:
            self.cache.write_entry(key, KIND_SAMPLE, parts)
        out["perf"]["sample_cache"] = looked + time.perf_counter() - t0
        out["perf"]["counters"] = {"sample_cache_misses": 1}
        return out

    def _verify(self, parts: list[Buffer], out: dict[str, Any]) -> None:
        """Decode the entry as a hit would and compare with the live sample, bit for bit."""
        payload = memoryview(b"".join(parts))
        image, record = decode_sample(payload)
        cached = self._normalize()(image).numpy()
        live = out["image"].numpy()
        same = cached.shape == live.shape and np.array_equal(cached.view(np.uint32), live.view(np.uint32))
        same = same and pickle.dumps(record) == pickle.dumps({k: v for k, v in out.items() if k in record})
        if not same:
            log.warning("sample cache disabled for %s: a cached sample would differ from the live one",
                        type(self.dataset).__name__)
            self.exact = False
        self._verified += 1


__all__ = ["CachedSampleDataset", "decode_sample", "encode_sample"]
