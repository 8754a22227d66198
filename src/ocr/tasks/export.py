"""``ocr export``: the detector as ONNX (dynamic batch, height and width) and/or as shipped weights.

    ocr export ckpt_path=best.ckpt output=sroie.onnx [weights=src/ocr/weights/sroie.pt]
    ocr export output=sroie.onnx            # the shipped weights of model= (default sroie)

The last stdout line is one JSON object (paths and sizes). With onnxruntime installed the written
model is run once against torch on a random input, and the max abs difference is reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.errors import UserInputError


def export(cfg: DictConfig) -> dict[str, Any]:
    from ocr.schema import check_config

    check_config(cfg)  # every range (opset=...), before the checkpoint or the model is read
    from ocr.inference.onnx_export import export_onnx
    from ocr.inference.weights import MAX_BYTES, save_weights
    from ocr.tasks.checkpoint import resolve_model_checkpoint

    output = Path(str(cfg.output)) if cfg.get("output") else None
    weights = Path(str(cfg.weights)) if cfg.get("weights") else None
    if output is None and weights is None:
        raise UserInputError("nothing to export: pass output=MODEL.onnx and/or weights=WEIGHTS.pt")
    for path in (p for p in (output, weights) if p is not None):
        if path.is_dir():
            raise UserInputError(f"{path} is a directory; pass a file path")
    ckpt = resolve_model_checkpoint(cfg)
    from ocr.models.lit_module import DBNetModule

    module = DBNetModule.load_from_checkpoint(ckpt, map_location="cpu")
    net = module.model.eval()
    result: dict[str, Any] = {"ckpt": ckpt}
    if weights is not None:
        save_weights(ckpt, weights)
        size = weights.stat().st_size
        result.update(weights=str(weights), weights_bytes=size)
        if size > MAX_BYTES:
            raise UserInputError(
                f"{weights} is {size / 2**20:.1f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB limit"
            )
    if output is not None:
        export_onnx(net, output, opset=int(cfg.opset))
        result.update(onnx=str(output), onnx_bytes=output.stat().st_size)
        result["check_max_abs_diff"] = _check(net, output)
    print(json.dumps(result), flush=True)
    return result


def _check(net: torch.nn.Module, path: Path) -> float | None:
    """Torch vs onnxruntime on one random input of a size unlike the export's sample (None without ORT)."""
    try:
        from ocr.inference.backends import OnnxBackend
    except ImportError:  # pragma: no cover
        return None
    try:
        backend = OnnxBackend(path)
    except UserInputError:
        return None
    images = torch.randn(1, 3, 320, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = net(images, with_thresh=False)["prob"][:, 0].numpy()
    return float(np.abs(backend(images) - expected).max())


@hydra.main(config_path=str(config_dir()), config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    export(cfg)
