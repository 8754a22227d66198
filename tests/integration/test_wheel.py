"""The package as a user installs it: a wheel in a fresh venv, run from an empty folder.

The wheel must carry the Hydra configs (``ocr/configs``, copied from ``configs/`` by ``setup.py``):
without them every task fails with "cannot find the ocr configs". The venv gets the shared
dependencies through a ``.pth`` line (nothing is downloaded) and the wheel itself with ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

# What a wheel build reads; copied so that the build never writes build/ or *.egg-info into the tree
# (and never packs a stale build/lib left by an earlier build).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "src", "configs")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its ``bin`` folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src-copy"
    src.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(src)], root)
    (wheel,) = dist.glob("ocr-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ocr/configs/train.yaml" in names and "ocr/configs/data/synthetic.yaml" in names

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root)
    bin_dir = venv / "bin"
    site = Path(
        _run(
            [str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root
        ).strip()
    )
    # The shared environment's packages (torch, lightning...), appended after the venv's own.
    (site / "_shared_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # --ignore-installed: pip sees the shared editable `ocr` through the .pth and must not touch it.
    _run(
        [
            *pip,
            "--python",
            str(bin_dir / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        root,
    )
    return bin_dir


def _user_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OCR_CONFIG_DIR", "PYTHONHOME")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def test_installed_package_finds_its_own_configs(installed: Path, tmp_path: Path) -> None:
    code = "import ocr, ocr.config_dir as c; print(ocr.__file__); print(c.config_dir())"
    out = _run([str(installed / "python"), "-c", code], tmp_path, env=_user_env()).splitlines()
    venv = installed.parent.resolve()
    assert Path(out[0]).resolve().is_relative_to(venv), out  # the wheel's code, not the checkout's
    assert Path(out[1]).resolve() == (Path(out[0]).parent / "configs").resolve(), out


def test_installed_ocr_trains_one_step_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _user_env()
    help_text = _run([str(installed / "ocr"), "train", "--help"], empty, env=env)
    assert "data: json, sroie, synthetic" in help_text
    run = tmp_path / "run"
    overrides = [
        "model.net.backbone=mobilenetv3_small_050",
        "model.net.inner_channels=32",
        "data.image_size=64",
        "data.train.num_samples=2",
        "data.val.num_samples=2",
        "data.loader.batch_size=2",
        "data.loader.num_workers=0",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"hydra.run.dir={run}",
    ]
    out = _run([str(installed / "ocr"), "train", *overrides], empty, env=env)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["epochs"] == 1
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list(empty.iterdir()) == []  # nothing written to the working folder
