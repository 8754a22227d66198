"""Every unreadable checkpoint gives one line naming the file and what it is, before anything is
built: empty, truncated, garbage, a bare state_dict, another model's Lightning checkpoint, a folder.

The files are real: a DBNet and a Lightning demo model are saved by a real ``Trainer``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from ocr.errors import UserInputError
from ocr.models.lit_module import DBNetModule
from ocr.tasks.checkpoint import check_checkpoint
from ocr.tasks.run_paths import output_dir
from tests.helpers import compose_config, run_cli


def save(model: L.LightningModule, path: Path) -> Path:
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    good = save(
        DBNetModule(net={"backbone": "mobilenetv3_small_050", "inner_channels": 32}), root / "good.ckpt"
    )
    data = good.read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (root / "empty.ckpt").write_bytes(b"")
    (root / "garbage.ckpt").write_bytes(b"this is a text file, not a checkpoint\n" * 20)
    torch.save(DBNetModule(net={"backbone": "mobilenetv3_small_050"}).state_dict(), root / "state_dict.pt")
    save(BoringModel(), root / "other_model.ckpt")
    (root / "run" / "checkpoints").mkdir(parents=True)
    (root / "run" / "checkpoints" / "last.ckpt").write_bytes(data)
    return {p.stem: p for p in root.iterdir()} | {"good": good}


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("truncated", r"is truncated \(\d+ bytes, the archive's end is missing"),
        ("empty", r"is empty \(0 bytes"),
        ("garbage", r"is not a PyTorch checkpoint \(unknown file format\)"),
        ("state_dict", r"is a bare state_dict, not a Lightning checkpoint"),
        ("other_model", r"is a Lightning checkpoint of another model \(e\.g\. weight 'layer\.\w+'\)"),
        (
            "run",
            r"is a directory, not a checkpoint file; it holds 1 \.ckpt file\(s\), "
            r"e\.g\. ckpt_path=.*last\.ckpt",
        ),
    ],
)
def test_bad_checkpoint_is_one_line_naming_file_and_kind(
    files: dict[str, Path], tmp_path: Path, name: str, what: str
) -> None:
    cfg = compose_config("validate", tmp_path / "out", [f"ckpt_path={files[name]}"])
    with pytest.raises(UserInputError, match=rf"^checkpoint {files[name]} {what}") as info:
        check_checkpoint(cfg.ckpt_path, output_dir(cfg))
    assert "\n" not in str(info.value)
    assert "ckpt_path=" in str(info.value), "names the fix"


def test_a_real_checkpoint_passes(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose_config("validate", tmp_path / "out", [f"ckpt_path={files['good']}"])
    assert check_checkpoint(cfg.ckpt_path, output_dir(cfg)) == str(files["good"])


def test_cli_answers_a_truncated_checkpoint_in_one_line_before_building(
    files: dict[str, Path], tmp_path: Path
) -> None:
    result = run_cli(
        ["validate", f"ckpt_path={files['truncated']}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    size = files["truncated"].stat().st_size
    assert lines == [
        f"ocr: error: checkpoint {files['truncated']} is truncated ({size} bytes, the archive's end is "
        "missing; an interrupted copy or save?); pass ckpt_path=PATH/TO/last.ckpt "
        "(a file written by ocr train)"
    ]
    assert "Error executing job" not in result.stdout + result.stderr
    assert "Seed set" not in result.stdout + result.stderr, "nothing was built before the check"


def test_missing_checkpoint_path_imports_neither_torch_nor_lightning(tmp_path: Path) -> None:
    """The error path is light: ``ocr validate ckpt_path=/nope`` answers without loading torch."""
    code = (
        "import sys\n"
        "from ocr.cli import main\n"
        "try:\n"
        f"    main(['validate', 'ckpt_path={tmp_path / 'nope.ckpt'}', 'hydra.run.dir={tmp_path / 'run'}'])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["2", "False", "False"], out.stdout + out.stderr
    assert out.stderr.strip() == (
        f"ocr: error: checkpoint {tmp_path / 'nope.ckpt'} does not exist; pass ckpt_path=PATH/TO/last.ckpt "
        "(a file written by ocr train)"
    )
