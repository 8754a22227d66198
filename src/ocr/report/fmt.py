"""Number formatting for the Markdown report (one place, so tables read the same everywhere)."""

from __future__ import annotations

import math
from typing import TypeGuard

NA = "n/a"
PHASE_LABEL = {"train": "training", "validate": "validation", "test": "test", "predict": "prediction"}


def _ok(x: float | None) -> TypeGuard[float]:
    """A number to show; None, NaN and infinity show as n/a."""
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def ms(x: float | None) -> str:
    """Seconds shown as milliseconds, with precision that suits the magnitude."""
    if not _ok(x):
        return NA
    v = x * 1000.0
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 1 else f"{v:.3f} ms"


def sec(x: float | None) -> str:
    if not _ok(x):
        return NA
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s" if x >= 0.1 else ms(x)


def pct(x: float | None) -> str:
    if not _ok(x):
        return NA
    return f"{100 * x:.1f}%"


def mb(x: float | None) -> str:
    if not _ok(x):
        return NA
    return f"{x / 1024:.2f} GB" if x >= 10240 else f"{x:.0f} MB"


def num(x: float | None, digits: int = 3) -> str:
    if not _ok(x):
        return NA
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}" if abs(x) < 1e-2 or abs(x) >= 1e4 else f"{x:.{digits}f}"


def sentence(text: str) -> str:
    """A finding's advice as a sentence: capitalised, ending with a full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def value(key: str, x: float | None) -> str:
    """Format a figure by its key's unit suffix."""
    if key.endswith("ratio"):
        return f"{x:.2f}x" if _ok(x) else NA
    if key.endswith("_s") and not key.endswith("samples_per_s"):
        return sec(x) if key.endswith(("wall_s", "time_saved_s")) else ms(x)
    if key.endswith(("share", "hit_rate")):
        return pct(x)
    if key.endswith("_mb"):
        return mb(x)
    if key.endswith("samples_per_s"):
        return f"{x:.2f}/s" if _ok(x) else NA
    return num(x)
