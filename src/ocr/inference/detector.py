"""One image in, polygons out: the predict pipeline without Lightning or a DataLoader.

The same pieces as ``ocr predict`` (``ReceiptTransform`` letterbox, ``normalize_images``, a backend,
:class:`~ocr.postprocess.DBPostProcessor`), for benchmarks and for callers who embed the detector.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np
import torch

from ocr.data.sample import TextSample, as_tensor
from ocr.data.transforms import ReceiptTransform, TransformConfig, normalize_images
from ocr.postprocess.db_postprocess import DBPostProcessor, Detections


class Backend(Protocol):
    def __call__(self, images: torch.Tensor) -> np.ndarray: ...


class Detector:
    """``detector(rgb_uint8_image) -> (polygons, scores)``; ``last_times`` holds the stage seconds."""

    def __init__(self, backend: Backend, config: TransformConfig, postprocessor: DBPostProcessor) -> None:
        self.backend = backend
        self.config = config
        self.transform = ReceiptTransform(config, train=False)
        self.postprocessor = postprocessor
        self.last_times: dict[str, float] = {}

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, dict[str, object]]:
        out = self.transform(TextSample(image, [], [], [], "image"))
        batch = normalize_images(as_tensor(out["image"])[None], self.config.mean, self.config.std)
        return batch, out["meta"]

    def probability(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
        batch, meta = self.prepare(image)
        return self.backend(batch), meta

    def __call__(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        batch, meta = self.prepare(image)
        t1 = time.perf_counter()
        prob = self.backend(batch)
        t2 = time.perf_counter()
        detections = self.postprocessor(prob[0], meta)
        t3 = time.perf_counter()
        self.last_times = {"preprocess": t1 - t0, "forward": t2 - t1, "postprocess": t3 - t2}
        return detections


__all__ = ["Detector"]
