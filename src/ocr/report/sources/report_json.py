"""A report exported by ``ocr report --export-json`` (schema ``ocr.report/1``), read back.

A stored export is a reference run: ``ocr report --compare reference.json RUN`` compares a fresh
run with it without the original run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from ocr.report.errors import ReportError
from ocr.report.export import SCHEMA
from ocr.report.run import RunData, long_table
from ocr.report.sources.source import Source


def _detect(target: str) -> bool:
    path = Path(target)
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        with path.open() as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'"schema": "{SCHEMA}"' in head or f'"schema":"{SCHEMA}"' in head


def load(target: str) -> RunData:
    fix = "export it again with ocr report RUN --export-json PATH"
    try:
        document = json.loads(Path(target).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{target}: unreadable report JSON ({exc}); {fix}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        schema = document.get("schema") if isinstance(document, dict) else None
        raise ReportError(f"{target}: schema {schema!r}, expected {SCHEMA!r}; {fix}")
    metrics = long_table(tuple(row) for row in document.get("metrics", {}).get("rows", []))
    source = document.get("source", {})
    notes = [f"read back from a report export of {source.get('name')} {source.get('location')}"]
    extra = {k: document.get(k) for k in ("epochs", "memory_timeline") if document.get(k)}
    return RunData("report-json", target, metrics, document.get("run", {}), None, notes, extra)


SOURCE = Source("report-json", detect=_detect, describe=f"a report JSON export (schema {SCHEMA})", load=load)
