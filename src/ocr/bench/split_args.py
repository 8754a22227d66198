"""The arguments of the bench commands that time work per image of a SROIE-layout split, and
how they read it.

``ocr bench targets`` and ``ocr bench eval-work`` take the same four, with the same checks.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ocr.errors import SampleError, UserInputError

if TYPE_CHECKING:
    from ocr.data.sanitize import Annotations


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="SROIE-layout split folder (images/ + gt/)")
    parser.add_argument("--size", type=int, default=1024, help="network input size (longest side)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed passes over all images per arm (interleaved; median)"
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")


def checked_split(args: argparse.Namespace) -> Path:
    """``args.data`` as a path, once it is a split folder and ``--repeats`` is at least 1."""
    root = Path(args.data)
    if not (root / "images").is_dir() or not (root / "gt").is_dir():
        raise UserInputError(f"--data {root}: expected a SROIE split folder with images/ and gt/")
    if args.repeats < 1:
        raise UserInputError(f"--repeats {args.repeats}: must be at least 1")
    return root


def read_split(
    root: str | Path, skip_errors: bool = False
) -> Iterator[tuple[str, tuple[int, int], Annotations]]:
    """Each receipt of a SROIE-layout split: its name, (height, width) and the training reader's
    clean annotations. Only image headers are read (PIL opens lazily); ``skip_errors`` leaves out
    the receipts whose annotations cannot be read (e.g. no gt file) instead of raising."""
    from PIL import Image

    from ocr.data.datasets.sroie import SROIEDataset

    dataset = SROIEDataset(root)
    for index, image_path in enumerate(dataset.image_paths):
        with Image.open(image_path) as image:
            width, height = image.size
        try:
            annotations = dataset.annotations(index, (height, width))
        except SampleError:
            if skip_errors:
                continue
            raise
        yield dataset.describe(index), (height, width), annotations
