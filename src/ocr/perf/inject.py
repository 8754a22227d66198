"""Injected slowdowns for the performance suite: ``OCR_PERF_INJECT_SLOWDOWN``.

``1`` (or ``true``/``yes``/``on``, or the name ``targets``) bypasses the fast DB targets and the
target cache (:func:`ocr.targets.db_targets.slowdown_injected`). A comma-separated list of stage
names doubles that stage's work instead: ``postprocess`` (each map is post-processed twice),
``cleval`` (each CLEval update evaluates the image twice) and ``forward`` (each DBNet forward runs
twice). The suite uses them to prove that each of those regressions fails it. Read per call, so
tests can toggle it.
"""

from __future__ import annotations

import os

INJECT_ENV = "OCR_PERF_INJECT_SLOWDOWN"
STAGES = ("targets", "postprocess", "cleval", "forward")
_LEGACY = ("1", "true", "yes", "on")


def injected_stages() -> frozenset[str]:
    """The stages slowed down now (``1`` and its synonyms mean ``targets``)."""
    raw = os.environ.get(INJECT_ENV, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return frozenset()
    if raw in _LEGACY:
        return frozenset({"targets"})
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def injected(stage: str) -> bool:
    return stage in injected_stages()
