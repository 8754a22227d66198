"""``RunData``: what every source hands to the report, whatever it was read from.

Every source normalises to ONE long table (``step, epoch, key, value``) so that the analysis is
written once. Run information (hardware, versions, key config) travels beside it, and the full
``perf_summary.json`` document when the source has one (it holds statistics that are not logged
as metrics, such as counts, the memory timeline and cache hit/miss counts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("step", "epoch", "key", "value")


def long_table(rows: Iterable[tuple[Any, Any, str, Any]]) -> pd.DataFrame:
    """Build the long table from ``(step, epoch, key, value)`` rows, dropping non-numeric values,
    in (step, key) order; a stable sort keeps the logged order of a key's values within a step."""
    clean = [
        (as_int(step), as_int(epoch), str(key), number)
        for step, epoch, key, value in rows
        if (number := as_number(value)) is not None
    ]
    frame = pd.DataFrame(clean, columns=list(COLUMNS))
    frame = frame.astype({"step": "Int64", "epoch": "Int64", "value": "float64"})
    return frame.sort_values(["step", "key"], kind="stable").reset_index(drop=True)


def as_number(value: Any) -> float | None:
    """A float for numbers and booleans (``bool`` is an ``int``), numpy's included; ``None`` for
    strings, media, dicts and missing values (``None``, ``pd.NA``)."""
    if isinstance(value, int | float | np.number):
        return float(value)
    return None


def as_int(value: Any) -> int | None:
    """An int from a number or a nullable-integer cell; ``None`` for missing values, NaN and infinity."""
    number = as_number(value)
    if number is None or math.isnan(number) or math.isinf(number):
        return None
    return round(number)


@dataclass
class RunData:
    """One run, read by one source.

    Attributes:
        source: the registry name of the source that read it.
        location: the path or ``wandb://entity/project/id`` it was read from.
        metrics: the long table (``step, epoch, key, value``).
        info: run information: ``name``, ``created``, ``hardware``, ``versions``, ``config`` (key
            configuration), with whatever the source knew; missing entries are simply absent.
        summary: the ``perf_summary.json`` document, when the source has it.
        notes: what the loader noticed on the way (a truncated file, a skipped run...).
        extra: source-specific details (e.g. the W&B summary), kept for the JSON export.
    """

    source: str
    location: str
    metrics: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.location)

    def keys(self) -> set[str]:
        return set(self.metrics["key"].unique()) if len(self.metrics) else set()

    def series(self, key: str) -> pd.DataFrame:
        """Rows of one key, in step order."""
        rows = self.metrics[self.metrics["key"] == key]
        return rows.sort_values("step", kind="stable")
