"""Whole-sample cache: a deterministic split is decoded, resized and padded once per node.

JPEG decoding and resizing dominate a validation sample once targets are fast (the per-stage
figures: docs/cache.md). :class:`CachedSampleDataset` wraps a reader whose transform is
deterministic and stores, per sample, what the reader returned:

* the **uint8 CHW image**, cropped to its non-zero box (the padding is zeros).
  A hit hands the collate a :class:`CachedImage`, which it copies straight into its uint8 batch
  slot, zeros around it: the very bytes the miss produced;
* polygons, ignore flags and metadata (GT included), pickled.

The target maps are not in this entry: the collate takes them from the target-map client
(:class:`ocr.targets.cache.PolygonCache`), one layer below, so each client caches one thing and
counts it (``sample_cache_*``, ``target_cache_*``).

**Keys** cannot go stale: the reader's ``identity(index)`` carries a hash of each input file's
bytes (:func:`ocr.data.sanitize.file_identity`), recomputed on every lookup, and the key adds
:func:`~ocr.cache.fingerprint.code_fingerprint` (the whole package source and the decoding
libraries' versions) and ``TransformConfig.cache_key()``. An identity that cannot be read (a
symlink loop, a permission error) is counted (``sample_cache_identity_errors``) and the sample is
served uncached, so the reader skips it with its own reason.

Per-sample perf: ``sample_identity`` (the key: hashing the input files), ``sample_cache`` (the
entry read, or encode + store on a miss).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ocr.cache.client import CacheClient
from ocr.cache.codec import Buffer, CorruptEntry, decode_pixels, encode_pixels
from ocr.cache.fingerprint import code_fingerprint
from ocr.data.datasets.base import ReceiptDataset
from ocr.data.sample import Item, Sample, as_tensor
from ocr.data.transforms import ReceiptTransform
from ocr.targets.db_targets import slowdown_injected

log = logging.getLogger(__name__)

SAMPLE_VERSION = "sample-cache-v3"  # v3: CHW uint8 image + record only; maps live in the target client
_SAMPLE = struct.Struct("<IIIIIII4x")  # C, H, W, y0, y1, x0, x1
VERIFY_FIRST = 4


def _box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the non-zero pixels of a CHW image ((0, 0, 0, 0) when all zero)."""
    c, h, w = image.shape
    mask = image.reshape(c, h * w).any(axis=0).reshape(h, w)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def encode_sample(image: np.ndarray, record: dict[str, Any]) -> list[Buffer]:
    """uint8 CHW image (stored as its non-zero box) + a picklable record, as codec sections."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 CHW image, got {image.dtype} {image.shape}")
    c, h, w = image.shape
    y0, y1, x0, x1 = _box(image)
    return encode_pixels(_SAMPLE.pack(c, h, w, y0, y1, x0, x1), image[:, y0:y1, x0:x1], record)


def decode_sample(payload: memoryview) -> tuple[CachedImage, dict[str, Any]]:
    """(the deferred image, the record) of a sample entry, or :class:`CorruptEntry`."""
    (c, h, w, y0, y1, x0, x1), pixels, record = decode_pixels(payload, _SAMPLE)
    if not (y0 <= y1 <= h and x0 <= x1 <= w):
        raise CorruptEntry("crop box outside the image")
    if len(pixels) != c * (y1 - y0) * (x1 - x0):
        raise CorruptEntry("image crop of the wrong size")
    crop = np.frombuffer(pixels, np.uint8).reshape(c, y1 - y0, x1 - x0)
    return CachedImage(crop, (h, w, y0, x0)), record


class CachedImage:
    """A sample-cache hit's uint8 CHW image, written only when the collate puts it into the batch.

    ``DBCollateFN`` calls :meth:`write_into` with the sample's slot of the batch tensor (in shared
    memory inside a worker), so the image is written once instead of into a per-sample tensor that
    ``torch.stack`` then copies. :meth:`tensor` materialises it for anything else.
    """

    __slots__ = ("box", "crop", "dtype", "shape")

    def __init__(self, crop: np.ndarray, box: tuple[int, int, int, int]) -> None:
        self.crop = crop
        self.box = box
        self.shape = (int(crop.shape[0]), box[0], box[1])
        self.dtype = torch.uint8

    def write_into(self, out: np.ndarray) -> None:
        """The crop at (y0, x0), zeros around it (the slot may hold an earlier batch's pixels)."""
        if out.shape != self.shape or out.dtype != np.uint8:
            raise ValueError(f"need a uint8 {self.shape} slot, got {out.dtype} {out.shape}")
        _h, _w, y0, x0 = self.box
        y1, x1 = y0 + self.crop.shape[1], x0 + self.crop.shape[2]
        out[:, :y0] = 0
        out[:, y1:] = 0
        out[:, y0:y1, :x0] = 0
        out[:, y0:y1, x1:] = 0
        out[:, y0:y1, x0:x1] = self.crop

    def tensor(self) -> torch.Tensor:
        out = np.empty(self.shape, np.uint8)
        self.write_into(out)
        return torch.from_numpy(out)


def _same(a: Any, b: Any) -> bool:
    """Structural equality; arrays bit for bit, with dtype and shape."""
    if isinstance(a, torch.Tensor):
        a = a.numpy()
    if isinstance(b, torch.Tensor):
        b = b.numpy()
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


class CachedReader(Dataset[Item]):
    """A reader served through a node-cache client: its length and attributes, and entry keys.

    A key is the blake2b (personalised per wrapper) of ``prefix`` (what shapes an entry besides the
    input: code, transform settings) and the reader's ``identity(index)`` (the input files).
    """

    person: ClassVar[bytes]

    def __init__(self, dataset: ReceiptDataset, cache: CacheClient, prefix: tuple[Any, ...]) -> None:
        self.dataset = dataset
        self.cache = cache
        self._prefix = repr(prefix).encode()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        # the wrapped reader's interface (transform, identity, describe...); "dataset" itself is
        # missing only while unpickling, and must not recurse
        if name.startswith("__") or name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def key(self, index: int) -> str:
        digest = hashlib.blake2b(self._prefix, digest_size=32, person=self.person)
        digest.update(repr(self.dataset.identity(index)).encode())
        return digest.hexdigest()


class CachedSampleDataset(CachedReader):
    """Serves ``dataset[index]`` from the node cache after the first epoch (deterministic splits only)."""

    person = b"ocr-sample"

    def __init__(self, dataset: ReceiptDataset, cache: CacheClient) -> None:
        transform = dataset.transform
        if not isinstance(transform, ReceiptTransform) or not transform.deterministic:
            raise ValueError("the sample cache needs a deterministic ReceiptTransform (no augmentation)")
        prefix = (SAMPLE_VERSION, transform.config.cache_key(), code_fingerprint(), type(dataset).__name__)
        super().__init__(dataset, cache, prefix)
        self.exact = True
        self._verified = 0

    def __getitem__(self, index: int) -> Item:
        start = time.perf_counter()
        key = None
        if self.exact:
            try:
                key = self.key(index)
            except (OSError, RuntimeError, ValueError) as exc:  # e.g. a symlink loop: the reader skips it
                log.debug("sample %d: no cache identity (%s)", index, exc)
                self.cache.count("identity_errors")
        keyed = time.perf_counter()
        payload = None if key is None or slowdown_injected() else self.cache.read(key)
        if payload is not None and key is not None:
            try:
                image, record = decode_sample(payload)
            except CorruptEntry:
                self.cache.discard(key)
            else:
                self.cache.count("hits")
                return {
                    "image": image,
                    "polygons": record["polygons"],
                    "ignore": record["ignore"],
                    "meta": record["meta"],
                    "index": index,  # this index: the same content may sit elsewhere in a new listing
                    "perf": {
                        "decode": 0.0,
                        "transform": 0.0,
                        "sample_identity": keyed - start,
                        "sample_cache": time.perf_counter() - keyed,
                        "counters": self.cache.drain(),
                    },
                }
        looked = time.perf_counter() - keyed
        out = self.dataset[index]
        if "skipped" in out or key is None:
            out["perf"]["counters"] = self.cache.drain()
            return out
        self.cache.count("misses")
        t0 = time.perf_counter()
        record = {k: v for k, v in out.items() if k not in ("image", "perf")}
        parts = encode_sample(as_tensor(out["image"]).numpy(), record)
        if self._verified < VERIFY_FIRST:
            self._verify(parts, out)
        if self.exact:
            self.cache.write(key, parts)
        out["perf"]["sample_identity"] = keyed - start
        out["perf"]["sample_cache"] = looked + time.perf_counter() - t0
        out["perf"]["counters"] = self.cache.drain()
        return out

    def _verify(self, parts: list[Buffer], out: Sample) -> None:
        """Decode the entry as a hit would and compare with the live sample, bit for bit."""
        image, record = decode_sample(memoryview(b"".join(parts)))
        same = _same(image.tensor(), out["image"]) and _same(
            record, {k: v for k, v in out.items() if k in record}
        )
        if not same:
            log.warning(
                "sample cache disabled for %s: a cached sample would differ from the live one",
                type(self.dataset).__name__,
            )
            self.exact = False
        self._verified += 1


__all__ = ["CachedImage", "CachedReader", "CachedSampleDataset", "decode_sample", "encode_sample"]
