"""The ``perf_summary.json`` document: assembled, written atomically, read back on resume."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import cast

from ocr.perf.aggregate import cache_stats
from ocr.perf.schema import SCHEMA, EpochEntry, PerfSummary, RunBlock, TimelinePoint


def summary_document(run: RunBlock, epochs: list[EpochEntry], timeline: list[TimelinePoint]) -> PerfSummary:
    """The ``perf_summary.json`` document; its run-wide cache block adds every epoch's counters."""
    totals: dict[str, int] = defaultdict(int)
    for e in epochs:
        for client, stats in e["cache"].items():
            for name, value in stats.items():
                if name != "hit_rate":
                    totals[f"{client}_cache_{name}"] += int(value or 0)
    return {
        "schema": SCHEMA,
        "run": run,
        "epochs": epochs,
        "cache": cache_stats(totals),
        "memory_timeline": timeline,
    }


def write_summary(path: Path, document: PerfSummary) -> Path:
    """Replace the file atomically: a run killed mid-write keeps the previous complete one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=float))
    os.replace(tmp, path)
    return path


def epochs_before(path: Path, epoch: int) -> list[EpochEntry] | None:
    """The entries of a summary written earlier, up to ``epoch`` (``None``: no readable summary)."""
    try:
        previous = json.loads(path.read_text())["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # entries as written then: a resumed run keeps them as they are
    return [cast(EpochEntry, e) for e in previous if isinstance(e, dict) and int(e.get("epoch", -1)) < epoch]
