"""Image decoding in one place: EXIF orientation applied, always RGB uint8, clear errors.

* **Pixel budget.** The header's size is checked against ``max_pixels`` before any pixel is
  decoded, so a huge image costs a header read, not gigabytes of worker memory; it is skipped
  and counted (``skipped_image_too_large``) instead of raising Pillow's ``DecompressionBombError``
  (our budget replaces Pillow's global limit). The budget is ``data.max_image_pixels``.
* **High bit depth.** 16-bit (and 32-bit integer / float) grayscale is scaled to 8 bits, not
  clipped: Pillow's ``convert("RGB")`` clips those modes at 255, which turns a 16-bit scan into a
  white page. 16-bit RGB(A) PNGs are already reduced to 8 bits by Pillow (most significant byte).
* **True reasons.** Each :class:`ImageReadError` carries the skip reason (``missing_image``,
  ``symlink_loop``, ``image_too_large``, ``unreadable_image``) and a message with the fix.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: 80 Mpx: above a 48-Mpx phone photo (and any scanned receipt), below Pillow's 89-Mpx warning.
#: An RGB image of this size is 240 MB decoded; a worker holds about three such copies at peak.
DEFAULT_MAX_PIXELS = 80_000_000
BUDGET_KEY = "data.max_image_pixels"

# Our budget is checked on every read below; Pillow's global bomb check would raise first.
Image.MAX_IMAGE_PIXELS = None

_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageReadError(ValueError):
    """An image that cannot be decoded; the message names the file and the fix."""

    def __init__(self, message: str, reason: str = "unreadable_image") -> None:
        super().__init__(message)
        self.reason = reason


def _missing(path: Path) -> ImageReadError:
    if path.is_symlink():
        target = os.readlink(path)
        return ImageReadError(
            f"{path}: symbolic link to {target}, which does not exist; fix the link or copy the image",
            "missing_image",
        )
    return ImageReadError(f"{path}: image file not found; check the data root", "missing_image")


def _os_error(path: Path, exc: OSError) -> ImageReadError:
    if exc.errno == errno.ELOOP:
        return ImageReadError(
            f"{path}: symbolic link loop (the link leads back to itself); replace it with the image file",
            "symlink_loop",
        )
    if isinstance(exc, IsADirectoryError):
        return ImageReadError(f"{path}: is a folder, not an image; move or rename it")
    if isinstance(exc, PermissionError):
        return ImageReadError(f"{path}: permission denied; make the file readable (chmod a+r)")
    return _undecodable(path, exc)


def _undecodable(path: Path, exc: Exception) -> ImageReadError:
    return ImageReadError(f"{path}: cannot decode image ({exc}); re-export or remove the file")


def to_rgb8(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 for any Pillow mode; high-bit-depth grayscale is scaled, not clipped."""
    if image.mode not in _HIGH_BIT_MODES:
        return np.asarray(image.convert("RGB"))
    values = np.asarray(image)
    if image.mode == "F":
        # Float images in [0, 1] are the common case; anything else is taken as 0..255.
        top = 1.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 255.0
        gray = np.clip(np.nan_to_num(values) * (255.0 / top), 0, 255) + 0.5
    else:
        # 16-bit samples (I;16*), and the 32-bit "I" mode Pillow uses for 16-bit TIFFs and PNGs
        # of older versions: 0..65535 -> 0..255, rounded (v * 255 / 65535; v = 257 * u gives u).
        gray = np.clip(values.astype(np.float64), 0, 65535) * (255.0 / 65535.0) + 0.5
    gray8 = gray.astype(np.uint8)
    return np.repeat(gray8[:, :, None], 3, axis=2)


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode with Pillow and apply the EXIF orientation, so pixels match how viewers (and annotators)
    saw the image: annotations of a rotated JPEG are in the rotated frame."""
    path = Path(path)
    try:
        with Image.open(path) as raw:
            width, height = raw.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(
                    f"{path}: {width}x{height} = {width * height / 1e6:.1f} Mpx is over the pixel "
                    f"budget {BUDGET_KEY}={max_pixels}; downscale the image or raise {BUDGET_KEY}",
                    "image_too_large",
                )
            array = to_rgb8(ImageOps.exif_transpose(raw))
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise _missing(path) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _undecodable(path, exc) from None
    except OSError as exc:
        raise _os_error(path, exc) from None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"{path}: empty image; re-export or remove the file")
    return np.ascontiguousarray(array)
