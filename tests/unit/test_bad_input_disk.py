"""Nothing lost when the output disk fills: a failed checkpoint save leaves no temporary file
behind, and the previous checkpoint stays whole. A real 1 MiB tmpfs is filled (needs root and
``mount``; the test skips cleanly where mounting is not permitted)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ocr.errors import UserInputError
from ocr.tasks.common import AtomicCheckpointIO


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode != 0:
            # Busy (a file still open, e.g. on a failure): detach it now, freed when it is closed.
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def test_a_save_that_fills_the_disk_leaves_no_temporary_file(small_disk: Path) -> None:
    io = AtomicCheckpointIO()
    target = small_disk / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"weights": torch.zeros(1000)}, target)  # 4 KB: fits
    before = target.read_bytes()
    with pytest.raises(Exception) as info:
        io.save_checkpoint({"weights": torch.zeros(1_000_000)}, target)  # 4 MB on a 1 MiB disk
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"], "a partial file was left"
    assert target.read_bytes() == before, "the previous checkpoint must stay whole"
    assert shutil.disk_usage(small_disk).used < 512 * 1024, "the disk must not stay full"
    assert isinstance(info.value, UserInputError), repr(info.value)
    assert str(info.value).startswith(f"cannot save checkpoint {target}: no space left on its disk")
