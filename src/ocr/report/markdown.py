"""Tiny Markdown helpers: tables, the "not available: <why>" marker and links to the plots."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured table; ``align`` is one character per column (l/r), default left then right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def not_available(why: str) -> str:
    return f"_not available: {why}_"


def plot_link(
    plots: Mapping[str, tuple[Path | None, str]], name: str, alt: str, base: Path, why_prefix: str = ""
) -> str:
    """The drawn plot ``name`` as an image linked relative to ``base`` (the Markdown file's folder,
    so the report can move with its plots), or why it is missing."""
    path, why = plots.get(name, (None, "plots were not drawn (--no-plots)"))
    if path is None:
        return not_available(why_prefix + why)
    return f"![{alt}]({Path(os.path.relpath(path, base)).as_posix()})"
