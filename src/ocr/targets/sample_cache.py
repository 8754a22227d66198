"""Whole-sample cache: a deterministic split is decoded, resized and padded once per node.

Once targets are fast, JPEG decoding and resizing dominate a validation sample (SROIE at 1024:
~11 ms decode + ~13 ms transform, vs ~2 ms of targets). :class:`CachedSampleDataset` wraps a
reader whose transform is deterministic and stores, per sample, what the transform produced:

* the **uint8 image before normalisation**, cropped to its non-zero box (the padding is zeros):
  ~1.2 MB instead of 12 MB of float32 at 1024. A hit gives back the very uint8 array the miss
  produced, written by the collate straight into its batch slot (:class:`CachedImage`): with
  ``normalize_on_device`` (default) a plain uint8 copy, otherwise through the transform's own
  normaliser, so the hit is exact either way. The first few stores of each process also decode
  their entry and compare it with the live sample bit for bit; a mismatch turns the cache off
  for that dataset instead of serving a different input.
* polygons, ignore flags and metadata, pickled.

* the **evaluation maps** (probability map and its mask, the only maps an evaluation batch
  carries), bit-packed (2 x 128 KiB at 1024), computed by the same ``make_db_targets`` call the
  collate would make. A hit unpacks them straight to the uint8 the batch holds, so an epoch-2
  sample costs one file read instead of a sample read plus a target-cache read and decode
  (measured on SROIE val at 1024 with 2 workers: see ``docs/cache.md``). They reach the collate
  as ``sample["eval_maps"]``; counters ``cache_hits``/``cache_misses``/``targets_computed`` count
  them as the target cache would.

Keys cover the reader's
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
import torch
from torch.utils.data import Dataset

from ocr.data.datasets.base import ReceiptDataset, is_skipped
from ocr.data.transforms import ReceiptTransform, normalize_images
from ocr.targets.cache import PolygonCache, source_fingerprint
from ocr.targets.cache_format import KIND_SAMPLE, Buffer, CorruptEntry, raw, unpack_bits
from ocr.targets.db_targets import make_db_targets
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams

log = logging.getLogger(__name__)

SAMPLE_VERSION = "sample-cache-v2"  # v2: the evaluation maps travel inside the sample entry
_SAMPLE = struct.Struct("<IIIIIIIQ")  # H, W, C, y0, y1, x0, x1, pickle length
VERIFY_FIRST = 4


def encode_sample(image: np.ndarray, record: dict[str, Any]) -> list[Buffer]:
    """uint8 HWC image (stored as its non-zero box) + a picklable record."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 HWC image, got {image.dtype} {image.shape}")
    h, w, c = image.shape
    # (np.any over the 3-channel axis takes ~12 ms at 1024; these two contiguous reductions ~0.3 ms)
    rows = np.flatnonzero(image.reshape(h, w * c).any(axis=1))
    cols = np.flatnonzero(np.asarray(image.any(axis=0)).any(axis=1))
    y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
    x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 0)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return [_SAMPLE.pack(h, w, c, y0, y1, x0, x1, len(blob)), raw(crop), b"\0" * (-crop.nbytes % 8), blob]


