"""Two real CPU processes (Lightning DDP, gloo): metrics equal the single-process values.

Five validation images over two ranks is the case where a padding sampler would count one image
twice; the counts must still add up to exactly five.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TINY, run_cli

pytestmark = pytest.mark.slow

DDP = ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]
# Thresholds that make an untrained model produce boxes, so detection counts are not all zero.
EVAL = [
    "data.val.num_samples=5",
    "data.loader.num_workers=0",
    "postprocess.thresh=0.5",
    "postprocess.box_thresh=0.0",
    "image_size=128",
]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ddp_train")
    proc = run_cli(
        ["train", *TINY, *DDP, "trainer.max_epochs=1", "data.val.num_samples=5", f"hydra.run.dir={run}"],
        cwd=run,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return run


def _validate(ckpt: Path, tmp: Path, extra: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """(the JSON line, metrics.json with every reduced count)."""
    tmp.mkdir(parents=True, exist_ok=True)
    proc = run_cli(
        ["validate", f"ckpt_path={ckpt}", *EVAL, *extra, f"hydra.run.dir={tmp}"], cwd=tmp, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    return line, json.loads((tmp / "metrics.json").read_text())


def _pool_of(run: Path) -> dict[str, Any] | None:
    """The validation epoch's evaluator-pool block in perf_summary.json (None: in-process)."""
    summary = json.loads((run / "perf_summary.json").read_text())
    (epoch,) = [e for e in summary["epochs"] if e["phase"] == "validate"]
    return epoch.get("evaluator")


@pytest.fixture(scope="module")
def reference(
    ddp_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, float], dict[str, float]]:
    """One process, the in-process evaluation path (evaluator.workers=0): the reference."""
    run = tmp_path_factory.mktemp("single_inprocess")
    single = _validate(
        ddp_run / "checkpoints" / "last.ckpt", run, ["trainer.accelerator=cpu", "evaluator.workers=0"]
    )
    assert _pool_of(run) is None  # really in-process
    return single


# Both evaluation paths explicitly: with workers unset the default (cores left after the loader
# workers, per local rank) would pick the pool on most machines, so the in-process path would go
# untested under DDP.
@pytest.mark.parametrize("workers", [0, 1], ids=["in_process", "pool_1_per_rank"])
def test_ddp_validation_equals_single_process(
    ddp_run: Path, reference: tuple[dict[str, float], dict[str, float]], workers: int, tmp_path: Path
) -> None:
    ckpt = ddp_run / "checkpoints" / "last.ckpt"
    single, single_counts = reference
    double, double_counts = _validate(ckpt, tmp_path, [*DDP, f"evaluator.workers={workers}"])
    pool = _pool_of(tmp_path)
    if workers == 0:
        assert pool is None
    else:  # one evaluator on each rank; each rank's main process evaluates half its last batch
        assert pool is not None and pool["workers"] == 2 and 0 < pool["images"] < 5, pool
    assert single["images"] == double["images"] == 5
    for key in ("precision", "recall", "hmean", "iou_precision", "iou_recall", "iou_hmean"):
        assert double[key] == pytest.approx(single[key], abs=1e-6), key
    # An untrained model matches nothing, so the ratios alone prove little: the summed counts
    # behind them (GT lines and characters, detections) must be equal and non-trivial too.
    assert single_counts["num_gt"] > 0 and single_counts["num_char_gt"] > 0
    assert single_counts["num_det"] > 0 and single_counts["num_char_det"] > 0, single_counts
    # exactly: every state is an integer-valued sum, so neither the ranks nor the pool may move a bit
    assert double_counts == single_counts


def test_ddp_training_profile_aggregates_ranks(ddp_run: Path) -> None:
    summary = json.loads((ddp_run / "perf_summary.json").read_text())
    train = [e for e in summary["epochs"] if e["phase"] == "train"]
    val = [e for e in summary["epochs"] if e["phase"] == "validate"]
    assert train and val
    assert train[0]["world_size"] == 2 and len(train[0]["ranks"]) == 2
    assert train[0]["samples"] == 8  # summed over ranks
    assert val[0]["samples"] == 5  # each image once
    assert {r["rank"] for r in train[0]["ranks"]} == {0, 1}
    assert all(r["data_wait_s"] >= 0 for r in train[0]["ranks"])
