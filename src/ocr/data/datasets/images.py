"""A folder of images (or one image) with no labels: the input of ``ocr predict``."""

from __future__ import annotations

from pathlib import Path

from ocr.data.datasets.base import ReceiptDataset, register_dataset
from ocr.data.image_io import read_image
from ocr.data.sample import TextSample
from ocr.data.validation import file_identity

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@register_dataset("images")
class ImageFolderDataset(ReceiptDataset):
    def __init__(self, root: str | Path) -> None:
        super().__init__()
        root = Path(root)
        if root.is_file():
            self.paths = [root]
        elif root.is_dir():
            self.paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise FileNotFoundError(f"input {root} does not exist: pass an image file or a folder of images")
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")

    def __len__(self) -> int:
        return len(self.paths)

    def identity(self, index: int) -> tuple[object, ...]:
        return ("image", *file_identity(self.paths[index]))

    def load(self, index: int) -> TextSample:
        path = self.paths[index]
        return TextSample(read_image(path), [], [], [], path.name, {"path": str(path)})


__all__ = ["IMAGE_SUFFIXES", "ImageFolderDataset"]
