"""Where the Hydra configs live: ``$OCR_CONFIG_DIR``, else the installed package's ``ocr/configs``
(a wheel, see ``setup.py``), else the source checkout's ``configs/`` (an editable install)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def config_dir() -> Path:
    """The configs folder; also puts the group schemas in Hydra's ConfigStore, which the YAMLs need."""
    from ocr.schema import register

    register()
    env = os.environ.get("OCR_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(str(files("ocr") / "configs")))
    candidates.append(Path(__file__).resolve().parents[2] / "configs")
    for path in candidates:
        if (path / "train.yaml").is_file():
            return path
    raise FileNotFoundError(
        "cannot find the ocr configs (configs/train.yaml). Reinstall the package (`pip install .`), "
        "or set OCR_CONFIG_DIR to the configs folder."
    )
