"""Tiny Markdown helpers: tables and the "not available: <why>" marker."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured table; ``align`` is one character per column (l/r), default left then right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def not_available(why: str) -> str:
    return f"_not available: {why}_"


def image(alt: str, relpath: str) -> str:
    return f"![{alt}]({relpath})"
