"""Weights that ship inside the package, loaded by name: ``ocr predict model=sroie``.

A shipped file is a slim Lightning checkpoint: fp16 weights plus the model and data
hyper-parameters (image size, post-processing), so it loads through the same path as any
``ckpt_path``. ``OCR_WEIGHTS_DIR`` points the lookup elsewhere (tests, unpacked builds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ocr.errors import UserInputError

DEFAULT_MODEL = "sroie"
SHIPPED = {"sroie": "sroie.pt"}
MAX_BYTES = 25 * 1024 * 1024


def weights_dir() -> Path:
    env = os.environ.get("OCR_WEIGHTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "weights"


def shipped_weights(name: str | None) -> Path:
    """The packaged file for ``model=name``; one clear error when it is unknown or absent."""
    name = name or DEFAULT_MODEL
    if name not in SHIPPED:
        known = ", ".join(sorted(SHIPPED))
        raise UserInputError(
            f"model={name}: no shipped weights by that name (shipped: {known}); "
            "pass ckpt_path=PATH/TO/model.ckpt to use a checkpoint of your own"
        )
    path = weights_dir() / SHIPPED[name]
    if not path.is_file():
        raise UserInputError(
            f"the shipped weights for model={name} are not in this build ({path} is missing: they "
            "are trained by scripts/gpu/train_detector.sh); pass ckpt_path=PATH/TO/model.ckpt "
            "to use a checkpoint of your own"
        )
    return path


def shipped_onnx(weights: Path) -> Path | None:
    """The ONNX file shipped beside ``weights`` (same stem), if there is one."""
    path = weights.with_suffix(".onnx")
    return path if path.is_file() else None


def slim_checkpoint(full: dict[str, Any]) -> dict[str, Any]:
    """A Lightning checkpoint reduced to fp16 weights and what loading needs (no optimizer state)."""
    return {
        "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in full["state_dict"].items()},
        "hyper_parameters": full.get("hyper_parameters", {}),
        "datamodule_hyper_parameters": full.get("datamodule_hyper_parameters", {}),
        "epoch": full.get("epoch"),
        "global_step": full.get("global_step"),
        "pytorch-lightning_version": full.get("pytorch-lightning_version"),
    }


def save_weights(ckpt_path: str | Path, out: str | Path) -> Path:
    """Write ``ckpt_path`` as a shipped file: fp16 weights and the hyper-parameters only."""
    slim = slim_checkpoint(torch.load(ckpt_path, map_location="cpu", weights_only=False))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    torch.save(slim, tmp)
    os.replace(tmp, out)
    return out


def model_choice(cfg: Any) -> str:
    """The ``model=NAME`` choice of a predict/validate/export config (its config group), else the default."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get("model")
    except ValueError:  # composed without Hydra's runtime config
        choice = None
    return str(choice or DEFAULT_MODEL)


__all__ = [
    "DEFAULT_MODEL",
    "MAX_BYTES",
    "SHIPPED",
    "model_choice",
    "save_weights",
    "shipped_onnx",
    "shipped_weights",
    "slim_checkpoint",
    "weights_dir",
]
