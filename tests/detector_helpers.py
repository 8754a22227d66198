"""A tiny detector checkpoint trained for a few steps on CPU, and synthetic receipt images.

Stand-ins for the shipped weights in tests: small enough to build in seconds, trained just enough
that its probability maps are not constant (so post-processing finds boxes to compare).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch

TINY_NET = {"backbone": "mobilenetv3_small_050", "inner_channels": 32}
TINY_SIZE = 128


def bar_receipt(seed: int, h: int = 160, w: int = 96) -> tuple[np.ndarray, list[np.ndarray]]:
    """A light page with dark horizontal bars (text-line stand-ins) and the bars' quads.

    Drawn with OpenCV in well under a millisecond, unlike the full synthetic renderer.
    """
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 235, np.uint8)
    image += rng.integers(0, 15, (h, w, 3), dtype=np.uint8)
    polygons = []
    y = int(rng.integers(6, 14))
    while y + 10 < h:
        x0 = int(rng.integers(4, w // 4))
        x1 = int(rng.integers(w // 2, w - 4))
        bar_h = int(rng.integers(5, 9))
        cv2.rectangle(image, (x0, y), (x1, y + bar_h), (30, 30, 30), thickness=-1)
        polygons.append(np.array([[x0, y], [x1, y], [x1, y + bar_h], [x0, y + bar_h]], np.float32))
        y += bar_h + int(rng.integers(6, 14))
    return image, polygons


def synthetic_batch(count: int, size: int = TINY_SIZE, seed: int = 0) -> dict[str, Any]:
    from ocr.data.collate import DBCollateFN
    from ocr.data.sample import TextSample
    from ocr.data.transforms import ReceiptTransform, TransformConfig, normalize_images

    config = TransformConfig(image_size=size)
    transform = ReceiptTransform(config, train=False)
    samples = []
    for i in range(count):
        image, polygons = bar_receipt(seed * 1000 + i)
        n = len(polygons)
        samples.append(transform(TextSample(image, polygons, ["x"] * n, [False] * n, f"{i}.png")))
    batch = DBCollateFN()(samples)
    batch["images"] = normalize_images(batch["images"], config.mean, config.std)
    return batch


def tiny_checkpoint(path: Path, steps: int = 8, size: int = TINY_SIZE, seed: int = 0) -> Path:
    """Train the tiny net for ``steps`` AdamW steps on synthetic receipts; save a Lightning-loadable file."""
    from ocr.models.lit_module import DBNetModule

    torch.manual_seed(seed)
    # workers=0: what the checkpoint validates and predicts with unless told otherwise (the pool is
    # tested where it is the subject; its start-up would dominate these tiny runs)
    module = DBNetModule(net=dict(TINY_NET), postprocess={"box_thresh": 0.3}, evaluator={"workers": 0})
    batch = synthetic_batch(4, size, seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(steps):
        losses = module.criterion(module.model(batch["images"], with_thresh=True), batch)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "datamodule_hyper_parameters": {"image_size": size},
        "epoch": 0,
        "global_step": steps,
        "pytorch-lightning_version": L.__version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def receipt_images(
    folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (160, 96), suffix: str = ".png"
) -> list[Path]:
    """``count`` bar receipts written as image files of varied sizes (tall, like receipts)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        h, w = size[0] + 8 * (i % 5), size[1] + 4 * (i % 3)
        image, _ = bar_receipt(seed * 100_003 + i, h, w)
        path = folder / f"r{i:05d}{suffix}"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def random_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
