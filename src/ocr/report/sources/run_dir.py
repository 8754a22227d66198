"""Our own run directory: ``perf_summary.json`` (the profiler's document) + ``metrics.csv``.

``metrics.csv`` is Lightning's CSVLogger output: one wide row per ``log_metrics`` call with
``epoch`` and ``step`` columns; it is melted to the long table. ``config.yaml`` (Hydra) gives the
key configuration when there is no summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ocr.perf.schema import SCHEMA, SUMMARY_FILE
from ocr.report.config import key_config
from ocr.report.errors import ReportError
from ocr.report.run import RunData, long_table
from ocr.report.sources.source import Source, read_yaml_mapping

METRICS = "metrics.csv"


def _detect(target: str) -> bool:
    path = Path(target)
    return path.is_dir() and ((path / SUMMARY_FILE).is_file() or (path / METRICS).is_file())


def read_metrics_csv(path: Path) -> pd.DataFrame:
    try:
        wide = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return long_table([])
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        why = "binary, not text" if isinstance(exc, UnicodeDecodeError) else str(exc).strip().splitlines()[0]
        raise ReportError(
            f"{path}: unreadable metrics CSV ({why}); restore it from the run, or move it away to "
            f"report from {SUMMARY_FILE} alone"
        ) from None
    if "step" not in wide.columns:
        raise ReportError(
            f"{path}: not a Lightning metrics.csv (no 'step' column); pass the run directory ocr train "
            f"wrote, or move the file away to report from {SUMMARY_FILE} alone"
        )
    epochs = wide["epoch"] if "epoch" in wide.columns else pd.Series([None] * len(wide))
    value_columns = [c for c in wide.columns if c not in ("step", "epoch")]
    rows = [
        (step, epoch, key, value)
        for key in value_columns
        for step, epoch, value in zip(wide["step"], epochs, wide[key], strict=True)
        if pd.notna(value)
    ]
    return long_table(rows)


def read_summary(path: Path) -> dict[str, Any]:
    fix = f"restore it from the run, or move it away to report from {METRICS} alone"
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportError(f"{path}: unreadable perf summary (binary, not JSON text); {fix}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: unreadable perf summary ({exc}); {fix}") from None
    if not isinstance(document, dict):
        raise ReportError(f"{path}: not a perf summary (a JSON {type(document).__name__}); {fix}")
    if document.get("schema") != SCHEMA:
        raise ReportError(
            f"{path}: schema {document.get('schema')!r}, expected {SCHEMA!r}; write it with this version "
            f"of ocr (ocr train), or {fix}"
        )
    return document


def load(target: str) -> RunData:
    root = Path(target)
    notes: list[str] = []
    summary = read_summary(root / SUMMARY_FILE) if (root / SUMMARY_FILE).is_file() else None
    if summary is None:
        notes.append(f"{SUMMARY_FILE} not found: figures come from the perf/* keys in {METRICS}")
    metrics = read_metrics_csv(root / METRICS) if (root / METRICS).is_file() else long_table([])
    if not (root / METRICS).is_file():
        notes.append(f"{METRICS} not found: no accuracy or loss curves")
    hydra_cfg, unreadable = read_yaml_mapping(root / "config.yaml")
    if unreadable:
        # Optional: the summary carries the key settings; the report says what was not read.
        notes.append(f"config.yaml unreadable ({unreadable}): settings from {SUMMARY_FILE} only")
    run_info = dict(summary["run"]) if summary else {}
    info: dict[str, Any] = {
        "name": root.resolve().name,
        "created": run_info.get("created"),
        "hardware": run_info.get("hardware", {}),
        "versions": run_info.get("versions", {}),
        # the summary's own key config first; what it lacks (val_batch_size) from its hparams or config.yaml
        "config": {**key_config(run_info.get("hparams"), hydra_cfg), **(run_info.get("config") or {})},
        "config_hash": run_info.get("config_hash"),
    }
    return RunData("run-dir", str(root), metrics, {k: v for k, v in info.items() if v}, summary, notes)


SOURCE = Source(
    "run-dir",
    detect=_detect,
    describe=f"an `ocr train` run directory ({SUMMARY_FILE} and/or {METRICS})",
    load=load,
)
