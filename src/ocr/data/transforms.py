"""Albumentations pipelines that carry polygons as keypoints.

Resizing keeps the aspect ratio (``LongestMaxSize``) and pads at the bottom/right only, so a point
maps back to the original image by a single division by ``scale``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

from ocr.data.sample import TextSample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentConfig:
    """Training-only augmentation. Always off for validation, test and predict."""

    enabled: bool = True
    rotate: float = 5.0
    scale: tuple[float, float] = (0.8, 1.2)
    affine_p: float = 0.7
    color_p: float = 0.5
    blur_p: float = 0.2
    crop_size: int | None = None


@dataclass
class TransformConfig:
    image_size: int = 640
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def cache_key(self) -> tuple[Any, ...]:
        """Everything that changes a deterministic (non-augmented) output."""
        return ("transform-v1", self.image_size, tuple(self.mean), tuple(self.std))


class ReceiptTransform:
    """Turns a :class:`TextSample` into the model's input plus polygons in input coordinates."""

    def __init__(self, config: TransformConfig, train: bool, seed: int | None = None) -> None:
        self.config = config
        self.augment = train and config.augment.enabled
        size = config.image_size
        ops: list[Any] = [A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_AREA)]
        aug = config.augment
        if self.augment:
            ops += [
                A.Affine(
                    scale=tuple(aug.scale),
                    rotate=(-aug.rotate, aug.rotate),
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    p=aug.affine_p,
                ),
                A.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=aug.color_p),
                A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 5))], p=aug.blur_p),
            ]
        ops.append(
            A.PadIfNeeded(
                min_height=size, min_width=size, position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0
            )
        )
        if self.augment and aug.crop_size:
            ops.append(A.RandomCrop(height=aug.crop_size, width=aug.crop_size))
        self.pipeline = A.Compose(
            ops,
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            seed=seed,
        )
        self.normalize = _Normalizer(config.mean, config.std)

    @property
    def deterministic(self) -> bool:
        """True when the same input always gives the same output: the condition for caching."""
        return not self.augment

    def set_random_seed(self, seed: int) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, sample: TextSample) -> dict[str, Any]:
        start = time.perf_counter()
        h, w = sample.image.shape[:2]
        lengths = [len(p) for p in sample.polygons]
        keypoints = (
            np.concatenate(sample.polygons).astype(np.float32) if lengths else np.zeros((0, 2), np.float32)
        )
        out = self.pipeline(image=sample.image, keypoints=keypoints)
        moved = np.asarray(out["keypoints"], dtype=np.float32).reshape(-1, 2)
        polygons = np.split(moved, np.cumsum(lengths)[:-1]) if lengths else []
        image = self.normalize(out["image"])
        scale = self.config.image_size / max(h, w)
        return {
            "image": image,
            "polygons": [np.ascontiguousarray(p) for p in polygons],
            "ignore": list(sample.ignore),
            "meta": {
                "name": sample.name,
                "orig_size": (h, w),
                "scale": scale,
                "input_size": tuple(image.shape[-2:]),
                "gt_polygons": sample.polygons,
                "gt_texts": sample.texts,
                "gt_ignore": list(sample.ignore),
                **{k: v for k, v in sample.meta.items() if k not in ("gt_polygons", "gt_texts", "gt_ignore")},
            },
            "perf": {"transform": time.perf_counter() - start},
        }


class _Normalizer:
    """uint8 HWC -> float32 CHW tensor, normalised; one fused numpy pass instead of two copies."""

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        self.scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
        self.shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        chw *= self.scale[:, None, None]
        chw -= self.shift[:, None, None]
        return torch.from_numpy(chw)

    def invert(self, tensor: torch.Tensor) -> np.ndarray:
        """Back to uint8 HWC, for overlays."""
        chw = tensor.detach().cpu().numpy().astype(np.float32)
        chw = (chw + self.shift[:, None, None]) / self.scale[:, None, None]
        return np.clip(chw.transpose(1, 2, 0), 0, 255).astype(np.uint8)
