"""Run sources: each reads a run into one long table (:class:`RunData`).

``detect_source(target)`` asks every source, in the order of :data:`SOURCES`, whether it recognises
the argument. A run directory can hold several sources at once (our ``metrics.csv`` and a ``wandb/``
folder, say): the order picks ours, ``--source`` picks another. A new source is one module with a
``SOURCE`` and one entry here.
"""

from __future__ import annotations

from pathlib import Path

from ocr.report.errors import ReportError
from ocr.report.run import RunData
from ocr.report.sources import report_json, run_dir, tensorboard, wandb_offline, wandb_online
from ocr.report.sources.source import Source

SOURCES: tuple[Source, ...] = (
    run_dir.SOURCE,
    report_json.SOURCE,
    wandb_offline.SOURCE,
    tensorboard.SOURCE,
    wandb_online.SOURCE,
)
_BY_NAME = {source.name: source for source in SOURCES}


def detect_source(target: str) -> Source:
    for source in SOURCES:
        if source.detect(target):
            return source
    expected = "; ".join(f"{s.name}: {s.describe}" for s in SOURCES)
    raise ReportError(
        f"{target}: no source recognises this run (expected one of: {expected}); pass one of those, "
        "or --source NAME (see --list-sources)"
    )


def load_run(target: str, source: str | None = None) -> RunData:
    """Read ``target`` with the named source, or the first one that recognises it."""
    if "://" not in target and not Path(target).exists():
        raise ReportError(
            f"{target}: no such file or directory; pass a run directory (outputs/train/<run>), a W&B run "
            "or a TensorBoard log directory"
        )
    if source and source not in _BY_NAME:
        known = ", ".join(s.name for s in SOURCES)
        raise ReportError(f"unknown source {source!r}; pass --source with one of: {known}")
    chosen = _BY_NAME[source] if source else detect_source(target)
    if source and not chosen.detect(target):
        raise ReportError(
            f"{target}: not a {chosen.name} run ({chosen.describe}); drop --source to detect the source"
        )
    run = chosen.load(target)
    if run.metrics.empty and not run.summary:
        raise ReportError(
            f"{target}: the run is empty (no metrics logged, no perf_summary.json); pass a run that "
            "finished at least one epoch"
        )
    return run


__all__ = ["SOURCES", "Source", "detect_source", "load_run"]
