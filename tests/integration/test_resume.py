"""Nothing lost: ``kill -9`` a real ``ocr train`` after an epoch, then ``ckpt_path=last`` resumes it.

The resumed run must continue from the last completed epoch (checkpoint ``epoch``/``global_step``,
Lightning's "Restored all states" message), finish, and leave a metrics.csv with every epoch's
validation row: the epochs logged before the kill included. And it trains on the same samples in the
same order as an uninterrupted run: every epoch's batches (``SampleOrderCallback``) are those of the
seeded per-epoch order, before the kill and after the resume alike; and its perf_summary.json holds
every epoch's profile (written at each epoch end; the resumed run appends to it).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ocr.callbacks.sample_order import read_sample_order
from ocr.data.sampler import EpochBatchSampler, EpochSampler
from tests.helpers import TINY, run_cli

# Enough epochs that the poll below (a torch.load per look) sees epoch 1 before the run ends:
# with in-process evaluation a tiny epoch is well under a second.
EPOCHS = 12
STEPS_PER_EPOCH = 4  # 16 samples, batch size 4 (TINY's)
OVERRIDES = [
    *(o for o in TINY if not o.startswith(("trainer.max_epochs=", "data.train.num_samples="))),
    f"trainer.max_epochs={EPOCHS}",
    f"data.train.num_samples={STEPS_PER_EPOCH * 4}",
    "trainer.log_every_n_steps=1",
    "data.augment.enabled=false",
    "data.cache.enabled=false",  # independent of the target cache (built separately)
    "data.loader.num_workers=1",  # a worker that spans epochs, killed with the run
    "+callbacks.sample_order._target_=ocr.callbacks.sample_order.SampleOrderCallback",
]
SEED, BATCH = 42, 4  # configs/train.yaml seed; TINY batch size


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError):  # not there yet
        return None


def _val_epochs(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as fh:
        return [int(float(row["epoch"])) for row in csv.DictReader(fh) if row.get("val/hmean")]


def _profiled(run: Path) -> list[tuple[str, int]]:
    summary = json.loads((run / "perf_summary.json").read_text())
    return [(e["phase"], int(e["epoch"])) for e in summary["epochs"]]


def test_kill_9_then_ckpt_path_last_resumes_from_the_completed_epoch(tmp_path: Path) -> None:
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    ocr = Path(sys.executable).with_name("ocr")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            [str(ocr), "train", *OVERRIDES, f"hydra.run.dir={run}"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches any worker too
        )
        deadline = time.monotonic() + 240  # generous: start-up alone is slow on a busy machine
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                checkpoint = _load(last) if last.exists() else None
                if checkpoint is not None and checkpoint["epoch"] >= 1:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None and time.monotonic() >= deadline:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    first_log = (tmp_path / "first.log").read_text()
    if proc.returncode != -signal.SIGKILL:
        stale = _load(last)
        assert proc.returncode != 0 or stale is None or stale["epoch"] == EPOCHS - 1, (
            f"all {EPOCHS} epochs finished but last.ckpt holds epoch {stale['epoch']}: it is not saved every "
            "epoch, so a kill loses the epochs since it was written and ckpt_path=last resumes from there"
        )
        raise AssertionError(
            f"the run was not killed mid-training (rc={proc.returncode}):\n{first_log[-3000:]}"
        )

    killed = _load(last)
    assert killed is not None, "last.ckpt must never be torn by a kill"
    done = int(killed["epoch"])
    assert 1 <= done < EPOCHS - 1, "killed before the end of training"
    assert killed["global_step"] == (done + 1) * STEPS_PER_EPOCH
    assert set(_val_epochs(run)) >= set(range(done + 1)), "epochs logged before the kill"
    profiled = _profiled(run)
    assert {(phase, e) for phase in ("train", "validate") for e in range(done + 1)} <= set(profiled), (
        f"perf_summary.json must hold every epoch completed before the kill (epoch {done}): {profiled}"
    )

    result = run_cli(
        ["train", *OVERRIDES, "ckpt_path=last", f"hydra.run.dir={run}"], cwd=tmp_path, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Restored all states from the checkpoint" in output, "resumed, not restarted"

    final = _load(last)
    assert final is not None
    assert final["epoch"] == EPOCHS - 1
    assert final["global_step"] == EPOCHS * STEPS_PER_EPOCH, "each epoch trained exactly once"
    epochs = _val_epochs(run)
    assert set(epochs) == set(range(EPOCHS)), f"an epoch is missing from metrics.csv: {epochs}"
    assert epochs == sorted(epochs), epochs
    # Epochs up to the checkpoint ran once; only an epoch cut short by the kill may appear twice.
    assert [epochs.count(e) for e in range(done + 1)] == [1] * (done + 1), epochs
    profiled = _profiled(run)
    trained = [e for phase, e in profiled if phase == "train"]
    assert trained == list(range(EPOCHS)), f"the resumed run appends to the profiles: {profiled}"
    assert {e for phase, e in profiled if phase == "validate"} == set(range(EPOCHS)), profiled

    # The sample order: what an uninterrupted run trains on, epoch by epoch (the rows of an epoch
    # cut short by the kill are superseded by its rerun after the resume).
    expected = EpochBatchSampler(EpochSampler(range(STEPS_PER_EPOCH * BATCH), seed=SEED), BATCH)
    by_epoch: dict[int, list[list[int]]] = {}
    for row in read_sample_order(run / "sample_order" / "rank0.jsonl"):
        if row["batch"] == 0:
            by_epoch[row["epoch"]] = []
        by_epoch[row["epoch"]].append(row["index"])
    assert sorted(by_epoch) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        assert by_epoch[epoch] == expected.epoch_batches(epoch), f"epoch {epoch} after a resume at {done + 1}"
    assert by_epoch[0] != by_epoch[1], "shuffled per epoch"
