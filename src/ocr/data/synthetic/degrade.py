"""Camera degradations applied to the whole photo last: defocus blur and sensor noise."""

from __future__ import annotations

import cv2
import numpy as np

from ocr.data.synthetic.config import SyntheticReceiptConfig


def camera_degrade(image: np.ndarray, rng: np.random.Generator, cfg: SyntheticReceiptConfig) -> np.ndarray:
    """Blur, add luminance-dominated gaussian noise, and quantise (H, W, 3) float32 to uint8."""
    sigma = rng.uniform(*cfg.blur_sigma)
    if sigma >= 0.3:  # below that the 3-tap kernel is a near-identity that only costs time
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    noise_sigma = rng.uniform(*cfg.noise_sigma)
    if noise_sigma > 0:
        height, width = image.shape[:2]
        luma = rng.standard_normal((height, width), dtype=np.float32) * noise_sigma
        image = image + luma[..., None]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
