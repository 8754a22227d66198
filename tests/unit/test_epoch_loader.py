"""Training order that is seeded per epoch, resumable, DDP-sharded, and workers that span epochs."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from ocr.data.epoch_loader import EpochSpanningDataLoader
from ocr.data.sampler import EpochBatchSampler, EpochSampler


class Counted(Dataset[int]):
    """Returns the index; counts every load in a counter shared with the worker processes."""

    def __init__(self, size: int, delay: float = 0.0) -> None:
        self.size, self.delay = size, delay
        self.loads = multiprocessing.get_context("fork").Value("i", 0)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        time.sleep(self.delay)
        with self.loads.get_lock():
            self.loads.value += 1
        return index


def _loader(
    dataset: Dataset[int], seed: int = 3, batch: int = 4, workers: int = 2, span: bool = True, **kw: Any
) -> EpochSpanningDataLoader:
    sampler = EpochSampler(dataset, seed=seed, **kw)  # type: ignore[arg-type]
    batches = EpochBatchSampler(sampler, batch, span=span)
    return EpochSpanningDataLoader(
        dataset, batches, num_workers=workers, persistent_workers=workers > 0, collate_fn=list
    )


def _epoch(loader: EpochSpanningDataLoader, epoch: int) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_epoch_order_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochSampler(range(50), seed=7), EpochSampler(range(50), seed=7)  # type: ignore[arg-type]
    assert a.epoch_indices(3) == b.epoch_indices(3)
    assert sorted(a.epoch_indices(0)) == list(range(50))
    assert a.epoch_indices(0) != a.epoch_indices(1), "a new permutation every epoch"
    assert a.epoch_indices(0) != EpochSampler(range(50), seed=8).epoch_indices(0)  # type: ignore[arg-type]
    b.set_epoch(3)
    assert list(b) == a.epoch_indices(3)


@pytest.mark.parametrize(("size", "world"), [(10, 2), (11, 2), (13, 3)])
def test_ranks_partition_every_epoch(size: int, world: int) -> None:
    for epoch in range(3):
        shards = [
            EpochSampler(range(size), num_replicas=world, rank=r, seed=1).epoch_indices(epoch)  # type: ignore[arg-type]
            for r in range(world)
        ]
        assert len({len(s) for s in shards}) == 1, "every rank runs the same number of steps"
        flat = [i for s in shards for i in s]
        assert set(flat) == set(range(size))
        assert len(flat) - size < world, "only the padding of the last round repeats"


def test_batches_never_cross_epochs_and_span_into_the_next() -> None:
    sampler = EpochSampler(range(10), seed=0)  # type: ignore[arg-type]
    batches = EpochBatchSampler(sampler, 4)
    assert len(batches) == 3
    it = iter(batches)
    got = [next(it) for _ in range(6)]
    assert got == batches.epoch_batches(0) + batches.epoch_batches(1)
    assert [len(b) for b in got] == [4, 4, 2, 4, 4, 2]
    assert list(EpochBatchSampler(sampler, 4, span=False)) == batches.epoch_batches(0)
    assert len(EpochBatchSampler(sampler, 4, drop_last=True)) == 2
    assert len(EpochBatchSampler(sampler, 4, batches_per_epoch=2)) == 2


def test_loader_serves_the_sampler_order_epoch_after_epoch_on_one_iterator() -> None:
    loader = _loader(Counted(10))
    spans = []
    for epoch in range(3):
        assert _epoch(loader, epoch) == loader._epoch_batches.epoch_batches(epoch)
        spans.append(loader.last_iter_span)
    assert spans[0] == spans[1] == spans[2], "the workers were started once, not per epoch"


@pytest.mark.parametrize("span", [True, False])
def test_workers_prepare_the_next_epoch_during_the_boundary(span: bool) -> None:
    dataset = Counted(8, delay=0.01)
    loader = _loader(dataset, batch=2, span=span)
    assert _epoch(loader, 0) == loader._epoch_batches.epoch_batches(0)
    time.sleep(0.5)  # "validation": the trainer asks for nothing
    ahead = dataset.loads.value - 8
    if span:
        assert ahead >= 2, f"the workers should have prepared epoch 1's first batches, loaded {ahead} ahead"
    else:
        assert ahead == 0
    assert _epoch(loader, 1) == loader._epoch_batches.epoch_batches(1)


def test_resumed_loader_gives_the_uninterrupted_order() -> None:
    """Lightning calls iter() before set_epoch() on resume: the view must follow the epoch set later."""
    reference = _loader(Counted(10))
    expected = [_epoch(reference, e) for e in range(4)]
    resumed = _loader(Counted(10))
    view = iter(resumed)  # sampler still at epoch 0, as in FitLoop.setup_data
    resumed.sampler.set_epoch(2)
    assert list(view) == expected[2]
    assert _epoch(resumed, 3) == expected[3]


def test_an_epoch_cut_short_does_not_shift_the_next() -> None:
    loader = _loader(Counted(12), batch=3)
    view = iter(loader)
    next(view)  # e.g. limit_train_batches, or an exception, ends the epoch early
    assert _epoch(loader, 1) == loader._epoch_batches.epoch_batches(1)
    assert _epoch(loader, 2) == loader._epoch_batches.epoch_batches(2)


def test_without_workers_the_order_is_the_same() -> None:
    with_workers = _loader(Counted(9), workers=2)
    without = _loader(Counted(9), workers=0)
    assert not without.spans_epochs
    for epoch in range(3):
        assert _epoch(without, epoch) == _epoch(with_workers, epoch)


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, list[int]]] = []

    def training_step(self, batch: list[int], batch_idx: int) -> torch.Tensor:
        self.seen.append((self.current_epoch, list(batch)))
        return (self.weight - 1.0).pow(2).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp: Path, epochs: int, ckpt: str | None = None) -> tuple[_Recorder, L.Trainer]:
    model = _Recorder()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp),
    )
    trainer.fit(model, train_dataloaders=_loader(Counted(10)), ckpt_path=ckpt)
    return model, trainer


def test_lightning_resume_from_checkpoint_keeps_the_order(tmp_path: Path) -> None:
    full, _ = _fit(tmp_path, 4)
    expected = _loader(Counted(10))._epoch_batches
    assert full.seen == [(e, b) for e in range(4) for b in expected.epoch_batches(e)]
    first, trainer = _fit(tmp_path, 2)
    trainer.save_checkpoint(tmp_path / "epoch1.ckpt")
    resumed, _ = _fit(tmp_path, 4, ckpt=str(tmp_path / "epoch1.ckpt"))
    assert first.seen + resumed.seen == full.seen
