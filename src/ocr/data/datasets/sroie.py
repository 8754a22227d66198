"""SROIE text files: ``images/NNN.jpg`` + ``gt/NNN.txt`` with ``x1,y1,...,x4,y4,transcript`` lines.

The transcript is everything after the eighth comma (it may contain commas). Lines that don't
parse are dropped and counted with their line number; a missing gt file skips the receipt (an
*empty* gt file is a valid receipt with no text). Polygon rules: :mod:`ocr.data.sanitize`.
A gt file without an image, a file with a suffix no reader decodes and two images sharing a stem
are skip entries, counted and named every epoch (:mod:`ocr.data.datasets.listing`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.datasets.listing import IMAGE_SUFFIXES, ListingIssue, ambiguous_stems, list_folder
from ocr.data.sample import TextSample
from ocr.data.sanitize import (
    Annotations,
    IssueLog,
    RawAnnotation,
    build_sample,
    file_identity,
    require_dir,
    sanitize,
)
from ocr.errors import SampleError, UserInputError

LAYOUT_HINT = "a sroie split folder holds images/NNN.jpg and gt/NNN.txt"
ROOT_FIX = f"pass a split folder ({LAYOUT_HINT})"


def parse_gt_line(line: str, where: str) -> RawAnnotation:
    """One ``x1,y1,...,x4,y4,transcript`` line; unparsable coordinates give ``points=None``."""
    parts = line.split(",", 8)
    try:
        coords = [float(v) for v in parts[:8]]
    except ValueError:
        coords = []
    text = parts[8] if len(parts) == 9 else ""
    return RawAnnotation(coords if len(coords) == 8 else None, text, where)


def read_gt_text(path: Path) -> str:
    """UTF-8 (BOM tolerated); some SROIE files are Latin-1, which always decodes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise SampleError(
                "missing_gt",
                path.name,
                f"symbolic link to {os.readlink(path)}, which does not exist; fix the link",
            ) from None
        raise SampleError(
            "missing_gt",
            path.name,
            "no gt file for this image; add it (empty for a receipt with no text) or remove the image",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SampleError(
                "symlink_loop",
                path.name,
                "symbolic link loop (the link leads back to itself); replace it with the file",
            ) from None
        raise SampleError("unreadable_gt", path.name, f"cannot read gt file ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_gt(path: Path) -> list[RawAnnotation]:
    """Every non-blank line of a gt file, located as ``NNN.txt:LINE``."""
    return [
        parse_gt_line(line, f"{path.name}:{number}")
        for number, line in enumerate(read_gt_text(path).splitlines(), start=1)
        if line.strip()
    ]


class SROIEDataset(ReceiptDataset):
    def __init__(self, root: str | Path, image_dir: str = "images", gt_dir: str = "gt") -> None:
        super().__init__()
        self.root = require_dir(Path(root).expanduser(), "data root", ROOT_FIX)
        images = require_dir(self.root / image_dir, "image folder", ROOT_FIX)
        self.gt_dir = require_dir(self.root / gt_dir, "gt folder", ROOT_FIX)
        self.image_paths, unsupported = list_folder(images)
        if not self.image_paths:
            raise UserInputError(
                f"empty dataset: no images ({', '.join(IMAGE_SUFFIXES)}) in {images}; {ROOT_FIX}"
            )
        self.shared_stem = ambiguous_stems(self.image_paths)
        stems = {p.stem for p in images.iterdir()}
        orphans = [
            ListingIssue(
                "orphan_gt",
                gt.name,
                f"no image {gt.stem}.* in {images} for this gt file; add the image or remove the gt file",
            )
            for gt in sorted(self.gt_dir.glob("*.txt"))
            if gt.stem not in stems
        ]
        self.listing_issues = unsupported + orphans

    def __len__(self) -> int:
        return len(self.image_paths) + len(self.listing_issues)

    def gt_path(self, index: int) -> Path:
        return self.gt_dir / f"{self.image_paths[index].stem}.txt"

    def describe(self, index: int) -> str:
        issue = self.listed_issue(index)
        return issue.where if issue else self.image_paths[index].name

    def identity(self, index: int) -> tuple[object, ...]:
        issue = self.listed_issue(index)
        if issue is not None:
            return ("sroie-listing", issue.reason, str(self.root / issue.where))
        return ("sroie", file_identity(self.image_paths[index]), file_identity(self.gt_path(index)))

    def annotations(
        self, index: int, image_hw: tuple[int, int], issues: IssueLog | None = None
    ) -> Annotations:
        """Clean annotations for an image of ``image_hw`` without decoding it."""
        gt = self.gt_path(index)
        return sanitize(parse_gt(gt), image_hw, issues or IssueLog(), gt.name)

    def load(self, index: int) -> TextSample:
        self.raise_listed(index)
        image = self.image_paths[index]
        if image.stem in self.shared_stem:
            others = ", ".join(p.name for p in self.shared_stem[image.stem] if p != image)
            raise SampleError(
                "ambiguous_stem",
                image.name,
                f"{others} has the same stem, so which image {image.stem}.txt describes is unknown; "
                "rename or remove one of them",
            )
        gt = self.gt_path(index)
        raw = parse_gt(gt)  # before decoding: a missing gt skips the sample cheaply
        meta = {"gt_path": str(gt)}
        return build_sample(image, raw, IssueLog(), gt.name, meta, max_pixels=self.max_image_pixels)


__all__ = ["SROIEDataset", "parse_gt", "parse_gt_line"]
