"""The one exception ``ocr report`` turns into ``ocr report: error: ...`` (no traceback)."""

from __future__ import annotations


class ReportError(Exception):
    """A user-facing problem: unknown or empty run, missing metric, unreadable file."""
