"""DataLoader workers and prefetch depth from the machine; one warning in words on CPU oversubscription.

* **Cores of this rank**: the CPUs in this process's affinity mask (``os.sched_getaffinity``:
  what a container, ``taskset`` or a SLURM allocation grants, not the machine's total), divided by
  the ranks that share the node.
* **Workers** (``data.loader.num_workers: null``): Lightning's own bound,
  ``max(1, cores_per_rank - 1)``: one core is left to the main process, which feeds the device.
* **Prefetch depth** (``data.loader.prefetch_factor: null``): batches in flight per worker,
  ``max(2, ceil(4 / workers))``, so that at least four batches are being prepared at the epoch
  boundary (see :mod:`ocr.data.epoch_loader`) even with one or two workers, without holding more
  batches in memory than that when there are many.
* **Oversubscription**: the training and validation worker pools are both alive (persistent) and,
  at the epoch boundary, both busy, beside the main process (its torch threads when the model runs
  on the CPU, one core otherwise). When one phase alone asks for more than the rank's cores and a
  pool is larger than the default (so fewer workers would help), one warning says so in words,
  once per process. It replaces PyTorch's generic per-DataLoader
  warning (:meth:`ocr.data.loader.TimedDataLoader.check_worker_number_rationality`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ocr.schema import LoaderKnobs, check_fields

log = logging.getLogger(__name__)

MIN_BATCHES_IN_FLIGHT = 4
_WARNED: set[str] = set()


def affinity_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cores_per_rank(local_world_size: int = 1) -> int:
    return max(1, affinity_cores() // max(1, local_world_size))


def default_workers(local_world_size: int = 1) -> int:
    """Lightning's ``suggested_max_num_workers``: the rank's cores less one for the main process."""
    from lightning.fabric.utilities.data import suggested_max_num_workers

    return suggested_max_num_workers(max(1, local_world_size))


def default_prefetch(workers: int) -> int | None:
    if workers <= 0:
        return None  # no workers: nothing is prefetched
    return max(2, -(-MIN_BATCHES_IN_FLIGHT // workers))


@dataclass(frozen=True)
class LoaderPlan:
    """The worker counts and prefetch depth a data module's loaders use, and where they came from."""

    train_workers: int
    val_workers: int
    prefetch_factor: int | None
    cores: int
    local_world_size: int
    main_threads: int
    auto_workers: bool
    auto_prefetch: bool

    def oversubscription(self) -> str | None:
        """The warning text when a phase asks for more than this rank's cores, else ``None``."""
        train = self.main_threads + self.train_workers
        val = self.main_threads + self.val_workers
        fix = default_workers(self.local_world_size)
        # Only when fewer workers would help: one worker on one core still overlaps the device.
        if max(train, val) <= self.cores or max(self.train_workers, self.val_workers) <= fix:
            return None
        share = f"{affinity_cores()} CPUs in this process's affinity mask"
        if self.local_world_size > 1:
            share += f" shared by {self.local_world_size} ranks on this node"
        main = (
            f"{self.main_threads} torch threads in the main process (model on the CPU)"
            if self.main_threads > 1
            else "the main process"
        )
        return (
            f"the CPU is oversubscribed: training runs {self.train_workers} DataLoader workers and "
            f"validation {self.val_workers}, each beside {main}, on {self.cores} cores for this rank "
            f"({share}); at the epoch boundary both pools work at once. Processes then wait for a "
            f"core instead of working: set data.loader.num_workers={fix} (or null: derived from the "
            "machine)" + (", or fewer torch threads" if self.main_threads > 1 else "")
        )

    def warn_once(self) -> None:
        message = self.oversubscription()
        if message is not None and message not in _WARNED:
            _WARNED.add(message)
            log.warning(message)


def plan_loaders(
    num_workers: int | None,
    prefetch_factor: int | None,
    val_workers: int | None = None,
    local_world_size: int = 1,
    main_threads: int = 1,
) -> LoaderPlan:
    """Resolve ``None`` (derive from the machine) for the worker counts and the prefetch depth."""
    check_fields(LoaderKnobs(num_workers=num_workers, prefetch_factor=prefetch_factor), "data.loader.")
    auto = default_workers(local_world_size)
    workers = auto if num_workers is None else num_workers
    val = workers if val_workers is None else val_workers
    prefetch = default_prefetch(workers) if prefetch_factor is None else prefetch_factor
    if workers == 0:
        prefetch = None  # DataLoader rejects a prefetch_factor without workers
    return LoaderPlan(
        train_workers=workers,
        val_workers=val,
        prefetch_factor=prefetch,
        cores=cores_per_rank(local_world_size),
        local_world_size=max(1, local_world_size),
        main_threads=max(1, main_threads),
        auto_workers=num_workers is None,
        auto_prefetch=prefetch_factor is None,
    )
