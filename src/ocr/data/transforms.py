"""Albumentations pipelines that carry polygons as keypoints.

Resizing keeps the aspect ratio (``LongestMaxSize``) and pads at the bottom/right only, so a point
maps back to the original image by a single division by ``scale``.

Images leave the transform as **uint8** CHW (after resize, augmentation and padding) and are
normalised once, on the device, by :func:`normalize_images` in
``ReceiptDataModule.on_after_batch_transfer``. Why: bytes. A 1024² image is 3 MiB as uint8 and
12 MiB as float32, so a batch of 4 moves 12 MiB instead of 48 MiB through every copy (the worker
writes it, the DataLoader passes it through shared memory, the trainer copies it to the device),
and the worker spends no float pass on it. There is one normalisation path: workers never
normalise, and a config that sets ``data.normalize_on_device`` is an error naming why
(``ocr.data.datamodule``).

The formula (:func:`normalization_constants`, ``x * scale - shift`` as two correctly rounded
float32 operations, never fused) gives the same bits on every device
(``tests/unit/test_transforms_collate.py``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

from ocr.data.sample import Sample, TextSample
from ocr.schema import AugmentKnobs, check_fields

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentConfig(AugmentKnobs):
    """Training-only augmentation (always off for validation, test and predict): the fields, their
    defaults and ranges are the config's (:class:`ocr.schema.AugmentKnobs`, ``data.augment.*``),
    checked here again for a config built in Python, where no Hydra composition did."""

    def __post_init__(self) -> None:
        self.scale = list(self.scale)  # a YAML list arrives as a ListConfig, a checkpoint's as a tuple
        check_fields(self, "data.augment.")


@dataclass
class TransformConfig:
    image_size: int = 640
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # None: pad to the image_size square. N: pad bottom/right to the next multiple of N only, so a
    # tall receipt is not padded to a square (about half the pixels for SROIE; see docs/model_card.md).
    pad_multiple: int | None = None

    def cache_key(self) -> tuple[Any, ...]:
        """Everything that changes a deterministic (non-augmented) output (uint8: mean and std are
        applied on the device, after the cache, so they are not part of it)."""
        key: tuple[Any, ...] = ("transform-v2", self.image_size)
        return (*key, ("pad", self.pad_multiple)) if self.pad_multiple else key


def normalization_constants(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(scale, shift)`` per channel: normalised = ``x * scale - shift``.

    ``scale = 1 / (255 * std)`` and ``shift = mean / std``, each rounded to float32 once.
    """
    std32 = np.asarray(std, np.float32)
    scale = (1.0 / (255.0 * std32)).astype(np.float32)
    shift = (np.asarray(mean, np.float32) / std32).astype(np.float32)
    return scale, shift


@functools.lru_cache(maxsize=16)
def _constants_on(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, 1, 1) constants on ``device``, made once: no host-to-device copy per batch."""
    scale, shift = normalization_constants(mean, std)
    return (
        torch.from_numpy(scale).view(-1, 1, 1).to(device),
        torch.from_numpy(shift).view(-1, 1, 1).to(device),
    )


def normalize_images(
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """uint8 ``(..., C, H, W)`` -> float32 ``x * scale - shift`` per channel, on ``images``' device.

    The one normaliser: the data module's device hook and anything that builds batches by hand
    (benchmarks, export) call it. The multiply and the
    subtraction are separate in-place float32 operations, each correctly rounded on every device
    (no fused multiply-add), so the result is the same bits on CPU and GPU.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize_images expects uint8 images, got {images.dtype}")
    if images.dim() < 3 or images.shape[-3] != len(mean):
        raise ValueError(f"expected (..., {len(mean)}, H, W) images, got {tuple(images.shape)}")
    scale, shift = _constants_on(tuple(map(float, mean)), tuple(map(float, std)), images.device)
    if out is None:
        out = images.to(torch.float32, memory_format=torch.contiguous_format)
    elif out.dtype != torch.float32 or out.shape != images.shape:
        raise ValueError(f"out must be float32 {tuple(images.shape)}, got {out.dtype} {tuple(out.shape)}")
    else:
        out.copy_(images)  # uint8 -> float32 is exact
    out.mul_(scale)
    out.sub_(shift)
    return out


class ReceiptTransform:
    """Turns a :class:`TextSample` into the model's input plus polygons in input coordinates."""

    def __init__(self, config: TransformConfig, train: bool, seed: int | None = None) -> None:
        self.config = config
        self.augment = train and config.augment.enabled
        size = config.image_size
        points = A.KeypointParams(format="xy", remove_invisible=False)
        # The first step is the same every epoch (no randomness): its own pipeline, so that the
        # decoded-image cache (ocr.data.decoded_cache) can store its output and skip it.
        self.resize_pipeline = A.Compose(
            [A.LongestMaxSize(max_size=size, interpolation=cv2.INTER_AREA)], keypoint_params=points
        )
        ops: list[Any] = []
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
        crop = aug.crop_size if self.augment else None
        pad_to: dict[str, Any]
        if config.pad_multiple and not self.augment:
            m = int(config.pad_multiple)
            pad_to = {"min_height": None, "min_width": None, "pad_height_divisor": m, "pad_width_divisor": m}
        else:
            # crop_from=content pads only up to the crop, so crops are cut from the receipt itself
            side = crop if crop and aug.crop_from == "content" else size
            pad_to = {"min_height": side, "min_width": side}
        ops.append(A.PadIfNeeded(**pad_to, position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0))
        if crop:
            ops.append(A.RandomCrop(height=crop, width=crop))
        self.pipeline = A.Compose(ops, keypoint_params=points, seed=seed)

    @property
    def deterministic(self) -> bool:
        """True when the same input always gives the same output: the condition for caching."""
        return not self.augment

    def set_random_seed(self, seed: int) -> None:
        self.pipeline.set_random_seed(seed)  # the resize draws nothing that changes its output

    def resize(self, image: np.ndarray, polygons: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The deterministic first step: the uint8 image scaled to ``image_size`` and its polygons."""
        out = self.resize_pipeline(image=image, keypoints=_points(polygons))
        return out["image"], _split(out["keypoints"], polygons)

    def __call__(
        self,
        sample: TextSample,
        resized: tuple[np.ndarray, list[np.ndarray], tuple[int, int]] | None = None,
    ) -> Sample:
        """``resized``: ``(image, polygons, original (h, w))`` from :meth:`resize`, done earlier."""
        start = time.perf_counter()
        if resized is None:
            h, w = sample.image.shape[:2]
            small, small_polygons = self.resize(sample.image, sample.polygons)
        else:
            small, small_polygons, (h, w) = resized
        out = self.pipeline(image=small, keypoints=_points(small_polygons))
        polygons = _split(out["keypoints"], small_polygons)
        image = _to_chw(out["image"])
        scale = self.config.image_size / max(h, w)
        return {
            "image": image,
            "polygons": polygons,
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


def _points(polygons: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(polygons).astype(np.float32) if polygons else np.zeros((0, 2), np.float32)


def _split(keypoints: Any, like: list[np.ndarray]) -> list[np.ndarray]:
    """Keypoints back into polygons of the same lengths as ``like``."""
    if not like:
        return []
    moved = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
    return [np.ascontiguousarray(p) for p in np.split(moved, np.cumsum([len(p) for p in like])[:-1])]


def _to_chw(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> contiguous uint8 CHW tensor (normalised later, on the device)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
