"""The validation DataLoader's workers start once per fit, not once per validation epoch.

A real Trainer fit of 2 epochs with one validation worker: every validation batch carries the pid
of the worker process that collated it (``perf.worker_pid``), so the probe sees directly whether
epoch 2+ was served by the same process as epoch 1 (persistent workers) or by a freshly forked one.
The non-persistent run is the control: it proves the probe can tell the two apart.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import pytest

from ocr.data.datamodule import ReceiptDataModule
from ocr.models.lit_module import DBNetModule

EPOCHS = 2


class _ValWorkerPids(L.Callback):
    """Per validation epoch: the set of worker pids that produced its batches."""

    def __init__(self) -> None:
        self.per_epoch: list[set[int]] = []

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.per_epoch.append(set())

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        self.per_epoch[-1].add(int(batch["perf"]["worker_pid"]))


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of synthetic renders for both fits (rendering costs more than the fit)."""
    return tmp_path_factory.mktemp("synthetic")


def _fit(tmp: Path, renders: Path, persistent: bool) -> tuple[_ValWorkerPids, tuple[int, bool]]:
    """A short fit; returns the probe and the validation loader's (num_workers, persistent)."""
    split = {"cache_dir": str(renders)}
    data = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.synthetic.SyntheticReceipts"},
        train={"num_samples": 4, "seed": 0, **split},
        val={"num_samples": 4, "seed": 1, **split},
        image_size=64,
        loader={"batch_size": 2, "num_workers": 1, "persistent_workers": persistent},
        cache={"enabled": True, "dir": str(tmp / "cache")},
    )
    model = DBNetModule(
        net={"backbone": "mobilenetv3_small_050", "inner_channels": 16},
        evaluator={"workers": 0},  # the loader is under test, not the evaluator pool
    )
    probe = _ValWorkerPids()
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=1,
        callbacks=[probe],
    )
    trainer.fit(model, datamodule=data)
    loader = trainer.val_dataloaders
    return probe, (loader.num_workers, bool(loader.persistent_workers))


@pytest.mark.slow
def test_validation_workers_are_the_same_processes_in_every_epoch(tmp_path: Path, renders: Path) -> None:
    probe, info = _fit(tmp_path, renders, persistent=True)
    assert info == (1, True)
    assert len(probe.per_epoch) == EPOCHS
    first = probe.per_epoch[0]
    assert len(first) == 1 and os.getpid() not in first, probe.per_epoch  # one worker, not in-process
    assert all(pids == first for pids in probe.per_epoch), probe.per_epoch


@pytest.mark.slow
def test_the_probe_sees_new_workers_when_persistence_is_off(tmp_path: Path, renders: Path) -> None:
    """Control: without persistent workers each validation epoch forks a new worker."""
    probe, info = _fit(tmp_path, renders, persistent=False)
    assert info == (1, False)
    assert len(probe.per_epoch) == EPOCHS
    pids = [next(iter(epoch)) for epoch in probe.per_epoch if len(epoch) == 1]
    assert len(pids) == EPOCHS and len(set(pids)) == EPOCHS, probe.per_epoch
