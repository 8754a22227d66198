"""PerformanceProfilerCallback on a real Lightning Trainer (CPU): what it measures and when it is off."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.profilers import PassThroughProfiler

from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
from ocr.data.datamodule import ReceiptDataModule
from ocr.data.datasets.synthetic import SyntheticReceipts
from ocr.data.sample import TextSample
from ocr.models.lit_module import DBNetModule
from ocr.perf.keys import parse_key
from ocr.perf.schema import SCHEMA, PerfSummary
from ocr.perf.stage_timer import NullStageTimer
from tests.helpers import schema_problems

pytestmark = pytest.mark.slow

SLEEP_S = 0.03


class SlowSynthetic(SyntheticReceipts):
    """Synthetic receipts that take an extra 30 ms to 'decode'."""

    def load(self, index: int) -> TextSample:
        time.sleep(SLEEP_S)
        return super().load(index)


class SlowTransfer(DBNetModule):
    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        time.sleep(SLEEP_S)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)


def _module(cls: type[DBNetModule] = DBNetModule) -> DBNetModule:
    return cls(net={"backbone": "mobilenetv3_small_050", "inner_channels": 32})


SYNTHETIC = "ocr.data.datasets.synthetic.SyntheticReceipts"


def _data(tmp: Path, val: int = 4, workers: int = 0, reader: str = SYNTHETIC) -> ReceiptDataModule:
    split = {"cache_dir": str(tmp / "synthetic")}
    return ReceiptDataModule(
        reader={"_target_": reader},
        train={"num_samples": 8, "seed": 0, **split},
        val={"num_samples": val, "seed": 1, **split},
        image_size=128,
        loader={"batch_size": 4, "num_workers": workers},
        cache={"enabled": True, "dir": str(tmp / "cache")},
    )


def _fit(
    tmp: Path,
    callback: PerformanceProfilerCallback,
    module: DBNetModule | None = None,
    data: ReceiptDataModule | None = None,
    logger: Any = None,
    epochs: int = 2,
) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        num_sanity_val_steps=1,
        log_every_n_steps=1,
        logger=CSVLogger(str(tmp), name="", version="") if logger is None else logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=str(tmp),
    )
    trainer.fit(module or _module(), datamodule=data or _data(tmp))
    return trainer


def test_fit_summary_has_every_stage_and_attributes_the_epoch(tmp_path: Path) -> None:
    callback = PerformanceProfilerCallback(output_dir=str(tmp_path))
    _fit(tmp_path, callback, data=_data(tmp_path, workers=2))
    summary = json.loads((tmp_path / "perf_summary.json").read_text())
    assert summary["schema"] == SCHEMA
    assert schema_problems(summary, PerfSummary) == []  # nothing written outside the typed schema
    assert summary["run"]["config"]["image_size"] == 128 and summary["run"]["config_hash"]
    train = [e for e in summary["epochs"] if e["phase"] == "train"]
    val = [e for e in summary["epochs"] if e["phase"] == "validate"]
    assert len(train) == 2 and len(val) == 2  # the sanity-check batch is not an epoch
    assert [e["samples"] for e in train] == [8, 8] and [e["samples"] for e in val] == [4, 4]
    for entry in train + val:
        # A one-batch validation epoch lasts ~0.1 s, so one 10 ms preemption on a loaded 2-core CI
        # machine costs 10% of it: the unnamed remainder is bounded in seconds as well as in share.
        unnamed_s = (1.0 - entry["attributed_share"]) * entry["wall_s"]
        assert entry["attributed_share"] >= 0.9 or unnamed_s < 0.05, (unnamed_s, entry["stages"].keys())
        for stage in ("data_wait", "h2d", "compute"):
            assert entry["stages"][stage]["count"] == entry["batches"]
        for stat in ("count", "mean", "median", "p95", "p99", "std", "min", "max"):
            assert stat in entry["stages"]["compute"]
        assert entry["worker_stages"]["decode"]["count"] == entry["samples"]
        assert entry["workers"] >= 1  # measured inside the worker processes
        assert entry["memory"]["rss_mb"] > 0
    assert train[0]["workers"] == 2  # two batches, one from each worker process
    for entry in val:
        stages = set(entry["stages"])
        assert "metric_compute" in stages
        # in-process evaluation (model.evaluator.workers=0) or the evaluator pool (the default)
        in_process = {"postprocess", "metric_update"} <= stages
        pooled = "handoff" in stages and bool(entry.get("evaluator"))
        assert in_process or pooled, stages
        assert entry["stages"]["metric_compute"]["count"] == 1  # once per epoch
        assert entry["val_vs_train_time_per_sample"] > 0
    # the sanity-check batch already filled the cache: every real validation epoch hits
    for client in ("target", "sample"):  # each client's counters apart
        assert val[1]["cache"][client] == {"hits": 4, "misses": 0, "hit_rate": 1.0}, client
    assert val[1]["counters"]["targets_computed"] == 0
    header = next(csv.reader((tmp_path / "metrics.csv").open()))
    for key in (
        "perf/train/compute/median",
        "perf/validate/metric_compute/median",
        "perf/validate/target_cache_hit_rate",
        "perf/validate/sample_cache_hit_rate",
        "perf/train/data_wait_share",
        "perf/validate/memory/rss_mb",
    ):
        assert key in header
    logged = [k for k in header if k.startswith("perf/")]
    assert logged and [k for k in logged if str(parse_key(k)) != k] == []  # all in the key grammar


def test_data_wait_and_transfer_are_timed_where_they_happen(tmp_path: Path) -> None:
    callback = PerformanceProfilerCallback(summary_file=None)
    _fit(
        tmp_path,
        callback,
        module=_module(SlowTransfer),
        data=_data(tmp_path, reader=f"{__name__}.SlowSynthetic"),
        epochs=1,
    )
    train = next(e for e in callback.epochs if e["phase"] == "train")
    # 4 samples x 30 ms decoded in the main process (no workers): the fetch itself is timed
    assert train["stages"]["data_wait"]["median"] >= 4 * SLEEP_S
    assert train["stages"]["h2d"]["median"] >= SLEEP_S
    # ... and counted once: charging a sleep to a second stage too would push the stages past the wall
    named = sum(stats["total"] for stats in train["stages"].values())
    assert named <= train["wall_s"] * 1.001
    assert train["worker_stages"]["decode"]["median"] >= SLEEP_S


def test_disabled_callback_installs_nothing_and_writes_nothing(tmp_path: Path) -> None:
    callback = PerformanceProfilerCallback(enabled=False, output_dir=str(tmp_path))
    module = _module()
    trainer = _fit(tmp_path, callback, module=module, epochs=1)
    assert isinstance(trainer.profiler, PassThroughProfiler)
    assert isinstance(module.stage_timer, NullStageTimer)
    assert callback.epochs == [] and callback.timeline == [] and callback._clock is None
    assert not (tmp_path / "perf_summary.json").exists()


def test_empty_validation_set_and_no_logger(tmp_path: Path) -> None:
    callback = PerformanceProfilerCallback(output_dir=str(tmp_path))
    _fit(tmp_path, callback, data=_data(tmp_path, val=0), logger=False, epochs=1)
    summary = json.loads((tmp_path / "perf_summary.json").read_text())
    assert [e["phase"] for e in summary["epochs"]] == ["train"]


def test_works_when_wandb_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    callback = PerformanceProfilerCallback(output_dir=str(tmp_path))
    _fit(tmp_path, callback, epochs=1)
    assert (tmp_path / "perf_summary.json").is_file()
