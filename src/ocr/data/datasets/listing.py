"""What a reader's folder listing leaves out, made visible: every such file becomes a skip entry.

A file the reader cannot pair is never dropped silently. It gets an index of its own after the
real samples, and loading that index raises :class:`SampleError` with the true reason, so the
usual machinery counts it (``skipped_<reason>``) and names it in the data-quality warning of
every epoch, exactly like an unreadable image:

===========================  ===================================================================
``skipped_unsupported_suffix``  a file in the image folder whose suffix no reader decodes
``skipped_orphan_gt``           an annotation with no image (SROIE ``gt/x.txt`` without ``x.*``)
``skipped_missing_gt``          an image the JSON layout does not list (SROIE: no ``gt/x.txt``)
``skipped_ambiguous_stem``      SROIE ``a.jpg`` + ``a.png``: which image ``a.txt`` describes is
                                unknown, so neither is trained on
===========================  ===================================================================
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ocr.errors import SampleError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ListingIssue:
    """A file the listing could not use; ``reason`` becomes the counter ``skipped_<reason>``."""

    reason: str
    where: str
    message: str

    def error(self) -> SampleError:
        return SampleError(self.reason, self.where, self.message)


def list_folder(folder: Path) -> tuple[list[Path], list[ListingIssue]]:
    """Images with a supported suffix (sorted), and an issue for every other visible file."""
    images: list[Path] = []
    issues: list[ListingIssue] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # .DS_Store, editors' swap files: not meant as data
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        elif path.is_file() or path.is_symlink():
            issues.append(
                ListingIssue(
                    "unsupported_suffix",
                    path.name,
                    f"{folder}: suffix {path.suffix or '(none)'!r} is not read "
                    f"({', '.join(IMAGE_SUFFIXES)}); convert the image or move the file out",
                )
            )
    return images, issues


def ambiguous_stems(images: list[Path]) -> dict[str, list[Path]]:
    """Stems shared by two or more images (``a.jpg`` + ``a.png``)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in images:
        groups[path.stem].append(path)
    return {stem: paths for stem, paths in groups.items() if len(paths) > 1}


__all__ = ["IMAGE_SUFFIXES", "ListingIssue", "ambiguous_stems", "list_folder"]
