"""The real ``ocr`` CLI end to end on tiny synthetic data: train, validate, predict."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("train_run")
    proc = run_cli(["train", *TINY, "trainer.max_epochs=2", f"hydra.run.dir={run}"], cwd=run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Kept for the tests of what the run prints (the log may go to stdout or stderr).
    (run / "cli_stdout.txt").write_text(proc.stdout)
    (run / "cli_output.txt").write_text(proc.stdout + proc.stderr)
    return run


def test_train_writes_checkpoints_metrics_config_and_summary(trained_run: Path) -> None:
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()
    assert list((trained_run / "checkpoints").glob("best-*.ckpt"))
    assert (trained_run / "config.yaml").is_file()
    assert (trained_run / "perf_summary.json").is_file()
    header = (trained_run / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("val/hmean", "val/precision", "val/recall", "val/iou_hmean", "train/loss_epoch"):
        assert key in header
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 1 and ckpt["datamodule_hyper_parameters"]["image_size"] == 128
    assert "normalize_on_device" not in ckpt["datamodule_hyper_parameters"]


EPOCH_LINE = re.compile(
    r"epoch (\d+)/2  loss \d+\.\d{3}  CLEval P (\d\.\d{3}) R (\d\.\d{3}) H (\d\.\d{3})  "
    r"IoU H (\d\.\d{3})  best H (\d\.\d{3})  \d+\.\d s \(val \d+\.\d s\)"
)


def test_train_tells_the_story_one_line_per_epoch_then_paths(trained_run: Path) -> None:
    """One summary line per epoch (loss, CLEval P/R/H, IoU H, seconds), then the best checkpoint,
    perf_summary.json and a copyable ``ocr predict`` command; the JSON summary stays last on stdout."""
    output = (trained_run / "cli_output.txt").read_text()
    epochs = [m for m in EPOCH_LINE.finditer(output)]
    assert [int(m.group(1)) for m in epochs] == [1, 2], output[-3000:]
    hmeans = [float(m.group(4)) for m in epochs]
    assert float(epochs[-1].group(6)) == max(hmeans)
    metrics = [r for r in csv.DictReader((trained_run / "metrics.csv").open()) if r.get("val/hmean")]
    assert [round(float(r["val/hmean"]), 3) for r in metrics] == hmeans

    summary = json.loads((trained_run / "cli_stdout.txt").read_text().strip().splitlines()[-1])
    best = re.search(r"best checkpoint: (\S+)", output)
    perf = re.search(r"perf summary: (\S+)", output)
    assert best and perf, output[-2000:]
    assert best.group(1) == summary["best_checkpoint"] and Path(best.group(1)).is_file()
    assert Path(perf.group(1)) == trained_run / "perf_summary.json" and Path(perf.group(1)).is_file()
    assert f"ocr predict ckpt_path={best.group(1)} input=DIR" in output


VALIDATE = ["validate", "data.val.num_samples=4", "data.loader.num_workers=0", "trainer.accelerator=cpu"]


@pytest.fixture(scope="module")
def validated(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """``ocr validate`` of the trained run's last.ckpt: its last stdout line (shared by two tests)."""
    out = tmp_path_factory.mktemp("validate")
    ckpt = trained_run / "checkpoints" / "last.ckpt"
    proc = run_cli([*VALIDATE, f"ckpt_path={ckpt}", f"hydra.run.dir={out}"], cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_validate_prints_one_json_line_last(validated: dict[str, float]) -> None:
    assert set(validated) == {
        "precision",
        "recall",
        "hmean",
        "iou_precision",
        "iou_recall",
        "iou_hmean",
        "images",
    }
    assert validated["images"] == 4
    assert all(0.0 <= validated[k] <= 1.0 for k in validated if k != "images")


def test_checkpoint_of_the_previous_release_still_validates(
    trained_run: Path, validated: dict[str, float], tmp_path: Path
) -> None:
    """A checkpoint saved while ``normalize_on_device`` existed (and ``data.reader`` was a name)
    carries it in its data hparams:
    ``ocr validate`` takes only the image size and targets from a checkpoint, so it validates the
    same; setting the removed key on the command line is a clear error (exit 2)."""
    ckpt = torch.load(trained_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    ckpt["datamodule_hyper_parameters"]["normalize_on_device"] = True
    ckpt["datamodule_hyper_parameters"]["reader"] = "synthetic"  # a reader's name, before _target_
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    proc = run_cli([*VALIDATE, f"ckpt_path={old}", f"hydra.run.dir={tmp_path / 'old'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == validated  # the same as last.ckpt's
    bad = tmp_path / "bad"
    proc = run_cli(
        [*VALIDATE, f"ckpt_path={old}", "+data.normalize_on_device=false", f"hydra.run.dir={bad}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "normalize_on_device was removed" in proc.stderr, proc.stderr[-2000:]


def test_predict_writes_one_row_per_image_and_overlays(trained_run: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(300, 200), (150, 400), (256, 256)]):
        cv2.imwrite(str(images / f"r{i}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    out_csv = tmp_path / "submission.csv"
    proc = run_cli(
        [
            "predict",
            f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
            f"input={images}",
            f"output={out_csv}",
            f"visualize={tmp_path / 'vis'}",
            "postprocess.box_thresh=0.0",
            "postprocess.thresh=0.0",
            "data.loader.num_workers=0",
            "trainer.accelerator=cpu",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["filename", "polygons"]
    assert sorted(r[0] for r in rows[1:]) == ["r0.jpg", "r1.jpg", "r2.jpg"]
    sizes = {"r0.jpg": (300, 200), "r1.jpg": (150, 400), "r2.jpg": (256, 256)}
    for name, polys in rows[1:]:
        h, w = sizes[name]
        for poly in filter(None, polys.split("|")):
            coords = [int(v) for v in poly.split()]
            assert len(coords) % 2 == 0 and len(coords) >= 8
            assert all(0 <= x < w for x in coords[0::2]) and all(0 <= y < h for y in coords[1::2])
    assert sorted(p.name for p in (tmp_path / "vis").glob("*.png")) == ["r0.png", "r1.png", "r2.png"]
