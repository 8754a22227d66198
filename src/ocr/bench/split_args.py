"""The arguments of the bench commands that time work per image of a SROIE-layout split.

``ocr bench targets`` and ``ocr bench eval-work`` take the same four, with the same checks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ocr.errors import UserInputError


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
