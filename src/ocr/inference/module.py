"""The LightningModule ``ocr predict`` runs: one backend, the shared post-processing, rows out.

Either backend sits behind the same data module (decode, letterbox, normalisation on the device
hook) and the same :func:`postprocess_batch`, so torch and onnxruntime differ only in the network.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from ocr.inference.backends import OnnxBackend, TorchBackend
from ocr.inference.postprocess import postprocess_batch
from ocr.postprocess.db_postprocess import DBPostProcessor


class DetectorModule(L.LightningModule):
    def __init__(
        self, postprocessor: DBPostProcessor, net: nn.Module | None = None, onnx: OnnxBackend | None = None
    ) -> None:
        super().__init__()
        if (net is None) == (onnx is None):
            raise ValueError("DetectorModule needs exactly one of net (torch) or onnx (onnxruntime)")
        self.net = net  # a submodule, so Lightning moves it to the device
        self.onnx = onnx
        self.postprocessor = postprocessor

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        metas = batch["meta"]
        if metas:
            backend = TorchBackend(self.net) if self.net is not None else self.onnx
            assert backend is not None
            prob = backend(batch["images"])
            detections = postprocess_batch(self.postprocessor, prob, metas)
            for meta, (polygons, scores) in zip(metas, detections, strict=True):
                rows.append(
                    {"name": meta["name"], "polygons": polygons, "scores": scores, "path": meta.get("path")}
                )
        # Unreadable images: the writer gives each an empty row, named from the dataset index.
        return {"rows": rows, "skipped_index": list(batch.get("skipped_index", []))}


__all__ = ["DetectorModule"]
