"""The W&B transaction-log reader against files framed by an independent writer of the format."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from ocr.report.errors import ReportError
from ocr.report.sources.wandb_log import BLOCK_LEN, read_log

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def encode(records: list[bytes]) -> bytes:
    """LevelDB-log framing as wandb writes it: 7-byte file header, 32 KiB blocks, typed chunks."""
    out = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for data in records:
        first = True
        while True:
            left = BLOCK_LEN - len(out) % BLOCK_LEN
            if left < 7:
                out += b"\0" * left
                continue
            chunk, data = data[: left - 7], data[left - 7 :]
            last = not data
            kind = FULL if first and last else FIRST if first else LAST if last else MIDDLE
            out += struct.pack("<IHB", zlib.crc32(chunk, zlib.crc32(bytes([kind]))), len(chunk), kind) + chunk
            first = False
            if last:
                break
    return bytes(out)


def records() -> list[bytes]:
    # small ones, one spanning three blocks, and one that leaves < 7 bytes at a block's end
    big = bytes(range(256)) * 300  # 76,800 bytes: FIRST, MIDDLE, LAST
    pad = b"p" * (BLOCK_LEN - 7 - 7 - 7 - 3)
    return [b"alpha", big, b"beta", pad, b"gamma" * 10]


def test_reassembles_records_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(encode(records()))
    contents = read_log(path)
    assert contents.records == records()
    assert contents.problems == []


def test_truncated_tail_keeps_complete_records(tmp_path: Path) -> None:
    data = encode(records())
    path = tmp_path / "run-x.wandb"
    # inside the last chunk's data, inside its 7-byte header, inside the 3-block record
    for cut, expected in ((len(data) - 5, 4), (len(data) - 50 - 3, 4), (40_000, 1)):
        path.write_bytes(data[:cut])
        contents = read_log(path)
        assert contents.records == records()[:expected]
        assert contents.problems, cut


def test_corrupt_chunk_is_skipped(tmp_path: Path) -> None:
    data = bytearray(encode([b"one", b"two", b"three"]))
    data[7 + 7 + 3 + 7] ^= 0xFF  # first byte of "two"
    path = tmp_path / "run-x.wandb"
    path.write_bytes(bytes(data))
    contents = read_log(path)
    assert contents.records == [b"one"]  # resynchronised at the next block: nothing more in this one
    assert any("corrupt" in p for p in contents.problems)


@pytest.mark.parametrize("head", [b"", b":W&", b"PK\x03\x04abc", struct.pack("<4sHB", b":W&B", 0xBEE1, 7)])
def test_bad_header_is_an_error(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(head + b"\0" * 3)
    with pytest.raises(ReportError, match="W&B transaction log"):
        read_log(path)
