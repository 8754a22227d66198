"""A TensorBoard log directory (``events.out.tfevents.*``), read with ``EventAccumulator``.

``size_guidance={SCALARS: 0}`` keeps every scalar: the default reservoir keeps 10,000 per tag and
silently samples longer runs. TensorBoard has no epoch column; the ``epoch`` scalar logged with
every ``log_metrics`` call is matched to each value by step and nearest wall time (two epochs can
share a step, e.g. an epoch's perf summary and the next epoch's first training step).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from pathlib import Path
from typing import Any

from ocr.report.config import key_config
from ocr.report.errors import ReportError
from ocr.report.run import RunData, long_table
from ocr.report.sources.source import Source, read_yaml_mapping

EVENTS = "events.out.tfevents.*"


def event_dirs(target: str) -> list[Path]:
    """Folders with event files: the target itself, else at most two levels below it.

    Two levels cover ``<run>/tensorboard`` and Lightning's ``<logs>/<name>/version_N`` without
    crawling a whole tree (``ocr report /tmp`` must not pick up some run by accident).
    """
    path = Path(target)
    if not path.is_dir():
        return []
    if any(path.glob(EVENTS)):
        return [path]
    return sorted({p.parent for pattern in (f"*/{EVENTS}", f"*/*/{EVENTS}") for p in path.glob(pattern)})


class _EpochIndex:
    """Epoch of a value, from the ``epoch`` scalar logged at the same step (nearest wall time)."""

    def __init__(self, events: list[Any]) -> None:
        self.by_step: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for e in events:
            self.by_step[e.step].append((e.wall_time, round(e.value)))
        self.steps = sorted(self.by_step)

    def __call__(self, step: int, wall_time: float) -> int | None:
        candidates = self.by_step.get(step)
        if not candidates:
            i = bisect.bisect_right(self.steps, step) - 1
            if i < 0:
                return None
            candidates = self.by_step[self.steps[i]]
        return min(candidates, key=lambda c: abs(c[0] - wall_time))[1]


def load(target: str) -> RunData:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    dirs = event_dirs(target)
    if len(dirs) != 1:
        listing = ", ".join(str(d) for d in dirs) or "none"
        raise ReportError(f"{target}: expected one TensorBoard run, found {len(dirs)} ({listing}); pass one")
    directory = dirs[0]
    accumulator = EventAccumulator(str(directory), size_guidance={SCALARS: 0})
    accumulator.Reload()
    tags = accumulator.Tags().get("scalars", [])
    epoch_of = _EpochIndex(accumulator.Scalars("epoch") if "epoch" in tags else [])
    rows = [
        (e.step, epoch_of(e.step, e.wall_time), tag, e.value)
        for tag in tags
        if tag != "epoch"
        for e in accumulator.Scalars(tag)
    ]
    metrics = long_table(rows)
    hparams, _ = read_yaml_mapping(directory / "hparams.yaml")  # unreadable: only the settings are missed
    info = {
        "name": directory.resolve().parent.name if directory.name == "tensorboard" else directory.name,
        "config": key_config(hparams),
    }
    notes = [] if tags else [f"{directory}: no scalars logged"]
    notes.append("TensorBoard records no hardware or versions: those rows are not available")
    return RunData("tensorboard", str(directory), metrics, {k: v for k, v in info.items() if v}, None, notes)


SOURCE = Source(
    "tensorboard",
    detect=lambda target: bool(event_dirs(target)),
    describe="a TensorBoard log directory (events.out.tfevents.*)",
    load=load,
)
