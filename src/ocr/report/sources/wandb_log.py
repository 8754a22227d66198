"""A reader for W&B's transaction log (``run-<id>.wandb``), written from the format, not wandb.

wandb's Python ``datastore`` module is gone (the Go ``wandb-core`` writes the file now) and its
public ``Api`` needs a server, so the framing is re-implemented here. Checked against wandb 0.31
(files written by ``wandb-core``; the layout is the one the old ``wandb/sdk/internal/datastore.py``
documented):

* a 7-byte file header: ident ``b":W&B"``, magic ``0xBEE1`` (uint16 LE), version ``0`` (uint8);
* then LevelDB-log framing in 32 KiB blocks (the file header counts towards the first block): each
  chunk has a 7-byte header, crc32 (uint32 LE), length (uint16 LE) and type (FULL=1, FIRST=2,
  MIDDLE=3, LAST=4); a block tail shorter than a chunk header is zero padding;
* the checksum is ``zlib.crc32(data, zlib.crc32(bytes([type])))`` (IEEE crc32 seeded with the type
  byte, as the old datastore computed it);
* records are reassembled from chunks; each is a serialised ``wandb_internal_pb2.Record``.

A killed run leaves a partial chunk or a FIRST without its LAST at the end: what was complete is
returned and the problem is reported, never raised.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ocr.report.errors import ReportError

IDENT = b":W&B"
MAGIC = 0xBEE1
VERSION = 0
FILE_HEADER = struct.Struct("<4sHB")
CHUNK_HEADER = struct.Struct("<IHB")
HEADER_LEN = 7
BLOCK_LEN = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}


@dataclass
class LogContents:
    records: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_header(head: bytes, path: Path) -> None:
    if len(head) < HEADER_LEN:
        raise ReportError(
            f"{path}: not a W&B transaction log (file shorter than its {HEADER_LEN}-byte header); pass the "
            "run-*.wandb file (or folder) of a W&B offline run"
        )
    ident, magic, version = FILE_HEADER.unpack(head[:HEADER_LEN])
    if ident != IDENT or magic != MAGIC:
        raise ReportError(
            f"{path}: not a W&B transaction log (header {head[:HEADER_LEN]!r}); pass the run-*.wandb file "
            "(or folder) of a W&B offline run"
        )
    if version != VERSION:
        raise ReportError(
            f"{path}: W&B transaction log version {version}, this reader knows {VERSION}; sync the run and "
            "use --run-id instead"
        )


def read_log(path: Path) -> LogContents:
    """All complete records of the file, and what was wrong with the rest."""
    data = path.read_bytes()
    check_header(data, path)
    out = LogContents()
    pos, size = HEADER_LEN, len(data)
    pending: bytearray | None = None
    skipped = 0
    while pos < size:
        left = BLOCK_LEN - pos % BLOCK_LEN
        if left < HEADER_LEN:  # zero padding at a block's end
            pos += left
            continue
        if pos + HEADER_LEN > size:
            out.problems.append(f"truncated chunk header at byte {pos} (the run was probably killed)")
            break
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        start, end = pos + HEADER_LEN, pos + HEADER_LEN + length
        if kind == 0 and length == 0:  # zero-filled (pre-allocated) rest of a block
            pos += left
            continue
        if end > size:
            out.problems.append(
                f"truncated chunk at byte {pos}: {size - start} of {length} bytes (killed run?)"
            )
            break
        chunk = data[start:end]
        if length > left - HEADER_LEN or kind not in _TYPE_CRC or zlib.crc32(chunk, _TYPE_CRC[kind]) != crc:
            # A bad length, type or checksum: resynchronise at the next block, as LevelDB does; the
            # record in flight is lost.
            skipped += 1
            pending = None
            pos += left
            continue
        pos = end
        if kind == FULL:
            out.records.append(bytes(chunk))
            pending = None
        elif kind == FIRST:
            pending = bytearray(chunk)
        elif pending is not None:
            pending += chunk
            if kind == LAST:
                out.records.append(bytes(pending))
                pending = None
    if pending is not None:
        out.problems.append("the last record is incomplete (FIRST/MIDDLE chunks without LAST): dropped")
    if skipped:
        out.problems.append(f"{skipped} corrupt chunk(s) skipped (bad checksum or length)")
    return out
