"""JSON and CSV exports: the normalised metrics plus the analysis.

The JSON (``schema: ocr.report/1``) is also what a reference run is kept as: ``figures`` is flat
and stable (see :mod:`ocr.report.figures`), and the ``report-json`` source reads the file back, so
a stored export can stand in for its run in ``ocr report --compare`` (the regression suite's
committed baseline is one too). ``rule_limits`` holds the bottleneck rules' limits used.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocr.report.context import Analysis
from ocr.report.run import COLUMNS, as_int

SCHEMA = "ocr.report/1"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _metric_rows(analysis: Analysis) -> list[list[Any]]:
    rows = analysis.run.metrics.itertuples(index=False)
    return [[as_int(step), as_int(epoch), key, float(value)] for step, epoch, key, value in rows]


def document(analysis: Analysis) -> dict[str, Any]:
    run = analysis.run
    return _finite(
        {
            "schema": SCHEMA,
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {"name": run.source, "location": run.location},
            "run": run.info,
            "figures": dict(sorted(analysis.figures.items())),
            "findings": [f.to_dict() for f in analysis.findings],
            "rule_limits": analysis.rule_limits.to_dict(),
            "perf_origin": analysis.perf.origin if analysis.has_perf else None,
            "notes": run.notes,
            "epochs": [e.to_dict() for e in analysis.perf.epochs],
            "memory_timeline": analysis.perf.memory_timeline,
            "metrics": {"columns": list(COLUMNS), "rows": _metric_rows(analysis)},
        }
    )


def write_json(analysis: Analysis, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(analysis), indent=1, default=str, allow_nan=False))
    return path


def write_csv(analysis: Analysis, path: Path) -> Path:
    """One long table: ``kind`` = metric | figure | finding, then step, epoch, key, value, detail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", *COLUMNS, "detail"])
        writer.writerows(["metric", *row, ""] for row in _metric_rows(analysis))
        for key, value in sorted(analysis.figures.items()):
            writer.writerow(["figure", "", "", key, value, ""])
        for f in analysis.findings:
            writer.writerow(["finding", "", "", f.rule, f.impact, f"{f.title} | {f.recommendation}"])
    return path
