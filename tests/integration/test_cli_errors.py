"""The real ``ocr`` CLI: one exit-status convention (2 user error, 1 internal) and readable output.

A tiny real SROIE-layout training with an orphan gt file: its data-quality warning is one stderr
line, the last stdout line stays the JSON result, and Lightning's tips and the third-party
deprecation warning are gone. User errors of every command are one ``error:`` line, exit 2, with no
Hydra "Error executing job" line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.unit.test_readers import BOX_A, BOX_B, gt_line, receipt_image, write_sroie

pytestmark = pytest.mark.slow


def test_train_output_is_readable_and_the_result_is_the_last_stdout_line(tmp_path: Path) -> None:
    split = tmp_path / "split"
    for name in ("001", "002"):
        write_sroie(
            split, name, receipt_image(96, 128, [BOX_A, BOX_B]), [gt_line(BOX_A, "A"), gt_line(BOX_B, "B")]
        )
    (split / "gt" / "003.txt").write_text(gt_line(BOX_A, "orphan") + "\n")
    proc = run_cli(
        [
            "train",
            "data=sroie",
            f"data.train_root={split}",
            f"data.val_root={split}",
            "data.image_size=64",
            "data.augment.enabled=false",
            "data.loader.batch_size=2",
            "data.loader.num_workers=0",
            "data.cache.enabled=false",
            "model.net.backbone=mobilenetv3_small_050",
            "model.net.inner_channels=32",
            "trainer.accelerator=cpu",
            "trainer.max_epochs=1",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) >= {"hmean", "last_checkpoint"}
    err_lines = [part for line in proc.stderr.split("\n") for part in line.split("\r")]
    quality = [line for line in err_lines if "data quality (train, epoch 0)" in line]
    assert len(quality) == 1 and quality[0].startswith("["), quality
    assert "skipped_orphan_gt=1 [003.txt]" in quality[0]
    assert "data quality" not in proc.stdout
    everything = proc.stdout + proc.stderr
    assert "Tip:" not in everything
    assert "LeafSpec" not in everything
    assert everything.count("GPU available:") == 1, "every Lightning line printed once"
    assert (tmp_path / "run" / "perf_summary.json").is_file()


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["train", "data.nope=1"], "ocr: error: Could not override 'data.nope'."),
        (["train", "data=nope"], "ocr: error: In 'train': Could not find 'data/nope'"),
        (["validate"], "ocr: error: the shipped weights for model=sroie are not in this build"),
        (["validate", "ckpt_path={tmp}"], "ocr: error: checkpoint {tmp} is a directory"),
        (["report", "{tmp}/nowhere"], "ocr report: error: {tmp}/nowhere: no such file or directory; pass"),
    ],
)
def test_user_errors_are_one_line_and_exit_2_in_every_command(
    tmp_path: Path, args: list[str], first: str
) -> None:
    argv = [a.format(tmp=tmp_path) for a in args]
    if argv[0] != "report":
        argv.append(f"hydra.run.dir={tmp_path / 'run'}")
    proc = run_cli(argv, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(first.format(tmp=tmp_path)), proc.stderr
    assert "Error executing job" not in proc.stdout + proc.stderr
