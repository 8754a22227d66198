"""The one entry codec: a checked header, then compact sections that decode bit-exactly.

Every client of the store (target maps, whole samples, and any later one) frames its entry with
:func:`frame`/:func:`unframe` and writes its arrays as sections: :func:`encode_map` for float32
maps, :func:`encode_blob` for raw bytes (a uint8 image crop, a pickled record). Why this layout:

* **Header** (56 bytes): magic, format version, entry kind, payload length, crc32 of the payload
  and the entry's own key digest. A truncated file, a flipped byte, a file from another format
  version or a file renamed to the wrong key is rejected (:class:`CorruptEntry`) and recomputed,
  never returned. crc32 because it is the cheapest checksum in the standard library (several times
  cheaper than blake2b, docs/cache.md); it guards against damage, the key digest against mix-ups.
* **Maps**: every float32 map is stored exactly, in the cheapest of three encodings chosen per map:
  ``BITS`` (every value is +0.0 or 1.0: one bit per pixel, 32x smaller: prob map and both masks),
  ``SPARSE`` (a fill value, a bit mask of the pixels that differ from it, and their float32 values:
  the threshold map, whose pixels away from the text borders all hold the fill value) or ``RAW``
  float32. Values are compared as bit patterns, so -0.0 and NaN round-trip exactly. No float16 and
  no zlib: float16 is lossy, and inflating a map takes longer than computing it again
  (docs/cache.md).
* Sections start on 8-byte boundaries so numpy reads them in place without copies.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit

MAGIC = b"OCRC"
FORMAT_VERSION = 2  # 2: blob sections; bit maps decode into uint8 as well as float32 outputs
# One kind per client: an entry read by the wrong client fails its header check.
KIND_TARGETS = 1
KIND_SAMPLE = 2
KIND_DECODED = 3  # training: decoded receipts resized before augmentation (ocr.data.decoded_cache)

Buffer = bytes | bytearray | memoryview


def raw(array: np.ndarray) -> memoryview:
    """The bytes of an array as a flat view (what writers, ``crc32`` and ``bytes.join`` take)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


# magic, format version, kind, payload length, crc32(payload), key digest (blake2b-256)
_HEADER = struct.Struct("<4sHHQI4x32s")
HEADER_SIZE = _HEADER.size
_MAP = struct.Struct("<B3xIQQ")  # mode, fill bit pattern, length of section a, length of section b
MODE_BITS, MODE_SPARSE, MODE_RAW, MODE_BLOB = 0, 1, 2, 3
_ONE = int(np.float32(1.0).view(np.uint32))


class CorruptEntry(ValueError):
    """The bytes are not a complete, intact entry of the expected kind and key."""


def _nbytes(part: Buffer) -> int:
    return part.nbytes if isinstance(part, memoryview) else len(part)


def payload_size(parts: Sequence[Any]) -> int:
    return sum(_nbytes(p) for p in parts)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 8)


def frame(kind: int, digest: bytes, parts: Sequence[Buffer]) -> bytes:
    """Header for ``parts`` (the payload, written in order after it)."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, kind, payload_size(parts), crc, digest)


def unframe(buf: Buffer, kind: int, digest: bytes) -> memoryview:
    """The verified payload of a whole entry (header + payload), or :class:`CorruptEntry`."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    if len(view) < HEADER_SIZE:
        raise CorruptEntry(f"truncated header ({len(view)} bytes)")
    magic, version, got_kind, length, crc, got_digest = _HEADER.unpack_from(view)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise CorruptEntry(f"not a format-{FORMAT_VERSION} cache entry (magic {magic!r}, version {version})")
    if got_kind != kind or got_digest != digest:
        raise CorruptEntry("entry belongs to another key or kind")
    payload = view[HEADER_SIZE:]
    if len(payload) != length:
        raise CorruptEntry(f"payload is {len(payload)} bytes, header says {length}")
    if zlib.crc32(payload) != crc:
        raise CorruptEntry("checksum mismatch")
    return payload