def decode_sample(payload: memoryview, full: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """(image, record); ``full=False`` gives ``(crop, (h, w, y0, x0))`` in ``record["_box"]`` instead."""
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
    if not full:
        record["_box"] = (h, w, y0, x0)
        return crop, record
    image = np.zeros((h, w, c), np.uint8)
    image[y0:y1, x0:x1] = crop
    return image, record


def eval_maps(targets: DBTargets) -> dict[str, Any]:
    """The maps an evaluation batch carries, as the uint8 0/1 the batch holds (exact)."""
    return {
        "prob_maps": targets.prob_map.astype(np.uint8),
        "prob_masks": targets.prob_mask.astype(np.uint8),
        "ignored": int(targets.ignored_count),
    }


def pack_eval_maps(maps: dict[str, Any]) -> dict[str, Any]:
    h, w = maps["prob_maps"].shape
    return {
        "shape": (int(h), int(w)),
        "prob_maps": np.packbits(maps["prob_maps"]).tobytes(),
        "prob_masks": np.packbits(maps["prob_masks"]).tobytes(),
        "ignored": maps["ignored"],
    }


class PackedEvalMaps:
    """A hit's evaluation maps, still bit-packed: the collate unpacks them into its batch slots."""

    __slots__ = ("bits", "ignored", "shape")

    def __init__(self, packed: dict[str, Any]) -> None:
        h, w = (int(v) for v in packed["shape"])
        self.shape = (h, w)
        self.ignored = int(packed["ignored"])
        self.bits = {name: np.frombuffer(packed[name], np.uint8) for name in ("prob_maps", "prob_masks")}
        if any(b.size != (h * w + 7) // 8 for b in self.bits.values()):
            raise CorruptEntry("packed evaluation map of the wrong size")

    def __contains__(self, name: object) -> bool:
        return name in self.bits

    def write_into(self, name: str, out: np.ndarray) -> None:
        if out.shape != self.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"need a C-contiguous uint8 {self.shape} slot, got {out.dtype} {out.shape}")
        unpack_bits(self.bits[name], out.reshape(-1))

    def __getitem__(self, name: str) -> Any:
        if name == "ignored":
            return self.ignored
        out = np.empty(self.shape, np.uint8)
        self.write_into(name, out)
        return out


def unpack_eval_maps(packed: dict[str, Any]) -> PackedEvalMaps:
    return PackedEvalMaps(packed)


class CachedImage:
    """A sample-cache hit's image, written only when the collate puts it into the batch.

    ``DBCollateFN`` calls :meth:`write_into` with the sample's slot of the batch tensor (in shared
    memory inside a worker), so the image is written once instead of into a per-sample tensor
    that ``torch.stack`` then copies. uint8 (``normalize_on_device``, ``norm`` is None): the crop
    is copied, channel by channel, into zeros. float32 (``norm`` = (mean, std)): the same uint8
    image, then :func:`~ocr.data.transforms.normalize_images` into the slot, the transform's own
    normaliser. :meth:`tensor` materialises it for anything else.
    """

    __slots__ = ("box", "crop", "dtype", "norm", "shape")

    def __init__(
        self,
        crop: np.ndarray,
        box: tuple[int, int, int, int],
        norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ) -> None:
        self.crop = crop
        self.box = box
        self.norm = norm
        self.shape = (int(crop.shape[2]), box[0], box[1])
        self.dtype = torch.uint8 if norm is None else torch.float32

    def write_into(self, out: np.ndarray) -> None:
        dtype = np.uint8 if self.norm is None else np.float32
        if out.shape != self.shape or out.dtype != dtype:
            raise ValueError(f"need a {np.dtype(dtype)} {self.shape} slot, got {out.dtype} {out.shape}")
        if self.norm is None:
            self._place(out)
            return
        image = np.empty(self.shape, np.uint8)
        self._place(image)
        normalize_images(torch.from_numpy(image), *self.norm, out=torch.from_numpy(out))

    def _place(self, out: np.ndarray) -> None:
        """uint8 CHW: the HWC crop at (y0, x0), zeros around it (the slot may hold old pixels)."""
        _h, _w, y0, x0 = self.box
        y1, x1 = y0 + self.crop.shape[0], x0 + self.crop.shape[1]
        out[:, :y0] = 0
        out[:, y1:] = 0
        out[:, y0:y1, :x0] = 0
        out[:, y0:y1, x1:] = 0
        out[:, y0:y1, x0:x1] = self.crop.transpose(2, 0, 1)

    def tensor(self) -> torch.Tensor:
        out = np.empty(self.shape, np.uint8 if self.norm is None else np.float32)
        self.write_into(out)
        return torch.from_numpy(out)


class _Capture:
    """Stands in for ``ReceiptTransform.to_tensor`` and keeps the uint8 HWC image it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> Any:
        self.last = image
        return self.inner(image)

    def take(self) -> np.ndarray | None:
        image, self.last = self.last, None
        return image

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _same(a: Any, b: Any) -> bool:
    """Structural equality; arrays bit for bit, with dtype and shape."""
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
        self.params = params or DBTargetParams()
        modules = ("ocr.data.transforms", "ocr.data.datasets.base", type(dataset).__module__)
        self._prefix = repr(
            (
                SAMPLE_VERSION,
                transform.config.cache_key(),
                self.params.as_key(),
                _versions(),
                source_fingerprint(*modules),
            )
        ).encode()
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

    def _to_tensor(self) -> Any:
        """The transform's last step (uint8 HWC -> CHW tensor, normalised or not), uncaptured."""
        to_tensor = self.dataset.transform.to_tensor  # type: ignore[union-attr]
        return to_tensor.inner if isinstance(to_tensor, _Capture) else to_tensor

    def _capture(self) -> _Capture:
        transform = self.dataset.transform
        assert isinstance(transform, ReceiptTransform)
        if not isinstance(transform.to_tensor, _Capture):
            transform.to_tensor = _Capture(transform.to_tensor)
        return transform.to_tensor

    def __getitem__(self, index: int) -> dict[str, Any]:
        start = time.perf_counter()
        key = self.key(index) if self.exact else ""
        payload = self.cache.read_entry(key, KIND_SAMPLE) if self.exact else None
        if payload is not None:
            try:
                crop, record = decode_sample(payload, full=False)
                read = time.perf_counter()
                record["eval_maps"] = unpack_eval_maps(record.pop("_eval_maps"))
            except (CorruptEntry, KeyError, TypeError, ValueError):
                self.cache.discard(key, KIND_SAMPLE)
            else:
                unpacked = time.perf_counter()
                record["image"] = self._image(crop, record.pop("_box"))
                record["perf"] = {
                    "decode": 0.0,
                    "transform": time.perf_counter() - unpacked,
                    "sample_cache": read - start,
                    "targets": unpacked - read,
                    "counters": {"sample_cache_hits": 1, "cache_hits": 1},
                }
                return record
        looked = time.perf_counter() - start
        capture = self._capture()
        out = self.dataset[index]
        captured = capture.take()
        if is_skipped(out) or captured is None or not self.exact:
            return out
        t0 = time.perf_counter()
        h, w = (int(v) for v in out["image"].shape[-2:])
        targets = make_db_targets(out["polygons"], out["ignore"], (h, w), self.params)
        out["eval_maps"] = eval_maps(targets)
        t1 = time.perf_counter()
        record = {k: v for k, v in out.items() if k not in ("image", "perf", "eval_maps")}
        record["_eval_maps"] = pack_eval_maps(out["eval_maps"])
        parts = encode_sample(captured, record)
        if self._verified < VERIFY_FIRST:
            self._verify(parts, out)
        if self.exact:
            self.cache.write_entry(key, KIND_SAMPLE, parts)
        out["perf"]["sample_cache"] = looked + time.perf_counter() - t1
        out["perf"]["targets"] = t1 - t0
        out["perf"]["counters"] = {"sample_cache_misses": 1, "cache_misses": 1, "targets_computed": 1}
        return out

    def _image(self, crop: np.ndarray, box: tuple[int, int, int, int]) -> CachedImage:
        """The CHW image of the uint8 ``crop`` placed at (y0, x0) in zeros, deferred to the collate.

        uint8 (``normalize_on_device``): a plain copy into the batch slot. Otherwise the
        transform's normaliser (:func:`~ocr.data.transforms.normalize_images`, same mean/std)
        writes the float32 image into the slot: the same call the miss made, the same bits.
        """
        config = self.dataset.transform.config  # type: ignore[union-attr]
        return CachedImage(crop, box, None if config.normalize_on_device else (config.mean, config.std))

    def _verify(self, parts: list[Buffer], out: dict[str, Any]) -> None:
        """Decode the entry as a hit would and compare with the live sample, bit for bit."""
        payload = memoryview(b"".join(parts))
        image, record = decode_sample(payload)
        same = _same(self._to_tensor()(image).numpy(), out["image"].numpy())  # dtype, shape and bits
        maps = unpack_eval_maps(record.pop("_eval_maps"))
        same = same and all(_same(maps[k], out["eval_maps"][k]) for k in ("prob_maps", "prob_masks"))
        same = same and maps["ignored"] == out["eval_maps"]["ignored"]
        same = same and _same(record, {k: v for k, v in out.items() if k in record})
        if not same:
            log.warning(
                "sample cache disabled for %s: a cached sample would differ from the live one",
                type(self.dataset).__name__,
            )
            self.exact = False
        self._verified += 1


__all__ = ["CachedSampleDataset", "decode_sample", "encode_sample"]
