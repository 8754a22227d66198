"""A DataLoader that remembers how long ``iter()`` took, and can start its next epoch early.

Starting an epoch's iterator forks the worker processes (or resets persistent ones) before the
first batch can even be requested. That time is part of the epoch but happens outside every
Lightning hook that could time it, so the profiler reads it from here as the ``loader_start`` stage.

PyTorch's own worker-count check is switched off here: it looks at one DataLoader at a time and
warns on every start; :mod:`ocr.data.loader_defaults` counts both pools and the main process, and
says so once.

:meth:`TimedDataLoader.prime` starts the next iterator ahead of time (the data module does it for
the validation loader while the last training step runs): the workers start and fill their
prefetch queues in parallel, and the next ``iter()`` returns that iterator instead of a new one.
"""

from __future__ import annotations

import time
from typing import Any

from torch.utils.data import DataLoader


class TimedDataLoader(DataLoader[Any]):
    last_iter_span: tuple[float, float] | None = None
    _primed: Any = None

    def prime(self) -> bool:
        """Start the next epoch's iterator now; ``False`` when one is already waiting."""
        if self._primed is not None:
            return False
        # not timed as ``last_iter_span``: it is spent inside the enclosing (training) epoch, so
        # it is not the next epoch's ``loader_start``
        self._primed = super().__iter__()
        return True

    def __iter__(self) -> Any:
        if self._primed is not None:
            iterator, self._primed = self._primed, None
            return iterator
        start = time.perf_counter()
        iterator = super().__iter__()
        self.last_iter_span = (start, time.perf_counter())
        return iterator

    def check_worker_number_rationality(self) -> None:
        """Replaced by ``LoaderPlan.warn_once`` (the data module calls it before building loaders)."""
