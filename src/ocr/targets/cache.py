"""``PolygonCache``: DB target maps computed once per node, served bit-exactly afterwards.

Each choice below closes a way such a cache loses its hits or serves wrong maps:

* **Keys** (:meth:`PolygonCache._generate_key`): blake2b-256 over each polygon's coordinates *in
  order*, with its dtype and shape, every field length-prefixed, plus the ignore flags, the image
  shape, ``DBTargetParams.as_key()`` (formula included), :data:`CODE_VERSION` and a fingerprint of
  the target code's sources. Sorted coordinates collide (a polygon and its mirror image, a quad and
  its reversed winding) and break on ragged polygons; length prefixes rule out ambiguity between
  one 8-point polygon and two 4-point ones.
* **One cache per node**, not per worker: a thin client (:class:`~ocr.cache.client.CacheClient`:
  an in-process LRU of ``max_size`` verified entries) in front of the node folder
  (:class:`~ocr.cache.store.FileStore`) that every worker and rank opens.
* **An insert writes one file** (temp file + atomic rename), never the whole cache.
* **Keys after augmentation** are useless: the data module only enables the cache for
  deterministic transforms (validation/test; training only when augmentation is off, opt-in).
* **Strict config**: a bool where an int is expected raises (``max_bytes: false`` is not 0).
* **Exact**: entries are compact but lossless (:mod:`ocr.cache.codec`); a corrupt or
  truncated entry fails its header/crc check, is deleted and counted as a miss, so it is recomputed.

Storage choice (files, not diskcache) and its measurement: docs/cache.md.
"""

from __future__ import annotations

import functools
import hashlib
import numbers
import struct
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocr.cache.client import DEFAULT_MEMORY_BYTES, CacheClient
from ocr.cache.codec import (
    KIND_TARGETS,
    Buffer,
    CorruptEntry,
    decode_map,
    encode_map,
    raw,
    skip_section,
    warm_up,
)
from ocr.cache.fingerprint import code_fingerprint
from ocr.errors import UserInputError
from ocr.targets.db_targets import make_db_targets, slowdown_injected
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams

CODE_VERSION = "polygon-cache-v2"
MAP_NAMES = ("prob_map", "prob_mask", "thresh_map", "thresh_mask")
_TARGETS = struct.Struct("<IIq")  # height, width, ignored_count


class CacheConfigError(UserInputError, TypeError):
    """A cache setting of the wrong type or range (e.g. ``max_bytes: false``)."""


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; bools and floats are errors, never silently 0/1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CacheConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise CacheConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise CacheConfigError(f"{name} must be true or false, got {value!r} ({type(value).__name__})")
    return bool(value)


def _feed(digest: Any, data: bytes | memoryview) -> None:
    """Length-prefixed field: no two different field sequences hash the same bytes."""
    digest.update(struct.pack("<Q", len(data)))
    digest.update(data)


# -- the target entry: a (h, w, ignored) record, then the four maps -----------------------------
def encode_targets(targets: DBTargets) -> list[Buffer]:
    h, w = targets.shape
    parts: list[Buffer] = [_TARGETS.pack(h, w, int(targets.ignored_count))]
    for array in targets.maps():
        parts += encode_map(array)
    return parts


def decode_targets(
    payload: memoryview, out: DBTargets | None = None, maps: Collection[str] | None = None
) -> DBTargets:
    """The maps, written into ``out`` when its buffers fit (the collate passes its batch slots).

    ``maps`` (names from :data:`MAP_NAMES`) decodes only those into ``out`` and leaves the others
    alone; their slots may then be uint8 for the binary maps (an evaluation batch's dtype).
    """
    if len(payload) < _TARGETS.size:
        raise CorruptEntry("truncated targets record")
    h, w, ignored = _TARGETS.unpack_from(payload)
    if maps is not None and out is not None:
        wanted = set(maps)
        if not wanted <= set(MAP_NAMES):
            raise ValueError(f"unknown maps {sorted(wanted - set(MAP_NAMES))}; choose from {MAP_NAMES}")
        slots = [a if n in wanted else None for n, a in zip(MAP_NAMES, out.maps(), strict=True)]
        if any(a is not None and a.shape != (h, w) for a in slots):
            raise CorruptEntry(f"entry holds {h}x{w} maps, the slots differ")
        targets = out
    else:
        targets = out if out is not None and out.fits((h, w)) else DBTargets.empty((h, w))
        slots = list(targets.maps())
    offset = _TARGETS.size
    try:
        for array in slots:
            offset = skip_section(payload, offset) if array is None else decode_map(payload, offset, array)
    except (struct.error, ValueError) as exc:  # a record or section runs past the end
        raise CorruptEntry(f"malformed map record: {exc}") from None
    if offset != len(payload):
        raise CorruptEntry("trailing bytes after the maps")
    targets.ignored_count = int(ignored)
    return targets


@functools.cache  # once per process
def warm_up_kernels() -> None:
    """Load the numba kernels of the codec and of both target formulas in this process, once.

    DataLoader workers are forked after the cache is built: they inherit loaded kernels instead of
    each loading every kernel on first use (in epoch 1 on computing, in a later epoch on the first
    hit), which would otherwise be charged to the first images of every worker.
    """
    warm_up()
    square = [np.array([[2, 2], [14, 2], [14, 12], [2, 12]], np.float32)]
    for formula in ("db", "exact"):
        make_db_targets(square, [False], (16, 16), DBTargetParams(formula=formula))


