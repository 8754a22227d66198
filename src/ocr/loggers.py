"""A CSVLogger that appends to an existing ``metrics.csv`` instead of deleting it.

Lightning's writer removes ``metrics.csv`` when its folder is not empty, so resuming a killed run
in place (``ckpt_path=last`` with the same ``hydra.run.dir``) would lose every epoch logged before
the kill. Rows of a partly finished epoch stay as they were logged; readers keep the last value
per (step, key).
"""

from __future__ import annotations

import csv
import os
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = sorted(set(header))


class ResumableCSVLogger(CSVLogger):
    @property
    def experiment(self) -> Any:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
