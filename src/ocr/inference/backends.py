"""Two ways to run the detector network on a normalised (B, 3, H, W) float32 batch.

Both return the (B, H, W) float32 probability map, so pre- and post-processing are shared code.
``onnxruntime`` is imported only when an :class:`OnnxBackend` is built (an optional extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ocr.errors import UserInputError

BACKENDS = ("torch", "onnxruntime")


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise UserInputError(
            "backend=onnxruntime needs the onnxruntime package: pip install 'ocr[onnx]' "
            "(or use backend=torch)"
        ) from None
    return onnxruntime


class TorchBackend:
    def __init__(self, net: nn.Module) -> None:
        self.net = net.eval()

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            prob = self.net(images, with_thresh=False)["prob"]
        return prob[:, 0].float().cpu().numpy()


class OnnxBackend:
    """An onnxruntime CPU session over a model written by ``ocr export`` (input ``images``)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            images = images.detach().to("cpu", torch.float32).numpy()
        (prob,) = self.session.run(None, {self.input_name: np.ascontiguousarray(images, np.float32)})
        return np.asarray(prob[:, 0], np.float32)


__all__ = ["BACKENDS", "OnnxBackend", "TorchBackend", "import_onnxruntime"]
