"""The LightningModule ``ocr predict`` runs: one backend, the shared post-processing, rows out.

Either backend sits behind the same data module (decode, letterbox, normalisation on the device
hook) and the same post-processing, so torch and onnxruntime differ only in the network.

Post-processing runs in-process (:meth:`DBPostProcessor.batch`, the reference) or, given an
:class:`~ocr.evaluation.EvaluatorPool`, in its evaluator processes (predict mode) while the next
batches go through the network. Each step returns the rows that are complete, in input order
(:class:`~ocr.inference.rows.OrderedRows`); :meth:`DetectorModule.remaining_rows` gives the rest
once the last batch has been submitted.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from ocr.data.sample import Batch
from ocr.evaluation.handoff import encode_maps
from ocr.evaluation.pool import EvaluatorPool
from ocr.inference.backends import OnnxBackend, TorchBackend
from ocr.inference.rows import OrderedRows, Row
from ocr.postprocess.db_postprocess import DBPostProcessor


class DetectorModule(L.LightningModule):
    """``pool``: evaluator processes for the post-processing (None: in-process). ``handoff``: the
    map encoding sent to them; both backends return host float32 maps, so ``float32`` (a plain,
    exact copy) is the default."""

    def __init__(
        self,
        postprocessor: DBPostProcessor,
        net: nn.Module | None = None,
        onnx: OnnxBackend | None = None,
        pool: EvaluatorPool | None = None,
        handoff: str = "float32",
    ) -> None:
        super().__init__()
        if (net is None) == (onnx is None):
            raise ValueError("DetectorModule needs exactly one of net (torch) or onnx (onnxruntime)")
        self.net = net  # a submodule, so Lightning moves it to the device
        self.onnx = onnx
        self.postprocessor = postprocessor
        self.pool = pool
        self.handoff = handoff
        self.rows = OrderedRows()

    def on_predict_start(self) -> None:
        self.rows = OrderedRows()
        if self.pool is not None:
            self.pool.begin("predict", self.postprocessor, None, self.handoff)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        metas = batch["meta"]
        # Unreadable images: an empty row in their place, named by the writer from the index.
        rows = [Row(int(index), unreadable=True) for index in batch["skipped_index"]]
        if metas:
            backend = TorchBackend(self.net) if self.net is not None else self.onnx
            assert backend is not None
            prob = backend(batch["images"])
            indices = batch["index"]
            readable = [
                Row(int(index), name=meta["name"], path=meta.get("path"))
                for index, meta in zip(indices, metas, strict=True)
            ]
            if self.pool is None:
                detections = self.postprocessor.batch(prob, metas)
                for row, (polygons, scores) in zip(readable, detections, strict=True):
                    row.finish(polygons, scores)
            else:
                encoded = encode_maps(torch.from_numpy(prob), self.handoff, self.postprocessor.thresh)
                for row, seq in zip(readable, self.pool.submit(encoded, metas), strict=True):
                    self.rows.waiting[seq] = row
            rows += readable
        self.rows.add_batch(rows)
        if self.pool is not None:
            self.rows.finish(self.pool.ready())
        return {"rows": self.rows.release()}

    def remaining_rows(self) -> list[dict[str, Any]]:
        """After the last batch: wait for the pool's images in flight; every row left, in order."""
        if self.pool is not None and self.pool.running:
            self.rows.finish(self.pool.results_in_order())
        rows = self.rows.release()
        if len(self.rows):
            raise RuntimeError(f"{len(self.rows)} predict rows were never completed")
        return rows


__all__ = ["DetectorModule"]
