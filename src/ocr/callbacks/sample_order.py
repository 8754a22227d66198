"""``SampleOrderCallback``: which samples every training step saw, one JSON line per batch and rank.

``<output_dir>/sample_order/rank<R>.jsonl`` gets ``{"epoch", "batch", "step", "index": [...]}`` for
every training batch (``index``: the dataset indices, in batch order). It makes the data order
auditable: a run resumed from a checkpoint must list the same indices per epoch as an
uninterrupted one, and in DDP the ranks' indices of an epoch must partition the dataset. Off by
default; ``ocr train +callbacks.sample_order._target_=ocr.callbacks.sample_order.SampleOrderCallback``
turns it on (the folder defaults to the trainer's ``default_root_dir``, i.e. the run folder).
Lines are appended, so a resumed run continues the file of the run it resumes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L


class SampleOrderCallback(L.Callback):
    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__()
        self.output_dir = output_dir

    def _path(self, trainer: L.Trainer) -> Path:
        root = Path(self.output_dir or trainer.default_root_dir)
        return root / "sample_order" / f"rank{trainer.global_rank}.jsonl"

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        index = batch.get("index") if isinstance(batch, dict) else None
        if index is None:
            return
        path = self._path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        row = {
            "epoch": int(trainer.current_epoch),
            "batch": int(batch_idx),
            "step": int(trainer.global_step),
            "index": [int(i) for i in index],
        }
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


def read_sample_order(path: str | Path) -> list[dict[str, Any]]:
    """The rows of one rank's file, in the order they were written."""
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
