"""``torch.onnx.export`` of the inference graph: images (B, 3, H, W) -> prob (B, 1, H, W).

Height and width are dynamic axes: the network is fully convolutional and the FPN resizes to the
shapes it sees, so one file serves every letterbox size (a multiple of 32).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17


class _ProbOnly(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, with_thresh=False)["prob"]


def export_onnx(net: nn.Module, path: str | Path, opset: int = OPSET, sample_size: int = 128) -> Path:
    """Write ``net``'s probability branch as ONNX (fp32) to ``path``, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _ProbOnly(net).eval()  # eval on the wrapper: export restores the wrapper's mode
    sample = torch.zeros(1, 3, sample_size, sample_size)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            wrapper,
            (sample,),
            str(tmp),
            dynamo=False,
            input_names=["images"],
            output_names=["prob"],
            dynamic_axes={"images": dynamic, "prob": dynamic},
            opset_version=opset,
            do_constant_folding=True,
        )
    os.replace(tmp, path)
    return path


def file_digest(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:16]


__all__ = ["OPSET", "export_onnx", "file_digest"]
