"""Source registry (timm-style): each source module registers a detector and a loader.

``detect_source(target)`` asks every source, highest priority first, whether it recognises the
argument; no if-ladder in the caller. A run directory can hold several sources at once (our
``metrics.csv`` and a ``wandb/`` folder, say): priorities pick ours, ``--source`` picks another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocr.report.errors import ReportError
from ocr.report.run import RunData


@dataclass(frozen=True)
class Source:
    name: str
    detect: Callable[[str], bool]
    load: Callable[[str], RunData]
    priority: int
    describe: str


_SOURCES: dict[str, Source] = {}


def register_source(
    name: str, *, detect: Callable[[str], bool], priority: int, describe: str
) -> Callable[[Callable[[str], RunData]], Callable[[str], RunData]]:
    """Decorator for a loader ``load(target) -> RunData``."""

    def wrap(load: Callable[[str], RunData]) -> Callable[[str], RunData]:
        _SOURCES[name] = Source(name, detect, load, priority, describe)
        return load

    return wrap


def list_sources() -> list[Source]:
    return sorted(_SOURCES.values(), key=lambda s: -s.priority)


def get_source(name: str) -> Source:
    if name not in _SOURCES:
        known = ", ".join(s.name for s in list_sources())
        raise ReportError(f"unknown source {name!r}; pass --source with one of: {known}")
    return _SOURCES[name]


def detect_source(target: str) -> Source:
    for source in list_sources():
        if source.detect(target):
            return source
    expected = "; ".join(f"{s.name}: {s.describe}" for s in list_sources())
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
    chosen = get_source(source) if source else detect_source(target)
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
