"""The two kinds of bad input, kept apart because they are handled in opposite ways.

* :class:`UserInputError`: the whole input is unusable (missing data root, empty split, wrong
  option). Nothing can be trained or evaluated, so the run stops; the ``ocr`` CLI prints
  ``ocr: error: <message>`` without a traceback and exits with status 2. The message names the
  file or folder and says how to fix it.
* :class:`SampleError`: one receipt is unusable (undecodable image, missing or unreadable gt file).
  ``ReceiptDataset.__getitem__`` turns it into a skip marker; the collate function drops the marker
  and counts ``skipped_<reason>``, and the epoch goes on.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """A user mistake that makes the whole input unusable; the message names the path and the fix."""


class SampleError(Exception):
    """One sample cannot be used. ``reason`` becomes the counter ``skipped_<reason>``."""

    def __init__(self, reason: str, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.reason = reason
        self.where = where


__all__ = ["SampleError", "UserInputError"]
