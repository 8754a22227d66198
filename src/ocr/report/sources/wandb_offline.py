"""A W&B offline run (``wandb/offline-run-*/run-*.wandb``), read locally without any server.

The transaction log (see :mod:`ocr.report.sources.wandb_log`) holds protobuf ``Record``s; only the
public ``wandb.proto.wandb_internal_pb2`` classes are used. History records become rows, and the
incremental summary and config records are merged in order (updates, then removals).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocr.report.errors import ReportError
from ocr.report.run import RunData
from ocr.report.sources.source import Source
from ocr.report.sources.wandb_common import history_to_long, wandb_info
from ocr.report.sources.wandb_log import read_log

RUN_GLOBS = ("offline-run-*", "run-*")


def find_log(target: str) -> tuple[Path | None, list[str]]:
    """The ``.wandb`` file for a file, an offline-run folder, a ``wandb/`` folder or a run dir."""
    path = Path(target)
    if path.is_file():
        return (path, []) if path.suffix == ".wandb" else (None, [])
    if not path.is_dir():
        return None, []
    own = sorted(path.glob("run-*.wandb"))
    if own:
        return own[-1], []
    for wandb_dir in (path, path / "wandb"):
        runs = sorted(
            (
                d
                for pattern in RUN_GLOBS
                for d in wandb_dir.glob(pattern)
                if d.is_dir() and any(d.glob("*.wandb"))
            ),
            key=lambda d: d.name.split("-", 2)[-1],
        )
        if runs:
            notes = (
                [f"{len(runs)} W&B runs under {wandb_dir}; using the latest, {runs[-1].name}"]
                if len(runs) > 1
                else []
            )
            return sorted(runs[-1].glob("*.wandb"))[-1], notes
    return None, []


def item_value(item: Any) -> Any:
    """A history/summary item's value: typed oneof when set, else ``value_json``."""
    kind = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if kind == "none":
        return None
    if kind == "json":
        return json.loads(item.json)
    if kind is not None:
        return getattr(item, kind)
    return json.loads(item.value_json) if item.value_json else None


def item_key(item: Any) -> list[str]:
    return list(item.nested_key) if item.nested_key else [item.key]


def _set(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def _remove(tree: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            return
        tree = node
    tree.pop(path[-1], None)


def parse_records(blobs: list[bytes]) -> dict[str, Any]:
    """History rows, merged summary and config, environment and run records, from raw records."""
    from google.protobuf.json_format import MessageToDict
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {
        "history": [],
        **{k: {} for k in ("summary", "config", "environment", "run", "telemetry")},
    }
    for blob in blobs:
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(blob)
        except Exception:  # a corrupt record: skip it, the rest is still useful
            continue
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({".".join(item_key(i)): item_value(i) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                _set(out["summary"], item_key(item), item_value(item))
            for item in record.summary.remove:
                _remove(out["summary"], item_key(item))
        elif kind == "config" or (kind == "run" and record.run.HasField("config")):
            config = record.config if kind == "config" else record.run.config
            for item in config.update:
                _set(out["config"], item_key(item), json.loads(item.value_json))
            for item in config.remove:
                _remove(out["config"], item_key(item))
        if kind == "run":
            run = record.run
            out["run"] = {
                "id": run.run_id,
                "project": run.project,
                "entity": run.entity,
                "display_name": run.display_name,
                "created": datetime.fromtimestamp(run.start_time.seconds, UTC).isoformat(timespec="seconds")
                if run.HasField("start_time")
                else None,
            }
        elif kind == "environment":
            out["environment"].update(MessageToDict(record.environment))
        elif kind == "telemetry":
            out["telemetry"].update(MessageToDict(record.telemetry))
        elif kind == "exit":
            out["exit"] = {"exit_code": record.exit.exit_code, "runtime_s": record.exit.runtime}
    out["config"].pop("_wandb", None)
    return out


def load(target: str) -> RunData:
    path, notes = find_log(target)
    if path is None:
        raise ReportError(
            f"{target}: no W&B run file (run-*.wandb) found; pass the offline-run-* folder of the run"
        )
    contents = read_log(path)
    parsed = parse_records(contents.records)
    notes += [f"{path.name}: {problem}" for problem in contents.problems]
    if "exit" not in parsed:
        notes.append(f"{path.name}: no exit record (the run was killed or is still running)")
    run = parsed["run"]
    telemetry = parsed["telemetry"]
    info = wandb_info(
        name=run.get("display_name") or run.get("id") or path.parent.name,
        config=parsed["config"],
        metadata=parsed["environment"],
        created=run.get("created"),
        versions={"python": telemetry.get("pythonVersion"), "wandb": telemetry.get("cliVersion")},
        extra={"wandb": {k: v for k, v in run.items() if v}, "runtime_s": parsed["summary"].get("_runtime")},
    )
    extra = {"summary": parsed["summary"], "wandb_config": parsed["config"], "exit": parsed.get("exit")}
    return RunData("wandb-offline", str(path), history_to_long(parsed["history"]), info, None, notes, extra)


SOURCE = Source(
    "wandb-offline",
    detect=lambda target: find_log(target)[0] is not None,
    describe="a W&B offline run (wandb/offline-run-*/run-*.wandb, or a directory containing one)",
    load=load,
)