# -- maps ---------------------------------------------------------------------------------------
# One pass each, straight into the float32 output: numpy's unpackbits + convert + boolean scatter
# walk the map several times, these once, so writing the output is the only cost left.
# Bit patterns are moved as uint32, so NaN payloads and -0.0 survive.
@njit(cache=True, boundscheck=False)
def unpack_bits(packed: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - numba
    """MSB-first bits (``np.packbits``' order) into a flat 0/1 array, in place: float32 for the
    cached maps, uint8 for the batch slots (numba compiles one version per output type)."""
    n = out.size
    full = n // 8
    for i in range(full):
        b = packed[i]
        base = i * 8
        for k in range(8):
            out[base + k] = (b >> (7 - k)) & 1
    for k in range(n - full * 8):
        out[full * 8 + k] = (packed[full] >> (7 - k)) & 1


@njit(cache=True, boundscheck=False)
def _unpack_sparse(  # pragma: no cover - numba
    packed: np.ndarray, values: np.ndarray, fill: np.uint32, out: np.ndarray
) -> int:
    n = out.size
    count = values.size
    j = 0
    for i in range((n + 7) // 8):
        b = packed[i]
        base = i * 8
        m = min(8, n - base)
        if b == 0 and m == 8:
            for k in range(8):
                out[base + k] = fill
            continue
        for k in range(m):
            if (b >> (7 - k)) & 1:
                out[base + k] = values[j] if j < count else fill
                j += 1
            else:
                out[base + k] = fill
    return j


@njit(cache=True, boundscheck=False)
def _pack_bits(bits: np.ndarray, one: np.uint32, packed: np.ndarray) -> bool:  # pragma: no cover - numba
    """``packed`` = 1 where ``bits == one``; True when every value is 0 or ``one`` (one branch-free
    pass, where numpy's compare + count + packbits take three)."""
    n = bits.size
    full = n // 8
    bad = 0
    for i in range(full):  # fixed 8-pixel bytes: the loop LLVM vectorises
        base = i * 8
        byte = np.uint8(0)
        for k in range(8):
            v = bits[base + k]
            byte |= np.uint8(v == one) << np.uint8(7 - k)
            bad |= (v != one) & (v != 0)
        packed[i] = byte
    if n > full * 8:
        byte = np.uint8(0)
        for k in range(n - full * 8):
            v = bits[full * 8 + k]
            byte |= np.uint8(v == one) << np.uint8(7 - k)
            bad |= (v != one) & (v != 0)
        packed[full] = byte
    return bad == 0


def encode_map(array: np.ndarray) -> list[Buffer]:
    """One float32 map as a record + sections, in the cheapest exact encoding."""
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    bits = flat.view(np.uint32)
    n = flat.size
    packed = np.empty((n + 7) // 8, np.uint8)
    if n and _pack_bits(bits, np.uint32(_ONE), packed):
        return [_MAP.pack(MODE_BITS, 0, packed.nbytes, 0), raw(packed), _pad(packed.nbytes)]
    fill = int(bits[-1]) if n else 0
    differs = bits != fill
    count = int(np.count_nonzero(differs))
    if 4 * count + n // 8 < 4 * n:
        packed = np.packbits(differs)
        values = flat[differs]
        return [
            _MAP.pack(MODE_SPARSE, fill, packed.nbytes, values.nbytes),
            raw(packed),
            _pad(packed.nbytes),
            raw(values),
            _pad(values.nbytes),
        ]
    return [_MAP.pack(MODE_RAW, 0, flat.nbytes, 0), raw(flat), _pad(flat.nbytes)]


def skip_section(payload: memoryview, offset: int) -> int:
    """The offset after the section at ``offset`` (a map or a blob), without decoding it."""
    _mode, _fill, len_a, len_b = _MAP.unpack_from(payload, offset)
    end = offset + _MAP.size + len_a + (-len_a % 8) + len_b + (-len_b % 8)
    if end > len(payload):
        raise CorruptEntry("section runs past the end of the entry")
    return end


def decode_map(payload: memoryview, offset: int, out: np.ndarray) -> int:
    """Fill ``out`` (C-contiguous float32; or uint8 for a map stored as bits: the batch's binary
    maps) from the record at ``offset``; returns the next offset."""
    mode, fill, len_a, len_b = _MAP.unpack_from(payload, offset)
    if out.dtype != np.float32 and not (out.dtype == np.uint8 and mode == MODE_BITS):
        raise ValueError(f"cannot decode a map of mode {mode} into {out.dtype}")
    offset += _MAP.size
    flat = out.reshape(-1)
    n = flat.size
    a = np.frombuffer(payload, np.uint8, len_a, offset)
    offset += len_a + (-len_a % 8)
    if mode == MODE_BITS:
        if len_a != (n + 7) // 8:
            raise CorruptEntry("bit map of the wrong size")
        unpack_bits(a, flat)
    elif mode == MODE_SPARSE:
        if len_a != (n + 7) // 8 or len_b % 4:
            raise CorruptEntry("sparse map of the wrong size")
        values = np.frombuffer(payload, np.uint32, len_b // 4, offset)
        offset += len_b + (-len_b % 8)
        if _unpack_sparse(a, values, np.uint32(fill), flat.view(np.uint32)) != values.size:
            raise CorruptEntry("sparse map: mask and value count disagree")
    elif mode == MODE_RAW:
        if len_a != 4 * n:
            raise CorruptEntry("raw map of the wrong size")
        flat[...] = a.view(np.float32)
    else:
        raise CorruptEntry(f"unknown map encoding {mode}")
    return offset


# -- blobs --------------------------------------------------------------------------------------
def encode_blob(data: Buffer) -> list[Buffer]:
    """Raw bytes as one section (8-byte aligned, so a uint8 array can be read in place)."""
    n = _nbytes(data)
    return [_MAP.pack(MODE_BLOB, 0, n, 0), data, _pad(n)]


def decode_blob(payload: memoryview, offset: int) -> tuple[memoryview, int]:
    """(the bytes of the blob at ``offset``, the next offset)."""
    # A truncated section raises struct.error: decode_pixels, the one caller, makes it a CorruptEntry.
    mode, _fill, len_a, _len_b = _MAP.unpack_from(payload, offset)
    start = offset + _MAP.size
    end = start + len_a
    if mode != MODE_BLOB or end > len(payload):
        raise CorruptEntry("expected a blob section")
    return payload[start:end], end + (-len_a % 8)


# -- pixels + record: the whole-sample and decoded-image entries --------------------------------
def encode_pixels(header: bytes, pixels: np.ndarray, record: dict[str, Any]) -> list[Buffer]:
    """A fixed-size header (a multiple of 8 bytes), a uint8 array and a pickled record, as sections."""
    blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    return [header, *encode_blob(raw(pixels)), *encode_blob(blob)]


def decode_pixels(
    payload: memoryview, header: struct.Struct
) -> tuple[tuple[Any, ...], memoryview, dict[str, Any]]:
    """(the header's fields, the pixel bytes, the record) of an :func:`encode_pixels` entry, or
    :class:`CorruptEntry`; the caller checks the pixel count against its header."""
    try:
        fields = header.unpack_from(payload)
        pixels, offset = decode_blob(payload, header.size)
        blob, offset = decode_blob(payload, offset)
        if offset != len(payload):
            raise CorruptEntry("trailing bytes after the record")
        record = pickle.loads(blob)
    except (struct.error, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise CorruptEntry(f"malformed entry: {exc}") from None
    if not isinstance(record, dict):
        raise CorruptEntry("entry record is not a dict")
    return fields, pixels, record


def warm_up() -> None:
    """Compile (or load from numba's cache) the codec kernels for every argument type used.

    A fresh process pays for loading a kernel on its first numba call; done in the parent before the
    DataLoader forks, every worker inherits the loaded kernels instead of paying it on its first
    sample (the cost: docs/cache.md).
    Covers float32 and uint8 outputs, read-only (LRU ``bytes``) and writable (file ``bytearray``)
    payloads.
    """
    bits = np.zeros(9, np.float32)
    bits[::2] = 1.0
    sparse = np.zeros(40, np.float32)
    sparse[:3] = (0.5, 0.6, 0.7)
    for array in (bits, sparse):
        joined = b"".join(encode_map(array))
        for payload in (memoryview(joined), memoryview(bytearray(joined))):
            decode_map(payload, 0, np.empty_like(array))
            if array is bits:
                decode_map(payload, 0, np.empty(array.shape, np.uint8))
