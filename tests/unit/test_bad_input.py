"""Bad input never kills an epoch: each case is either skipped and counted, or a clear user error.

Per-sample and per-polygon problems become counters in ``batch["perf"]`` (see ``DBCollateFN``) and
a per-epoch warning from ``DataQualityCallback``; a wholly unusable input (missing root, empty
split) raises ``UserInputError``, which the ``ocr`` CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hydra
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from PIL import Image

from ocr.callbacks.data_quality import DataQualityCallback
from ocr.cli import run_task
from ocr.data.collate import DBCollateFN
from ocr.data.datasets import ImageFolderDataset, JsonLayoutDataset, SROIEDataset
from ocr.data.sanitize import sanitize_polygon
from ocr.data.transforms import ReceiptTransform, TransformConfig
from ocr.errors import UserInputError
from ocr.tasks.common import build_trainer, instantiate_callbacks, instantiate_loggers
from tests.helpers import compose_config, run_cli
from tests.unit.test_readers import (
    BOX_A,
    BOX_B,
    READERS,
    gt_line,
    json_entry,
    receipt_image,
    save_image,
    write_json,
    write_sroie,
)

H, W = 100, 200
OUTSIDE_PART = [[150, 40], [260, 40], [260, 60], [150, 60]]  # right half beyond W=200
OUTSIDE_ALL = [[300, 10], [400, 10], [400, 30], [300, 30]]
BOWTIE = [[10, 10], [90, 30], [90, 10], [10, 30]]  # corners clicked in the wrong order
ZERO_AREA = [[10, 80], [50, 80], [90, 80], [30, 80]]  # collinear


def jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def sroie_item(
    root: Path, name: str, image: np.ndarray | bytes | None, lines: list[str] | None
) -> dict[str, Any]:
    """Write one receipt, read it back through ``__getitem__`` (the path a DataLoader takes)."""
    write_sroie(root, name, image, lines)
    dataset = SROIEDataset(root=root)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    index = [p.stem for p in dataset.image_paths].index(name)
    return dataset[index]


def issues(item: dict[str, Any]) -> dict[str, list[str]]:
    return dict(item["meta"]["issues"])


def counters(items: list[dict[str, Any]]) -> dict[str, int]:
    return DBCollateFN()(items)["perf"]["counters"]


GOOD = receipt_image(H, W, [BOX_A, BOX_B])


# -- per sample: skipped and counted --------------------------------------------------------------
@pytest.mark.parametrize(
    "content", [b"", b"this is not a jpeg", jpeg_bytes(GOOD)[:600]], ids=["empty", "garbage", "truncated"]
)
def test_corrupt_image_is_skipped_and_counted(tmp_path: Path, content: bytes) -> None:
    item = sroie_item(tmp_path, "000", content, [gt_line(BOX_A, "a")])
    assert item["skipped"]["reason"] == "unreadable_image"
    assert item["skipped"]["where"] == "000.jpg"
    assert "re-export or remove the file" in item["skipped"]["message"]
    good = sroie_item(tmp_path, "001", GOOD, [gt_line(BOX_A, "a")])
    batch = DBCollateFN()([item, good])
    assert batch["images"].shape[0] == 1 and batch["meta"][0]["name"] == "001.jpg"
    c = batch["perf"]["counters"]
    assert (c["samples"], c["skipped_samples"], c["skipped_unreadable_image"]) == (1, 1, 1)
    assert batch["perf"]["issues"]["skipped_unreadable_image"] == ["000.jpg"]


def test_unreadable_image_in_a_predict_folder_is_skipped_by_name(tmp_path: Path) -> None:
    save_image(tmp_path / "good.jpg", GOOD)
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    dataset = ImageFolderDataset(root=tmp_path)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    batch = DBCollateFN(with_targets=False)([dataset[0], dataset[1]])
    assert [m["name"] for m in batch["meta"]] == ["good.jpg"]
    assert batch["perf"]["issues"] == {
        "skipped_samples": ["bad.jpg"],
        "skipped_unreadable_image": ["bad.jpg"],
    }


def test_missing_gt_file_skips_the_receipt(tmp_path: Path) -> None:
    item = sroie_item(tmp_path, "000", GOOD, None)
    assert item["skipped"]["reason"] == "missing_gt" and item["skipped"]["where"] == "000.txt"
    assert "empty for a receipt with no text" in item["skipped"]["message"]
    assert counters([item])["skipped_missing_gt"] == 1


def test_unparsable_gt_line_is_dropped_and_located(tmp_path: Path) -> None:
    lines = [gt_line(BOX_A, "ok"), "10,10,TOTAL", "a,b,c,d,e,f,g,h,text", gt_line(BOX_B, "ok too")]
    item = sroie_item(tmp_path, "000", GOOD, lines)
    assert len(item["polygons"]) == 2 and item["meta"]["gt_texts"] == ["ok", "ok too"]
    assert issues(item) == {"dropped_polygons_unparsable": ["000.txt:2", "000.txt:3"]}
    assert counters([item])["dropped_polygons_unparsable"] == 2


def test_gt_file_where_nothing_parses_is_skipped_not_trained_as_empty(tmp_path: Path) -> None:
    item = sroie_item(tmp_path, "000", GOOD, ["<xml>", "not,a,box"])
    assert item["skipped"]["reason"] == "bad_gt"
    assert counters([item])["skipped_bad_gt"] == 1


def test_json_entry_without_words_is_skipped(tmp_path: Path) -> None:
    write_json(tmp_path, {"a.jpg": {"img_w": W}}, {"a.jpg": GOOD})
    dataset = JsonLayoutDataset(root=tmp_path)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    assert dataset[0]["skipped"]["reason"] == "bad_gt"


def test_json_size_that_disagrees_with_the_image_is_skipped(tmp_path: Path) -> None:
    write_json(tmp_path, {"a.jpg": json_entry([(BOX_A, "a")], (W, H))}, {"a.jpg": GOOD})
    dataset = JsonLayoutDataset(root=tmp_path)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    item = dataset[0]
    assert item["skipped"]["reason"] == "size_mismatch" and "100x200" in item["skipped"]["message"]


# -- per polygon: fixed or dropped, and counted -------------------------------------------------
@pytest.mark.parametrize("points", [[[1, 2], [3, 4]], [[5, 5]], []], ids=["two", "one", "none"])
def test_polygon_with_fewer_than_three_points_is_dropped(tmp_path: Path, points: list[list[int]]) -> None:
    write_json(tmp_path, {"a.jpg": json_entry([(points, "x"), (BOX_A, "a")])}, {"a.jpg": GOOD})
    sample = JsonLayoutDataset(root=tmp_path).load(0)
    assert sample.texts == ["a"]
    assert sample.meta["issues"] == {"dropped_polygons_too_few_points": ["a.jpg#0001"]}


def test_nan_or_inf_coordinates_are_dropped(tmp_path: Path) -> None:
    lines = ["nan,10,90,10,90,30,10,30,a", "10,10,inf,10,90,30,10,30,b", gt_line(BOX_B, "c")]
    item = sroie_item(tmp_path, "000", GOOD, lines)
    assert item["meta"]["gt_texts"] == ["c"]
    assert issues(item) == {"dropped_polygons_nan": ["000.txt:1", "000.txt:2"]}
    # Python's json accepts NaN/Infinity literals, so the json reader meets them too.
    (tmp_path / "j").mkdir()
    save_image(tmp_path / "j" / "images" / "a.jpg", GOOD)
    (tmp_path / "j" / "annotations.json").write_text(
        '{"images": {"a.jpg": {"words": {"1": {"points": [[NaN, 1], [5, 1], [5, 9]], "transcription": "x"},'
        ' "2": {"points": [[1, 1], [Infinity, 1], [5, 9]], "transcription": "y"}}}}}'
    )
    sample = JsonLayoutDataset(root=tmp_path / "j").load(0)
    assert sample.polygons == [] and sample.meta["issues"] == {"dropped_polygons_nan": ["a.jpg#1", "a.jpg#2"]}


def test_zero_area_polygon_is_dropped(tmp_path: Path) -> None:
    item = sroie_item(
        tmp_path, "000", GOOD, [gt_line(ZERO_AREA, "flat"), "5,5,5,5,5,5,5,5,dot", gt_line(BOX_A, "a")]
    )
    assert item["meta"]["gt_texts"] == ["a"]
    assert issues(item) == {"dropped_polygons_zero_area": ["000.txt:1", "000.txt:2"]}


def test_self_intersecting_quad_is_reordered_and_kept() -> None:
    result = sanitize_polygon(BOWTIE, (H, W))
    assert result.events == ("repaired_polygons_self_intersecting",) and not result.ignore
    (poly,) = result.polygons
    assert sorted(map(tuple, poly.tolist())) == sorted(map(tuple, BOWTIE)), "same corners, new order"
    assert tuple(poly[0]) == (10, 10), "starts where the annotator started"
    from shapely.geometry import Polygon

    assert Polygon(poly).is_valid and Polygon(poly).area == pytest.approx(80 * 20)


def test_self_intersecting_polygon_that_is_not_a_reordering_becomes_an_ignore_region(tmp_path: Path) -> None:
    tangle = [*BOWTIE, [30, 20]]  # the extra point lies inside: no vertex order makes it convex
    write_json(tmp_path / "j", {"a.jpg": json_entry([(tangle, "t"), (BOX_B, "b")])}, {"a.jpg": GOOD})
    sample = JsonLayoutDataset(root=tmp_path / "j").load(0)
    assert sample.texts == ["t", "b"] and sample.ignore == [True, False]
    assert sample.meta["issues"] == {"ignored_polygons_self_intersecting": ["a.jpg#0001"]}
    batch = DBCollateFN()([_transformed(sample)])
    assert batch["perf"]["counters"]["ignored_polygons_self_intersecting"] == 1


def _transformed(sample: Any) -> dict[str, Any]:
    out = ReceiptTransform(TransformConfig(image_size=64), train=False)(sample)
    out["index"] = 0
    return out


def test_coordinates_outside_the_image_are_clipped_or_dropped(tmp_path: Path) -> None:
    lines = [
        gt_line(OUTSIDE_PART, "edge"),
        gt_line(OUTSIDE_ALL, "gone"),
        gt_line([[-5, -5], *BOX_A[1:]], "neg"),
    ]
    item = sroie_item(tmp_path, "000", GOOD, lines)
    polys = item["meta"]["gt_polygons"]
    assert item["meta"]["gt_texts"] == ["edge", "neg"]
    assert issues(item) == {
        "clipped_polygons": ["000.txt:1", "000.txt:3"],
        "dropped_polygons_outside_image": ["000.txt:2"],
    }
    for poly in polys:
        assert (
            poly[:, 0].min() >= 0
            and poly[:, 1].min() >= 0
            and poly[:, 0].max() <= W
            and poly[:, 1].max() <= H
        )
    from shapely.geometry import Polygon

    assert Polygon(polys[0]).area == pytest.approx(50 * 20), "only the part inside the image is kept"


def test_receipt_with_no_text_is_a_valid_sample(tmp_path: Path) -> None:
    item = sroie_item(tmp_path, "000", receipt_image(H, W), [])
    assert "skipped" not in item and item["polygons"] == [] and issues(item) == {}
    batch = DBCollateFN()([item])
    assert batch["images"].shape[0] == 1 and float(batch["prob_maps"].sum()) == 0.0
    assert batch["perf"]["counters"]["skipped_samples"] == 0


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_jpeg_stays_aligned_with_its_polygons(tmp_path: Path, orientation: int) -> None:
    """Stored pixels are rotated; the EXIF tag says how to display them; annotations are in the
    displayed frame (what annotators saw). The reader must return the displayed image."""
    box = [[20, 10], [120, 10], [120, 40], [20, 40]]
    displayed = receipt_image(H, W, [box])
    undo = Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    stored = np.asarray(Image.fromarray(displayed).transpose(undo))
    assert stored.shape[:2] == (W, H)
    write_sroie(tmp_path, "000", None, [gt_line(box, "rotated")])
    save_image(tmp_path / "images" / "000.jpg", stored, orientation=orientation)
    with Image.open(tmp_path / "images" / "000.jpg") as raw:
        assert raw.size == (H, W) and raw.getexif()[0x0112] == orientation
    sample = SROIEDataset(root=tmp_path).load(0)
    assert sample.image.shape[:2] == (H, W) and sample.meta["issues"] == {}
    gray = sample.image.mean(axis=2)
    assert gray[15:35, 30:110].mean() < 40, "text box is dark under its polygon"
    assert gray[60:90, 30:110].mean() > 215 and gray[15:35, 140:190].mean() > 215
    np.testing.assert_array_equal(sample.polygons[0], np.asarray(box, np.float32))


# -- whole input unusable: a clear error -----------------------------------------------------------
@pytest.mark.parametrize("reader", ["sroie", "json"])
def test_missing_data_root_is_a_clear_error(tmp_path: Path, reader: str) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(UserInputError, match=f"data root {missing} does not exist; pass a split folder"):
        READERS[reader](root=missing)


def test_split_without_gt_folder_is_a_clear_error(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "000.jpg", GOOD)
    with pytest.raises(UserInputError, match=f"gt folder {tmp_path / 'gt'} does not exist"):
        SROIEDataset(root=tmp_path)


def test_empty_dataset_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "s" / "images").mkdir(parents=True)
    (tmp_path / "s" / "gt").mkdir()
    with pytest.raises(UserInputError, match="empty dataset: no images"):
        SROIEDataset(root=tmp_path / "s")
    write_json(tmp_path / "j", {}, {})
    with pytest.raises(UserInputError, match=r"empty dataset: .*annotations\.json lists no images"):
        JsonLayoutDataset(root=tmp_path / "j")
    write_json(tmp_path / "k", {"gone.jpg": json_entry([])}, {})
    with pytest.raises(UserInputError, match="none of the 1 images listed"):
        JsonLayoutDataset(root=tmp_path / "k")
    (tmp_path / "k" / "annotations.json").write_text("{'images': ")
    with pytest.raises(UserInputError, match="is not valid JSON"):
        JsonLayoutDataset(root=tmp_path / "k")


def test_datamodule_names_the_option_to_fix(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path, ["data=sroie", f"data.train_root={tmp_path / 'x'}"])
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    with pytest.raises(UserInputError, match=r"needs data\.train_root=DIR and data\.val_root=DIR"):
        dm.setup("fit")
    cfg = compose_config(
        "train", tmp_path, ["data=sroie", f"data.train_root={tmp_path / 'x'}", "data.val_root=y"]
    )
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    with pytest.raises(
        UserInputError, match=rf"^train split \(data.train_root={tmp_path / 'x'}\): data root"
    ):
        dm.setup("fit")


def test_run_task_prints_one_line_for_wrapped_user_errors(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        try:
            raise UserInputError("data root /x does not exist; pass a split folder")
        except UserInputError as exc:
            raise InstantiationException("Error in call to target") from exc

    with pytest.raises(SystemExit) as exit_info:
        run_task(SimpleNamespace(main=main))  # type: ignore[arg-type]
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "ocr: error: data root /x does not exist; pass a split folder\n"


def test_cli_reports_a_missing_root_in_one_line_with_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-split"
    result = run_cli(
        [
            "train",
            "data=sroie",
            f"data.train_root={missing}",
            f"data.val_root={missing}",
            "model.net.backbone=mobilenetv3_small_050",
            "model.net.inner_channels=32",
            "trainer.accelerator=cpu",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ocr: error:")]
    assert errors == [
        f"ocr: error: train split (data.train_root={missing}): data root {missing} does not exist; "
        "pass a split folder (a sroie split folder holds images/NNN.jpg and gt/NNN.txt)"
    ]
    assert result.stderr.rstrip().endswith(errors[0])


# -- end to end: a real Trainer epoch over a mix of bad files ---------------------------------------
def _mixed_split(root: Path) -> None:
    boxes = [gt_line(BOX_A, "a"), gt_line(BOX_B, "b")]
    write_sroie(root, "bad_corrupt", b"not an image", boxes)  # sorted first: the first val batch
    write_sroie(root, "bad_truncated", jpeg_bytes(GOOD)[:600], boxes)  # is entirely skipped
    write_sroie(root, "bowtie", GOOD, [gt_line(BOWTIE, "x"), boxes[1]])
    write_sroie(root, "empty", receipt_image(H, W), [])
    write_sroie(root, "good", GOOD, boxes)
    write_sroie(root, "line", GOOD, [*boxes, "1,2,3,TOTAL"])
    write_sroie(root, "nan", GOOD, [*boxes, "nan,1,2,3,4,5,6,7,x"])
    write_sroie(root, "no_gt", GOOD, None)
    write_sroie(root, "outside", GOOD, [*boxes, gt_line(OUTSIDE_PART, "p"), gt_line(OUTSIDE_ALL, "q")])
    write_sroie(root, "rotated", None, boxes)
    save_image(root / "images" / "rotated.jpg", np.ascontiguousarray(np.rot90(GOOD)), orientation=6)
    write_sroie(root, "zero", GOOD, [*boxes, gt_line(ZERO_AREA, "z")])


EXPECTED = {
    "skipped_samples": 3,
    "skipped_unreadable_image": 2,
    "skipped_missing_gt": 1,
    "dropped_polygons_unparsable": 1,
    "dropped_polygons_nan": 1,
    "dropped_polygons_zero_area": 1,
    "dropped_polygons_outside_image": 1,
    "clipped_polygons": 1,
    "repaired_polygons_self_intersecting": 1,
}


def _trainer_cfg(tmp_path: Path, train: Path, val: Path) -> Any:
    return compose_config(
        "train",
        tmp_path / "run",
        [
            "data=sroie",
            f"data.train_root={train}",
            f"data.val_root={val}",
            "data.image_size=64",
            "data.loader.batch_size=1",  # every skipped sample is an all-skipped training batch
            "data.loader.val_batch_size=2",
            "data.loader.num_workers=1",  # counters cross a worker process, as in real runs
            "data.cache.enabled=false",
            "model.net.backbone=mobilenetv3_small_050",
            "model.net.inner_channels=32",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
        ],
    )


def _fit(cfg: Any) -> tuple[Any, DataQualityCallback]:
    out = Path(cfg.paths.output_dir)
    callbacks = instantiate_callbacks(cfg)
    quality = next(cb for cb in callbacks if isinstance(cb, DataQualityCallback))
    trainer = build_trainer(cfg, callbacks, instantiate_loggers(cfg, out))
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    return trainer, quality


def test_one_epoch_over_a_mix_of_bad_files_completes_and_reports(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    split = tmp_path / "split"
    _mixed_split(split)
    cfg = _trainer_cfg(tmp_path, split, split)
    with caplog.at_level(logging.WARNING, logger="ocr.callbacks.data_quality"):
        trainer, quality = _fit(cfg)
    assert trainer.state.finished and trainer.global_step == 11  # skipped batches step nothing
    by_phase = {entry["phase"]: entry for entry in quality.history}
    for phase in ("train", "val"):
        assert by_phase[phase]["counts"] == EXPECTED, phase
        assert by_phase[phase]["samples"] == 8
    warnings = [r.getMessage() for r in caplog.records if "data quality (train, epoch 0)" in r.getMessage()]
    assert len(warnings) == 1
    assert "skipped_unreadable_image=2 [bad_corrupt.jpg, bad_truncated.jpg]" in warnings[0]
    assert (
        "skipped_missing_gt=1 [no_gt.txt]" in warnings[0]
        and "dropped_polygons_nan=1 [nan.txt:3]" in warnings[0]
    )
    with open(Path(cfg.paths.output_dir) / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    logged = {k: float(v) for row in rows for k, v in row.items() if k.startswith("data/") and v}
    assert logged["data/train/skipped_samples"] == 3 and logged["data/val/skipped_missing_gt"] == 1
    assert logged["data/val/clipped_polygons"] == 1
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())


def test_an_epoch_where_every_sample_is_skipped_stops_with_a_clear_error(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad", tmp_path / "good"
    write_sroie(bad, "000", b"junk", [gt_line(BOX_A, "a")])
    write_sroie(bad, "001", GOOD, None)
    write_sroie(good, "000", GOOD, [gt_line(BOX_A, "a")])
    cfg = _trainer_cfg(tmp_path, bad, good)
    with pytest.raises(UserInputError, match=r"every train sample was skipped as unusable \(2 samples: "):
        _fit(cfg)


def test_data_quality_sums_counts_across_ddp_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each rank tallies its own batches; every rank ends the epoch with the all-gathered sum."""
    rank0, rank1 = DataQualityCallback(examples=2), DataQualityCallback(examples=2)
    perf = {"counters": {"samples": 3, "skipped_samples": 1, "skipped_missing_gt": 1}}
    rank0._on_batch("train", {"perf": {**perf, "issues": {"skipped_missing_gt": ["a.txt"]}}})
    rank1._on_batch("train", {"perf": {**perf, "issues": {"skipped_missing_gt": ["b.txt"]}}})
    rank1._on_batch("train", {"perf": {"counters": {"samples": 2, "skipped_samples": 0}, "issues": {}}})
    other = (
        dict(rank1.tallies["train"].counts),
        rank1.tallies["train"].examples,
        rank1.tallies["train"].samples,
    )

    def all_gather_object(parts: list[Any], mine: Any) -> None:
        parts[:] = [mine, other]

    monkeypatch.setattr("torch.distributed.is_available", lambda: True)
    monkeypatch.setattr("torch.distributed.is_initialized", lambda: True)
    monkeypatch.setattr("torch.distributed.all_gather_object", all_gather_object)
    trainer = SimpleNamespace(world_size=2, current_epoch=4, is_global_zero=True, loggers=[], global_step=9)
    rank0._finish(trainer, "train")  # type: ignore[arg-type]
    (entry,) = rank0.history
    assert entry == {
        "phase": "train",
        "epoch": 4,
        "samples": 8,
        "counts": {"skipped_samples": 2, "skipped_missing_gt": 2},
    }
