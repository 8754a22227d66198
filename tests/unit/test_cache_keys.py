"""Cache keys that cannot go stale: one fingerprint of the package source, content identity of files,
one folder per node, and each cache client's counters reported apart."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ocr
from ocr.cache import fingerprint
from ocr.cache.client import CacheClient
from ocr.cache.codec import KIND_SAMPLE
from ocr.data.sanitize import file_identity
from ocr.targets import DBTargetParams
from ocr.targets.cache import PolygonCache

SQUARE = [np.array([[2, 2], [30, 2], [30, 20], [2, 20]], np.float32)]


def _synthetic() -> Any:
    from ocr.data.datasets import SyntheticReceipts
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    dataset = SyntheticReceipts(num_samples=2, seed=3)
    dataset.prepare()
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    return dataset


def _keys(dataset: Any, tmp_path: Path) -> tuple[str, str]:
    """(a target-map key, a whole-sample key), as the clients make them now."""
    from ocr.data.sample_cache import CachedSampleDataset

    fingerprint._memo.clear()
    target = PolygonCache(persist_to_disk=False)._generate_key(SQUARE, (64, 64), DBTargetParams())
    sample = CachedSampleDataset(dataset, CacheClient("sample", KIND_SAMPLE, tmp_path / "c", 10**6)).key(0)
    return target, sample


def test_editing_any_module_on_an_entrys_path_changes_both_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edit, in a temporary copy of the package, each module that was loaded to make a sample and
    its target maps (reader, GT cleaning, image decoding, transform, polygon preparation, kernels,
    codec, store...): every edit must give new target and sample keys. The list is what Python
    loaded, not a hand-kept one."""
    from ocr.data.collate import DBCollateFN

    dataset = _synthetic()
    DBCollateFN(DBTargetParams())([dataset[0]])  # load everything an entry's path needs
    package = Path(ocr.__file__).parent
    copy = tmp_path / "ocr"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_ROOT", copy)
    on_path = sorted(
        Path(m.__file__).relative_to(package)
        for name, m in list(sys.modules.items())
        if name.startswith("ocr.")
        and getattr(m, "__file__", None)
        and Path(m.__file__).is_relative_to(package)
    )
    for must in ("targets/prepare.py", "targets/kernels.py", "data/sanitize.py", "data/image_io.py"):
        assert Path(must) in on_path, must
    base = _keys(dataset, tmp_path)
    for relative in on_path:
        path = copy / relative
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit\n")
        try:
            target, sample_key = _keys(dataset, tmp_path)
        finally:
            path.write_bytes(original)
        assert target != base[0], f"editing {relative} left the target-map key unchanged"
        assert sample_key != base[1], f"editing {relative} left the sample key unchanged"
    assert _keys(dataset, tmp_path) == base  # restored: the same keys again (deterministic)


def test_every_source_file_is_in_the_fingerprint(tmp_path: Path) -> None:
    copy = tmp_path / "ocr"
    shutil.copytree(Path(ocr.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = fingerprint.source_fingerprint(copy)
    files = sorted(copy.rglob("*.py"))
    assert len(files) > 100
    for path in files:
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        assert fingerprint.source_fingerprint(copy) != base, path
        path.write_bytes(original)
    (copy / "new_module.py").write_text("X = 1\n")
    assert fingerprint.source_fingerprint(copy) != base


@pytest.mark.parametrize("how", ["cp -p", "touch -r", "rsync -a", "new inode, old mtime"])
def test_file_identity_follows_content_not_mtime(tmp_path: Path, how: str) -> None:
    """Same size, same mtime, different bytes: the identity (so the sample key) must change."""
    import os
    import subprocess

    target = tmp_path / "gt.txt"
    target.write_text("1,2,3,4,5,6,7,8,TOTAL\n")
    os.utime(target, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = file_identity(target)
    edited = tmp_path / "edited.txt"
    edited.write_text("1,2,3,4,5,6,7,9,TOTAL\n")  # one digit: the same size
    if how == "cp -p":
        shutil.copystat(target, edited)
        subprocess.run(["cp", "-p", str(edited), str(target)], check=True)
    elif how == "touch -r":
        stamp = tmp_path / "stamp"
        stamp.touch()
        shutil.copystat(target, stamp)
        target.write_text(edited.read_text())
        subprocess.run(["touch", "-r", str(stamp), str(target)], check=True)
    elif how == "rsync -a":
        if shutil.which("rsync") is None:
            pytest.skip("rsync is not installed")
        shutil.copystat(target, edited)
        # -I: copy although size and mtime match (what rsync -a delivers when the source changed
        # and kept its mtime; without -I it would skip the file, leaving nothing stale to serve)
        subprocess.run(["rsync", "-a", "-I", str(edited), str(target)], check=True)
    else:
        replacement = tmp_path / "replacement"
        replacement.write_text(edited.read_text())
        shutil.copystat(target, replacement)
        os.replace(replacement, target)
    assert (
        target.stat().st_size == edited.stat().st_size
        and target.stat().st_mtime_ns == 1_600_000_000_000_000_000
    )
    assert file_identity(target) != before


def test_file_identity_of_a_symlink_loop_raises_an_oserror(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    with pytest.raises(OSError):
        file_identity(tmp_path / "a.jpg")
    assert file_identity(tmp_path / "absent.jpg")[1:] == (-1, "missing")


def test_nodes_sharing_a_folder_write_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flock is not coherent across machines: each node writes its own subfolder of a shared dir."""
    import socket

    from ocr.cache.store import FileStore

    stores = []
    for host in ("node-a", "node-b"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        stores.append(FileStore(tmp_path, 10**6))
    assert stores[0].root != stores[1].root and stores[0].root.parent == stores[1].root.parent == tmp_path
    stores[0].write("ab" * 32, [b"x" * 64])
    assert stores[0].read("ab" * 32) is not None and stores[1].read("ab" * 32) is None
    assert len(stores[1]) == 0


def test_profiler_reports_each_cache_client_apart() -> None:
    from ocr.perf.aggregate import cache_stats
    from ocr.report.epoch_perf import from_summary

    counters = {
        "target_cache_hits": 3,
        "target_cache_misses": 1,
        "sample_cache_hits": 4,
        "sample_cache_write_errors": 2,
        "targets_computed": 1,
    }
    stats = cache_stats(counters)
    assert stats["target"] == {"hits": 3, "misses": 1, "hit_rate": 0.75}
    assert stats["sample"] == {"hits": 4, "misses": 0, "write_errors": 2, "hit_rate": 1.0}
    entry = {"phase": "validate", "epoch": 0, "samples": 4, "cache": stats}
    epoch = from_summary({"epochs": [entry]}).epochs[0]
    assert (epoch.cache_hit_rate, epoch.sample_cache_hit_rate) == (0.75, 1.0)
    legacy = {
        "phase": "validate",
        "epoch": 0,
        "samples": 4,
        "cache": {"hits": 1, "misses": 1, "hit_rate": 0.5},
    }
    epoch = from_summary({"epochs": [legacy]}).epochs[0]  # a summary from before: the target cache's
    assert (epoch.cache_hit_rate, epoch.sample_cache_hit_rate) == (0.5, None)
