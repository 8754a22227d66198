"""A training DataLoader whose workers never stop at the end of an epoch.

A plain DataLoader (persistent workers included) stops feeding its workers once the epoch's last
index is handed out: during validation, checkpointing and logging they sit idle, and the next
epoch's first batch is only started when the trainer asks for it. On a fast GPU with short epochs
that first-batch wait is most of the epoch's data wait.

:class:`EpochSpanningDataLoader` keeps ONE worker iterator alive over :class:`EpochBatchSampler`
epochs (``span=True``): while the trainer consumes the last batches of epoch ``e``, the workers
already hold requests for epoch ``e + 1`` and keep producing them across the boundary. Each
``iter()`` hands Lightning an :class:`_EpochView`: exactly ``len(loader)`` batches of the epoch the
sampler is set to. The view continues the live iterator when it stands exactly at the start of that
epoch, and otherwise starts it afresh at that epoch (the first epoch, a resume from a checkpoint,
an epoch cut short, workers shut down by Lightning's teardown): the order is always the sampler's,
whatever happened before.
"""

from __future__ import annotations

from typing import Any

from ocr.data.loader import TimedDataLoader
from ocr.data.sampler import EpochBatchSampler, EpochSampler


class EpochSpanningDataLoader(TimedDataLoader):
    """``DataLoader(batch_sampler=EpochBatchSampler(...))`` served one epoch per ``iter()``.

    ``sampler`` reports the :class:`EpochSampler` (a ``DistributedSampler``), so Lightning keeps it
    in DDP and calls its ``set_epoch`` before every epoch.
    """

    def __init__(self, dataset: Any, batch_sampler: EpochBatchSampler, **kwargs: Any) -> None:
        self._epoch_batches = batch_sampler
        self._live: Any = None
        self._live_start = 0
        self._consumed = 0
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)

    # DataLoader.__init__ assigns a default SequentialSampler here; report the one that orders samples.
    @property  # type: ignore[override]
    def sampler(self) -> EpochSampler:
        return self._epoch_batches.sampler

    @sampler.setter
    def sampler(self, value: Any) -> None:
        pass

    @property
    def spans_epochs(self) -> bool:
        """Whether workers carry on into the next epoch (needs workers that outlive an epoch)."""
        return self._epoch_batches.span and self.num_workers > 0 and self.persistent_workers

    def __iter__(self) -> _EpochView:  # type: ignore[override]  # a view, not a worker iterator
        return _EpochView(self)

    # -- the live iterator ------------------------------------------------------------------------
    def _at_start_of(self, epoch: int) -> bool:
        per_epoch = len(self)
        if self._live is None or not self.spans_epochs or per_epoch == 0:
            return False
        if self._live is not self._iterator:  # Lightning's teardown shut the workers down
            return False
        done, partial = divmod(self._consumed, per_epoch)
        return partial == 0 and self._live_start + done == epoch

    def _ensure_at(self, epoch: int) -> None:
        if self._at_start_of(epoch):
            return
        # reads sampler.epoch (== epoch) at once; persistent workers are reset, not re-forked;
        # TimedDataLoader.__iter__ records the span as ``last_iter_span``
        self._live = super().__iter__()
        self._live_start, self._consumed = epoch, 0

    def _next_batch(self) -> Any:
        batch = next(self._live)
        self._consumed += 1
        return batch


class _EpochView:
    """One epoch of an :class:`EpochSpanningDataLoader`: ``len(loader)`` batches, then StopIteration."""

    def __init__(self, loader: EpochSpanningDataLoader) -> None:
        self.loader = loader
        self.epoch = int(loader.sampler.epoch)
        self.remaining = len(loader)
        self._started = False
        loader._ensure_at(self.epoch)  # start (or keep) the workers now, as iter(DataLoader) does

    def __iter__(self) -> _EpochView:
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __next__(self) -> Any:
        if not self._started:
            self._started = True
            # Lightning calls iter() before set_epoch() when it resumes from a checkpoint: follow
            # the epoch the sampler holds now.
            epoch = int(self.loader.sampler.epoch)
            if epoch != self.epoch:
                self.epoch = epoch
                self.loader._ensure_at(epoch)
        if self.remaining <= 0:
            raise StopIteration
        self.remaining -= 1
        return self.loader._next_batch()
