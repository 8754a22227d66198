"""Files a reader's listing cannot pair are counted and named, in every reader: a gt file
without its image, a suffix no reader decodes, two images sharing a stem, an unlisted image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ocr.data.collate import DBCollateFN
from ocr.data.datasets import ImageFolderDataset, JsonLayoutDataset, ReceiptDataset, SROIEDataset
from ocr.data.transforms import ReceiptTransform, TransformConfig
from tests.unit.test_readers import (
    BOX_A,
    gt_line,
    json_entry,
    receipt_image,
    save_image,
    write_json,
    write_sroie,
)

GOOD = receipt_image(100, 200, [BOX_A])


def epoch(reader: type[ReceiptDataset], root: Path, with_targets: bool = True) -> dict[str, Any]:
    """Every index once (one epoch's worth), through ``__getitem__`` and the collate's counters."""
    dataset = reader(root=root)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    return DBCollateFN(with_targets=with_targets)([dataset[i] for i in range(len(dataset))])["perf"]


def test_sroie_counts_orphans_unsupported_suffixes_and_shared_stems(tmp_path: Path) -> None:
    write_sroie(tmp_path, "001", GOOD, [gt_line(BOX_A, "A")])
    (tmp_path / "gt" / "002.txt").write_text(gt_line(BOX_A, "orphan") + "\n")  # no image
    Image.fromarray(GOOD).save(tmp_path / "images" / "003.gif")
    (tmp_path / "gt" / "003.txt").write_text(gt_line(BOX_A, "gif") + "\n")
    save_image(tmp_path / "images" / "004.jpg", GOOD)
    save_image(tmp_path / "images" / "004.png", GOOD)
    (tmp_path / "gt" / "004.txt").write_text(gt_line(BOX_A, "which one?") + "\n")
    (tmp_path / "images" / ".DS_Store").write_bytes(b"\0")  # hidden: not data, not counted
    perf = epoch(SROIEDataset, tmp_path)
    counters, where = perf["counters"], perf["issues"]
    assert counters["samples"] == 1
    assert where["skipped_orphan_gt"] == ["002.txt"]
    assert where["skipped_unsupported_suffix"] == ["003.gif"]
    assert sorted(where["skipped_ambiguous_stem"]) == ["004.jpg", "004.png"]
    assert counters["skipped_samples"] == 4


def test_json_counts_unlisted_images_and_unsupported_suffixes(tmp_path: Path) -> None:
    write_json(
        tmp_path,
        {"a.jpg": json_entry([(BOX_A, "A")]), "gone.jpg": json_entry([(BOX_A, "B")])},
        {"a.jpg": GOOD, "extra.jpg": GOOD},
    )
    (tmp_path / "images" / "notes.txt").write_text("scanner log")
    perf = epoch(JsonLayoutDataset, tmp_path)
    where = perf["issues"]
    assert perf["counters"]["samples"] == 1
    assert where["skipped_missing_image"] == ["gone.jpg"]  # listed, no image (as before)
    assert where["skipped_missing_gt"] == ["extra.jpg"]  # an image the file does not list
    assert where["skipped_unsupported_suffix"] == ["notes.txt"]


def test_predict_reader_counts_unsupported_files_and_shared_stems(tmp_path: Path) -> None:
    save_image(tmp_path / "r1.jpg", GOOD)
    save_image(tmp_path / "r1.png", GOOD)  # overlays would both be r1.png
    save_image(tmp_path / "r2.jpg", GOOD)
    (tmp_path / "r3.heic").write_bytes(b"\0" * 16)
    perf = epoch(ImageFolderDataset, tmp_path, with_targets=False)
    where = perf["issues"]
    assert perf["counters"]["samples"] == 3, "images sharing a stem are still predicted"
    assert where["skipped_unsupported_suffix"] == ["r3.heic"]
    assert sorted(where["ambiguous_stems"]) == ["r1.jpg", "r1.png"]


def test_listing_entries_are_named_in_the_epoch_warning(tmp_path: Path, caplog: Any) -> None:
    """Once per epoch, through DataQualityCallback, like any skipped sample."""
    import logging
    from types import SimpleNamespace

    from ocr.callbacks.data_quality import DataQualityCallback

    write_sroie(tmp_path, "001", GOOD, [gt_line(BOX_A, "A")])
    (tmp_path / "gt" / "009.txt").write_text(gt_line(BOX_A, "orphan") + "\n")
    dataset = SROIEDataset(root=tmp_path)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    batch = DBCollateFN()([dataset[i] for i in range(len(dataset))])
    trainer = SimpleNamespace(current_epoch=0, world_size=1, is_global_zero=True, loggers=[], global_step=0)
    callback = DataQualityCallback()
    for _ in range(2):  # two epochs: one warning each
        callback.phase_start(trainer, "validate")  # type: ignore[arg-type]
        callback.phase_batch(trainer, "validate", batch)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING):
            callback.phase_end(trainer, "validate")  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records if "data quality" in r.getMessage()]
    assert len(warnings) == 2
    assert all("skipped_orphan_gt=1 [009.txt]" in w for w in warnings)
    assert np.all([h["counts"]["skipped_orphan_gt"] == 1 for h in callback.history])
