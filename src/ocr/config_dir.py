"""Where the Hydra configs live: ``$OCR_CONFIG_DIR``, else the repository's ``configs/``."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("OCR_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "configs")
    for path in candidates:
        if (path / "train.yaml").is_file():
            return path
    raise FileNotFoundError(
        "cannot find the ocr configs (configs/train.yaml). Install the package from its repository "
        "with `pip install -e .`, or set OCR_CONFIG_DIR to the configs folder."
    )
