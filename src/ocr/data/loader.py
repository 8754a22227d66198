"""A DataLoader that remembers how long ``iter()`` took.

Starting an epoch's iterator forks the worker processes (or resets persistent ones) before the
first batch can even be requested. That time is part of the epoch but happens outside every
Lightning hook that could time it, so the profiler reads it from here as the ``loader_start`` stage.

PyTorch's own worker-count check is switched off here: it looks at one DataLoader at a time and
warns on every start; :mod:`ocr.data.loader_defaults` counts both pools and the main process, and
says so once.
"""

from __future__ import annotations

import time
from typing import Any

from torch.utils.data import DataLoader


class TimedDataLoader(DataLoader[Any]):
    last_iter_span: tuple[float, float] | None = None

    def __iter__(self) -> Any:
        start = time.perf_counter()
        iterator = super().__iter__()
        self.last_iter_span = (start, time.perf_counter())
        return iterator

    def check_worker_number_rationality(self) -> None:
        """Replaced by ``LoaderPlan.warn_once`` (the data module calls it before building loaders)."""
