"""Image decoding in one place: EXIF orientation applied, always RGB uint8, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image that cannot be decoded; the message names the file and the fix."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode with Pillow and apply the EXIF orientation, so pixels match how viewers (and annotators)
    saw the image: annotations of a rotated JPEG are in the rotated frame."""
    path = Path(path)
    try:
        with Image.open(path) as raw:
            upright = ImageOps.exif_transpose(raw)
            array = np.asarray(upright.convert("RGB"))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file not found; check the data root") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc}); re-export or remove the file") from None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image; re-export or remove the file")
    return np.ascontiguousarray(array)
