"""The layers written in pyproject.toml ([tool.importlinter]) hold: `lint-imports` passes, in CI too."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    proc = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_subpackage_has_a_layer() -> None:
    """A new top-level module or package must be placed in the layers, not slip past them."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    src = REPO_ROOT / "src" / "ocr"
    found = {f"ocr.{p.stem}" for p in src.iterdir() if (p.suffix == ".py" or (p / "__init__.py").is_file())}
    found -= {"ocr.__init__", "ocr.configs"}
    assert found == placed