class PolygonCache(CacheClient):
    """DB targets keyed by polygons + ignore flags + image shape + parameters + the code.

    Args:
        max_size: entries kept decoded-ready in this process (LRU; 0 disables it).
        persist_to_disk: share entries through ``cache_dir`` (all workers and ranks of a node).
        cache_dir: the node folder (required when persisting).
        max_bytes: byte budget of the folder; the least recently used entries go first.
        memory_bytes: byte bound of the in-process LRU, on top of ``max_size``.

    ``hit_count``/``miss_count`` are per process (a forked or unpickled copy starts at zero); the
    run-wide hit rate is the sum of the collate's per-batch ``target_cache_*`` counters.
    """

    def __init__(
        self,
        max_size: int = 256,
        persist_to_disk: bool = True,
        cache_dir: str | Path | None = None,
        max_bytes: int = 2 * 1024**3,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
    ) -> None:
        self.max_size = check_int("max_size", max_size, 0)
        self.persist_to_disk = check_bool("persist_to_disk", persist_to_disk)
        max_bytes = check_int("max_bytes", max_bytes, 1)
        memory_bytes = check_int("memory_bytes", memory_bytes, 0)
        if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
            raise CacheConfigError(f"cache_dir must be a path, got {cache_dir!r}")
        if self.persist_to_disk and not cache_dir:
            raise CacheConfigError("persist_to_disk=True needs a cache_dir")
        folder = Path(cache_dir) if cache_dir and self.persist_to_disk else None
        super().__init__("target", KIND_TARGETS, folder, max_bytes, self.max_size, memory_bytes)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        warm_up_kernels()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "max_size": self.max_size,
            "persist_to_disk": self.persist_to_disk,
            "cache_dir": self.cache_dir,
            "max_bytes": self.max_bytes,
            "memory_bytes": self.memory_bytes,
            "disk": (self.disk_reads, self.disk_writes),
        }

    # -- keys ---------------------------------------------------------------------------------
    def _generate_key(
        self,
        polygons: Sequence[np.ndarray],
        image_shape: tuple[int, int],
        params: DBTargetParams,
        ignore: Sequence[bool] | None = None,
    ) -> str:
        """Hex blake2b-256 of everything the maps depend on; ``ignore=None`` means all False."""
        digest = hashlib.blake2b(digest_size=32, person=b"ocr-targets")
        _feed(digest, f"{CODE_VERSION}|{code_fingerprint()}".encode())
        _feed(digest, repr(params.as_key()).encode())
        h, w = image_shape
        _feed(digest, struct.pack("<qq", int(h), int(w)))
        digest.update(struct.pack("<Q", len(polygons)))
        for polygon in polygons:
            array = np.ascontiguousarray(polygon)
            if array.dtype.hasobject:
                raise TypeError(f"polygon coordinates must be numeric, got dtype {array.dtype}")
            _feed(digest, array.dtype.str.encode())
            _feed(digest, struct.pack(f"<Q{array.ndim}Q", array.ndim, *array.shape))
            _feed(digest, raw(array))
        flags = np.zeros(len(polygons), bool) if ignore is None else np.asarray(ignore, dtype=bool)
        _feed(digest, flags.tobytes())
        return digest.hexdigest()

    # -- the seed's API -----------------------------------------------------------------------
    def get(
        self, key: str, out: DBTargets | None = None, maps: Collection[str] | None = None
    ) -> DBTargets | None:
        """The cached targets (decoded into ``out`` when it fits; only ``maps`` when given), or
        ``None``; counts a hit or a miss."""
        payload = None if slowdown_injected() else self.read(key)  # the perf suite's injected slowdown
        targets = None
        if payload is not None:
            try:
                targets = decode_targets(payload, out, maps)
            except CorruptEntry:
                self.discard(key)
        self.count("misses" if targets is None else "hits")
        return targets

    def set(self, key: str, targets: DBTargets) -> None:
        self.write(key, encode_targets(targets))

    def __len__(self) -> int:
        """Entries visible to this process: on disk when persisting, else in the LRU."""
        return self.entries()

    @property
    def hit_count(self) -> int:
        return self.totals.get("hits", 0)

    @property
    def miss_count(self) -> int:
        return self.totals.get("misses", 0)

    @property
    def hit_rate(self) -> float:
        lookups = self.hit_count + self.miss_count
        return self.hit_count / lookups if lookups else 0.0

    @property
    def corrupt_count(self) -> int:
        return self.totals.get("corrupt", 0)

    def __repr__(self) -> str:
        where = f"dir={str(self.cache_dir)!r}, max_bytes={self.max_bytes}" if self.store else "memory only"
        return f"PolygonCache(max_size={self.max_size}, {where})"


__all__ = [
    "CODE_VERSION",
    "MAP_NAMES",
    "CacheConfigError",
    "PolygonCache",
    "check_bool",
    "check_int",
    "decode_targets",
    "encode_targets",
]
