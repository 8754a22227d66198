"""What the offline and online W&B sources share: history rows to the long table, run info.

Both end with the same shapes: history rows as dicts (``_step``, ``_runtime``, ``_timestamp``,
``trainer/global_step``, ``epoch`` and the metrics, exactly what ``Run.scan_history()`` yields), the
config dict, the summary dict and the environment metadata (``wandb-metadata.json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ocr.report.config import hardware_from_wandb, key_config
from ocr.report.run import long_table

# Lightning's WandbLogger logs its own step under this key; W&B's ``_step`` counts log calls.
STEP_KEY = "trainer/global_step"


def history_to_long(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long table from history rows; the step is Lightning's global step when it was logged."""
    records: list[tuple[Any, Any, str, Any]] = []
    epoch: Any = None
    for row in rows:
        step = row.get(STEP_KEY, row.get("_step"))
        epoch = row.get("epoch", epoch)
        records.extend(
            (step, epoch, key, value)
            for key, value in row.items()
            if not key.startswith("_") and key not in (STEP_KEY, "epoch")
        )
    frame = long_table(records)
    return frame[frame["value"].notna()].reset_index(drop=True)


def wandb_info(
    *,
    name: str,
    config: dict[str, Any],
    metadata: dict[str, Any] | None,
    created: str | None,
    versions: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": name,
        "created": created,
        "hardware": hardware_from_wandb(metadata),
        "versions": {k: v for k, v in versions.items() if v},
        "config": key_config(config),
        **(extra or {}),
    }
    return {k: v for k, v in info.items() if v}
