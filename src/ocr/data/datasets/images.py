"""A folder of images (or one image) with no labels: the input of ``ocr predict``.

Other files in the folder are counted and named (``skipped_unsupported_suffix``, see
:mod:`ocr.data.datasets.listing`); images sharing a stem (``a.jpg`` + ``a.png``) are predicted
both, and counted as ``ambiguous_stems`` because their overlays (``<stem>.png``) would collide.
"""

from __future__ import annotations

from pathlib import Path

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.datasets.listing import IMAGE_SUFFIXES, ambiguous_stems, list_folder
from ocr.data.image_io import read_image
from ocr.data.sample import TextSample
from ocr.data.sanitize import file_identity


class ImageFolderDataset(ReceiptDataset):
    def __init__(self, root: str | Path) -> None:
        super().__init__()
        root = Path(root)
        if root.is_file():
            self.paths = [root]
        elif root.is_dir():
            self.paths, self.listing_issues = list_folder(root)
        else:
            raise FileNotFoundError(f"input {root} does not exist: pass an image file or a folder of images")
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {root}")

        self.shared_stem = {p for paths in ambiguous_stems(self.paths).values() for p in paths}

    def __len__(self) -> int:
        return len(self.paths) + len(self.listing_issues)

    def describe(self, index: int) -> str:
        issue = self.listed_issue(index)
        return issue.where if issue else self.paths[index].name

    def identity(self, index: int) -> tuple[object, ...]:
        issue = self.listed_issue(index)
        if issue is not None:
            return ("image-listing", issue.reason, issue.where)
        return ("image", *file_identity(self.paths[index]))

    def load(self, index: int) -> TextSample:
        self.raise_listed(index)
        path = self.paths[index]
        image = read_image(path, self.max_image_pixels)
        meta: dict[str, object] = {"path": str(path)}
        if path in self.shared_stem:
            meta["issues"] = {"ambiguous_stems": [path.name]}
        return TextSample(image, [], [], [], path.name, meta)


__all__ = ["IMAGE_SUFFIXES", "ImageFolderDataset"]
