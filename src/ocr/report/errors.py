"""The one exception ``ocr report`` turns into ``ocr report: error: ...`` (no traceback, exit 2)."""

from __future__ import annotations

from ocr.errors import UserInputError


class ReportError(UserInputError):
    """A user-facing problem: unknown or empty run, missing metric, unreadable file.

    The message names the file and says how to fix it; like every user error of the ``ocr``
    commands it exits with status 2.
    """
