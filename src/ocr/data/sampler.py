"""Training sample order: seeded per epoch, sharded per rank, and able to run past the epoch's end.

* :class:`EpochSampler` is a :class:`~torch.utils.data.DistributedSampler` (its algorithm: the
  permutation of epoch ``e`` is ``randperm`` seeded with ``seed + e``, padded and sharded
  ``rank::num_replicas``), also with one process. The order of an epoch is therefore a pure
  function of ``(seed, epoch, rank, world size)``: a run resumed from a checkpoint trains epoch
  ``e`` on the same samples, in the same order, as an uninterrupted run. Being a
  ``DistributedSampler``, Lightning neither replaces it in DDP nor forgets its ``set_epoch``.
* :class:`EpochBatchSampler` cuts those epochs into batches (never a batch across two epochs) and,
  with ``span=True``, goes on into the next epoch instead of stopping: the DataLoader workers
  then prepare the next epoch's first batches while the trainer validates, checkpoints and logs
  (:class:`ocr.data.epoch_loader.EpochSpanningDataLoader` hands Lightning one epoch at a time).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sized
from typing import Any

from torch.utils.data import DistributedSampler, Sampler


class EpochSampler(DistributedSampler[int]):
    """``DistributedSampler`` with an explicit rank and world size (1 and 0 without DDP)."""

    def __init__(self, dataset: Sized, *, num_replicas: int = 1, rank: int = 0, **kwargs: Any) -> None:
        # explicit defaults: DistributedSampler would ask torch.distributed (an error without DDP);
        # shuffle, seed and drop_last pass through with DistributedSampler's defaults
        super().__init__(
            dataset,  # type: ignore[arg-type]  # only its length is used
            num_replicas=num_replicas,
            rank=rank,
            **kwargs,
        )

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, whatever epoch the sampler is set to."""
        view = copy.copy(self)
        view.epoch = epoch
        return list(DistributedSampler.__iter__(view))


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of :class:`EpochSampler` epochs, starting at its current epoch.

    ``len()`` is the batches of ONE epoch (what Lightning counts). ``iter()`` reads the start epoch
    at once (so a later ``set_epoch`` cannot shift an iterator already handed out) and yields that
    epoch's batches, then, with ``span``, those of the following epochs, without end.
    ``batches_per_epoch`` truncates each epoch (the trainer's ``limit_train_batches``), so that the
    next epoch's batches still follow right after the last one the trainer takes.
    """

    def __init__(
        self,
        sampler: EpochSampler,
        batch_size: int,
        drop_last: bool = False,
        span: bool = True,
        batches_per_epoch: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.span = span
        self.batches_per_epoch = batches_per_epoch

    def __len__(self) -> int:
        samples = len(self.sampler)
        full = samples // self.batch_size if self.drop_last else -(-samples // self.batch_size)
        return full if self.batches_per_epoch is None else min(full, max(0, self.batches_per_epoch))

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        indices = self.sampler.epoch_indices(epoch)
        size = self.batch_size
        return [indices[i : i + size] for i in range(0, len(indices), size)][: len(self)]

    def __iter__(self) -> Iterator[list[int]]:
        return self._batches_from(int(self.sampler.epoch))

    def _batches_from(self, epoch: int) -> Iterator[list[int]]:
        while True:
            yield from self.epoch_batches(epoch)
            if not self.span or len(self) == 0:
                return
            epoch += 1
