"""The competition JSON layout: ``annotations.json`` beside ``images/``.

``{"images": {"NNN.jpg": {"words": {"0001": {"points": [[x, y], ...], "transcription": "..."}},
"img_w": W, "img_h": H}}}``. Polygons may have any number (>= 3) of points. ``img_w``/``img_h``,
when present, must match the decoded image (after EXIF orientation) or the receipt is skipped:
its polygons would be in another frame. Polygon rules: :mod:`ocr.data.sanitize`.
An image in ``images/`` that the file does not list, and a file there with a suffix no reader
decodes, are skip entries, counted and named every epoch (:mod:`ocr.data.datasets.listing`); a
listed image that is missing is skipped as ``missing_image``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.datasets.listing import ListingIssue, list_folder
from ocr.data.sample import TextSample
from ocr.data.sanitize import (
    Annotations,
    IssueLog,
    RawAnnotation,
    build_sample,
    file_identity,
    require_dir,
    require_file,
    sanitize,
)
from ocr.errors import SampleError, UserInputError

LAYOUT_HINT = (
    'a json split folder holds annotations.json ({"images": {"NNN.jpg": {"words": ...}}}) and images/'
)
ROOT_FIX = f"pass a split folder ({LAYOUT_HINT})"


def load_layout(path: Path) -> dict[str, Any]:
    """The ``images`` mapping of an annotation file, or a :class:`UserInputError` saying what's wrong."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix or re-export the file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read {path} ({exc}); check the file and its permissions") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        raise UserInputError(f'{path} has no "images" object at the top level; {LAYOUT_HINT}')
    return images


def entry_annotations(name: str, entry: object, source: str) -> list[RawAnnotation]:
    """An image's words as raw annotations (located as ``NNN.jpg#0001``); bad structure skips it."""
    words = entry.get("words") if isinstance(entry, dict) else None
    if not isinstance(words, dict):
        raise SampleError(
            "bad_gt", name, f'{source}: entry has no "words" object; use {{}} for a receipt with no text'
        )
    raw = []
    for key, word in words.items():
        points = word.get("points") if isinstance(word, dict) else None
        text = word.get("transcription", "") if isinstance(word, dict) else ""
        raw.append(RawAnnotation(points, text if isinstance(text, str) else str(text), f"{name}#{key}"))
    return raw


def entry_size(entry: object) -> tuple[int, int] | None:
    """(H, W) when the entry states both ``img_h`` and ``img_w`` as numbers."""
    if not isinstance(entry, dict):
        return None
    h, w = entry.get("img_h"), entry.get("img_w")
    if isinstance(h, int | float) and isinstance(w, int | float):
        return (int(h), int(w))
    return None


class JsonLayoutDataset(ReceiptDataset):
    def __init__(
        self, root: str | Path, annotation_file: str = "annotations.json", image_dir: str = "images"
    ) -> None:
        super().__init__()
        self.root = require_dir(Path(root).expanduser(), "data root", ROOT_FIX)
        self.annotation_path = require_file(self.root / annotation_file, "annotation file", ROOT_FIX)
        self.image_dir = require_dir(self.root / image_dir, "image folder", ROOT_FIX)
        self.entries = load_layout(self.annotation_path)
        self.names = sorted(self.entries)
        if not self.names:
            raise UserInputError(f"empty dataset: {self.annotation_path} lists no images; {ROOT_FIX}")
        if not any((self.image_dir / name).is_file() for name in self.names):
            raise UserInputError(
                f"none of the {len(self.names)} images listed in {self.annotation_path} exists in "
                f"{self.image_dir} (first: {self.names[0]}); {ROOT_FIX}"
            )
        images, unsupported = list_folder(self.image_dir)
        listed = set(self.names)
        unlisted = [
            ListingIssue(
                "missing_gt",
                path.name,
                f"{self.annotation_path.name} has no entry for this image; add one "
                '({"words": {}} for a receipt with no text) or remove the image',
            )
            for path in images
            if path.name not in listed
        ]
        self.listing_issues = unlisted + [u for u in unsupported if u.where not in listed]

    def __len__(self) -> int:
        return len(self.names) + len(self.listing_issues)

    def describe(self, index: int) -> str:
        issue = self.listed_issue(index)
        return issue.where if issue else self.names[index]

    def identity(self, index: int) -> tuple[object, ...]:
        issue = self.listed_issue(index)
        if issue is not None:
            return ("json-listing", issue.reason, str(self.image_dir / issue.where))
        name = self.names[index]
        # The entry's own annotations, not the whole file's hash: cheap per sample, and what the
        # sample is made of (entries are read once, when the reader is built).
        entry = json.dumps(self.entries[name], sort_keys=True, default=str)
        return ("json", file_identity(self.image_dir / name), name, entry)

    def annotations(
        self, index: int, image_hw: tuple[int, int], issues: IssueLog | None = None
    ) -> Annotations:
        """Clean annotations for an image of ``image_hw`` without decoding it."""
        name = self.names[index]
        raw = entry_annotations(name, self.entries[name], self.annotation_path.name)
        return sanitize(raw, image_hw, issues or IssueLog(), name)

    def load(self, index: int) -> TextSample:
        self.raise_listed(index)
        name = self.names[index]
        entry = self.entries[name]
        raw = entry_annotations(name, entry, self.annotation_path.name)
        source = f"{self.annotation_path.name}[{name}]"
        meta = {"gt_path": str(self.annotation_path)}
        return build_sample(
            self.image_dir / name, raw, IssueLog(), source, meta, entry_size(entry), self.max_image_pixels
        )


__all__ = ["JsonLayoutDataset", "entry_annotations", "load_layout"]
