"""The cache never serves stale data and never kills a run: real files, real faults, real loaders.

Each case runs the validation loader of a real :class:`ReceiptDataModule` over a tiny SROIE-layout
split (two epochs, in-process) and compares every batch with a run that has the cache off. Faults
are real: a read-only bind mount and a tiny tmpfs (skipped cleanly where ``mount`` is not
permitted), a file where the folder should be, a directory where the lock file or an entry should
be, a symlink loop among the images.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ocr.data.datamodule import ReceiptDataModule

SIZE = 64
BOXES = ["4,4,40,4,40,14,4,14,TOTAL", "6,30,50,30,50,42,6,42,CASH"]


def _split(root: Path, n: int = 4) -> Path:
    """``images/NNN.bmp`` (uncompressed: an edit keeps the size) + ``gt/NNN.txt``."""
    (root / "images").mkdir(parents=True)
    (root / "gt").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.full((80, 64, 3), 255, np.uint8)
        image[4:14, 4:40] = rng.integers(0, 60, 3)
        image[30:42, 6:50] = rng.integers(0, 60, 3)
        cv2.imwrite(str(root / "images" / f"{i:03d}.bmp"), image)
        moved = BOXES[1].replace("6,30,50,30", f"6,{30 + i},50,{30 + i}")  # distinct maps per receipt
        (root / "gt" / f"{i:03d}.txt").write_text(f"{BOXES[0]}\n{moved}\n")
    return root


def _module(split: Path, cache: Path | None) -> ReceiptDataModule:
    module = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.sroie.SROIEDataset"},
        root=str(split),
        image_size=SIZE,
        loader={"num_workers": 0, "val_batch_size": 2},
        cache={"enabled": cache is not None, **({"dir": str(cache)} if cache else {})},
    )
    module.setup("validate")
    return module


def _epoch(module: ReceiptDataModule) -> tuple[list[Any], dict[str, int]]:
    """(what every batch carries, bit for bit; the summed counters)."""
    seen: list[Any] = []
    counters: dict[str, int] = {}
    for batch in module.val_dataloader():
        for name, value in batch["perf"]["counters"].items():
            counters[name] = counters.get(name, 0) + int(value)
        seen.append(
            (
                batch["images"].numpy().tobytes(),
                batch["prob_maps"].numpy().tobytes(),
                batch["prob_masks"].numpy().tobytes(),
                [[p.tobytes() for p in ps] for ps in batch["polygons"]],
                [[np.asarray(p).tobytes() for p in m["gt_polygons"]] for m in batch["meta"]],
            )
        )
    return seen, counters


def _truth(split: Path) -> list[Any]:
    return _epoch(_module(split, None))[0]


def _cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ocr.cache" and r.levelno >= logging.WARNING]


# -- never stale ------------------------------------------------------------------------------------
def _keep_mtime(path: Path, edit: Any) -> None:
    st = path.stat()
    edit()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def _edit_gt_same_size(split: Path) -> None:
    gt = split / "gt" / "001.txt"
    text = gt.read_text()
    _keep_mtime(gt, lambda: gt.write_text(text.replace("40,4,40,14", "44,4,44,14")))
    assert gt.stat().st_size == len(text)


def _edit_image_same_size(split: Path) -> None:
    path = split / "images" / "002.bmp"

    def edit() -> None:
        image = cv2.imread(str(path))
        image[30:42, 6:50] = 255 - image[30:42, 6:50]
        cv2.imwrite(str(path), image)

    _keep_mtime(path, edit)


def _replace_with_new_inode(split: Path) -> None:
    """``tar x``/``cp -p`` style: a new file (new inode) renamed over the old one, old mtime kept."""
    path = split / "gt" / "000.txt"
    st = path.stat()
    new = path.with_suffix(".new")
    new.write_text(path.read_text().replace("TOTAL", "TAXES"))  # same size, same polygons...
    new.write_text(new.read_text().replace("4,4,40,4", "5,4,40,4"))  # ...and one moved
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, path)


@pytest.mark.parametrize(
    "edit",
    [_edit_gt_same_size, _edit_image_same_size, _replace_with_new_inode],
    ids=["gt edited, size and mtime kept", "image edited, size and mtime kept", "new inode, old mtime"],
)
def test_an_edited_input_is_never_served_stale(tmp_path: Path, edit: Any) -> None:
    split = _split(tmp_path / "split")
    module = _module(split, tmp_path / "cache")
    cold, _ = _epoch(module)
    warm, counters = _epoch(module)
    assert warm == cold and counters["sample_cache_hits"] == 4  # the cache is in use
    edit(split)
    truth = _truth(split)
    assert truth != cold  # the edit changes what a fresh run sees
    after, counters = _epoch(module)
    assert after == truth
    assert counters["sample_cache_misses"] == 1 and counters["sample_cache_hits"] == 3
    assert _epoch(_module(split, tmp_path / "cache"))[0] == truth  # a fresh process too


# -- faults degrade, never kill -----------------------------------------------------------------------
@contextlib.contextmanager
def _mount(args: list[str], target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"mount is not permitted here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


@contextlib.contextmanager
def _read_only(source: Path, target: Path) -> Iterator[None]:
    with _mount(["--bind", str(source)], target):
        proc = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(target)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            pytest.skip(f"read-only remount is not permitted here: {proc.stderr.strip()}")
        yield


def _two_epochs_equal_truth(split: Path, cache: Path) -> dict[str, int]:
    module = _module(split, cache)
    truth = _truth(split)
    total: dict[str, int] = {}
    for _ in range(2):
        seen, counters = _epoch(module)
        assert seen == truth
        for name, value in counters.items():
            total[name] = total.get(name, 0) + value
    return total


@pytest.mark.parametrize("where", ["the folder", "a missing folder under it"])
def test_read_only_cache_folder_warns_once_and_runs_uncached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    split = _split(tmp_path / "split")
    (tmp_path / "empty").mkdir()
    mount = tmp_path / "ro"
    with _read_only(tmp_path / "empty", mount):
        cache = mount if where == "the folder" else mount / "missing" / "cache"
        counters = _two_epochs_equal_truth(split, cache)
    warnings = _cache_warnings(caplog)
    assert len(warnings) == 1, warnings  # once per folder and fault, not once per write or client
    assert all("read-only" in w and str(mount) in w and "Fix:" in w for w in warnings), warnings
    assert counters["sample_cache_write_errors"] == 4 and counters["target_cache_write_errors"] == 4
    assert counters["targets_computed"] == 4  # epoch 2: the in-process LRU (memory only) serves: 4 writes


def test_a_warm_read_only_cache_is_still_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    split = _split(tmp_path / "split")
    _two_epochs_equal_truth(split, tmp_path / "warm")  # fills the folder
    with _read_only(tmp_path / "warm", tmp_path / "ro"):
        seen, counters = _epoch(_module(split, tmp_path / "ro"))
    assert seen == _truth(split)
    assert counters["sample_cache_hits"] == 4 and counters["target_cache_hits"] == 4
    assert "sample_cache_write_errors" not in counters


def test_a_full_disk_warns_once_and_continues_memory_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    split = _split(tmp_path / "split", n=6)
    mount = tmp_path / "tiny"
    with _mount(["-t", "tmpfs", "-o", "size=40k", "tmpfs"], mount):
        counters = _two_epochs_equal_truth(split, mount)
    warnings = _cache_warnings(caplog)
    assert warnings and all("disk is full" in w and str(mount) in w for w in warnings), warnings
    assert len(warnings) == 1, warnings
    errors = counters.get("sample_cache_write_errors", 0) + counters.get("target_cache_write_errors", 0)
    assert errors >= 1


def test_a_file_where_the_cache_folder_should_be(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    split = _split(tmp_path / "split")
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    counters = _two_epochs_equal_truth(split, cache)
    warnings = _cache_warnings(caplog)
    assert len(warnings) == 1 and "a file stands where a folder should be" in warnings[0], warnings
    assert counters["sample_cache_write_errors"] == 4
    assert "sample_cache_read_errors" not in counters  # a folder that is not there is not read


def test_an_unwritable_lock_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ocr.cache.store import node_folder

    split = _split(tmp_path / "split")
    (tmp_path / "cache" / node_folder() / ".budget.lock").mkdir(parents=True)  # open(O_RDWR): EISDIR
    counters = _two_epochs_equal_truth(split, tmp_path / "cache")
    warnings = _cache_warnings(caplog)
    assert len(warnings) == 1 and "Fix:" in warnings[0], warnings
    assert counters["sample_cache_write_errors"] == 4 and counters["target_cache_write_errors"] == 4


def test_a_failed_entry_read_is_a_counted_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    split = _split(tmp_path / "split")
    _two_epochs_equal_truth(split, tmp_path / "cache")
    for entry in (tmp_path / "cache").rglob("*.entry"):  # every entry becomes unreadable (EISDIR)
        entry.unlink()
        entry.mkdir()
    seen, counters = _epoch(_module(split, tmp_path / "cache"))
    assert seen == _truth(split)
    assert counters["sample_cache_read_errors"] == 4 and counters["target_cache_read_errors"] == 4
    assert counters["targets_computed"] == 4
    assert _cache_warnings(caplog)


def test_a_cache_folder_removed_mid_run_is_recreated(tmp_path: Path) -> None:
    split = _split(tmp_path / "split")
    module = _module(split, tmp_path / "cache")
    _epoch(module)
    shutil.rmtree(tmp_path / "cache")
    module.target_cache().invalidate()  # forget the in-process LRU too: every lookup misses
    module.sample_cache().invalidate()
    seen, counters = _epoch(module)
    assert seen == _truth(split) and counters["sample_cache_misses"] == 4
    assert "sample_cache_write_errors" not in counters and list((tmp_path / "cache").rglob("*.entry"))


def test_a_symlink_loop_is_a_counted_skip_with_its_reason(tmp_path: Path) -> None:
    split = _split(tmp_path / "split", n=2)
    (split / "images" / "008.bmp").symlink_to(split / "images" / "009.bmp")
    (split / "images" / "009.bmp").symlink_to(split / "images" / "008.bmp")
    for name in ("008", "009"):
        (split / "gt" / f"{name}.txt").write_text(BOXES[0] + "\n")
    for cache in (None, tmp_path / "cache"):
        module = _module(split, cache)
        for _ in range(2):
            _seen, counters = _epoch(module)
            assert counters["samples"] == 2 and counters["skipped_samples"] == 2
            assert counters["skipped_symlink_loop"] == 2 and "skipped_missing_image" not in counters
            if cache is not None:
                assert counters["sample_cache_identity_errors"] == 2
