"""Fonts shipped inside a pip package (matplotlib's DejaVu), so rendering never needs a download."""

from __future__ import annotations

import functools
import os
from enum import StrEnum

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class FontFace(StrEnum):
    """The DejaVu faces receipts use: a mono printer font plus sans faces for the store header."""

    MONO = "DejaVuSansMono.ttf"
    MONO_BOLD = "DejaVuSansMono-Bold.ttf"
    SANS = "DejaVuSans.ttf"
    SANS_BOLD = "DejaVuSans-Bold.ttf"
    SERIF_BOLD = "DejaVuSerif-Bold.ttf"


@functools.cache
def _font_dir() -> str | None:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a hard dependency of the package
        return None
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    return path if os.path.isdir(path) else None


def font_path(face: FontFace) -> str | None:
    """Absolute path of a bundled face, or None when matplotlib's font folder is missing."""
    folder = _font_dir()
    if folder is None:
        return None
    path = os.path.join(folder, face.value)
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=256)
def load_font(path: str | None, size: int) -> Font:
    """Load (once per process) the TTF at ``path`` in ``size`` px, or Pillow's default font."""
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def get_font(face: FontFace, size: int) -> Font:
    """The cached font for one face and pixel size."""
    return load_font(font_path(face), int(size))
