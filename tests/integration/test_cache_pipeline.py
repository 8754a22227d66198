"""The cache in real runs: same results with it on or off, counters per epoch, wiring, bench CLIs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import pytest

from ocr.bench.cli import main as bench_main
from ocr.bench.pipeline import run_pipeline
from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
from ocr.data.datamodule import ReceiptDataModule
from ocr.data.sample_cache import CachedSampleDataset
from ocr.targets.cache import PolygonCache
from tests.helpers import TINY, compose_config

VAL = 6


def _validate(tmp_path: Path, model: L.LightningModule, name: str, overrides: list[str]) -> dict[str, Any]:
    cfg = compose_config(
        "train",
        tmp_path / name,
        [*TINY, f"data.val.num_samples={VAL}", "data.loader.val_batch_size=2", *overrides],
    )
    profiler = PerformanceProfilerCallback(output_dir=str(tmp_path / name))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[profiler],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.validate(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"), verbose=False)
    return {
        "metrics": dict(model.last_val_metrics),  # type: ignore[attr-defined]
        "loss_prob": trainer.callback_metrics["val/loss_prob"].item(),
        "counters": profiler.epochs[-1]["counters"],
    }


def test_same_seed_gives_identical_loss_and_metrics_with_the_cache_on_and_off(tmp_path: Path) -> None:
    """Off, cold and warm: the same loss and every metric, exactly."""
    cfg = compose_config("train", tmp_path / "model", TINY)
    L.seed_everything(0, workers=True)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    cache = [f"data.cache.dir={tmp_path / 'cache'}", "data.loader.num_workers=2"]
    off = _validate(tmp_path, model, "off", ["data.cache.enabled=false"])
    cold = _validate(tmp_path, model, "cold", cache)
    warm = _validate(tmp_path, model, "warm", cache)
    assert off["counters"]["targets_computed"] == VAL and "target_cache_hits" not in off["counters"]
    assert cold["counters"]["target_cache_misses"] == VAL and cold["counters"]["sample_cache_misses"] == VAL
    assert warm["counters"]["target_cache_hits"] == VAL and warm["counters"]["sample_cache_hits"] == VAL
    assert warm["counters"]["targets_computed"] == 0
    for run in (cold, warm):  # exactly, not approximately
        assert run["loss_prob"] == off["loss_prob"]
        assert run["metrics"] == off["metrics"]
    assert off["metrics"]["val/num_images"] == VAL and np.isfinite(off["loss_prob"])


def test_after_warm_up_every_lookup_hits_and_no_map_is_computed(tmp_path: Path) -> None:
    """Deterministic counters of two validation epochs through 2 workers (fresh processes per epoch)."""
    result = run_pipeline(
        None,
        reader="synthetic",  # the data config: data=synthetic
        workers=2,
        epochs=2,
        image_size=128,
        batch_size=2,
        cache_dir=str(tmp_path / "cache"),
        overrides=["data.val.num_samples=8"],
        output=str(tmp_path / "out"),
    )
    first, second = result["epochs"]
    assert first["samples"] == second["samples"] == 8 and first["workers"] == second["workers"] == 2
    assert first["target_cache"] == {"hits": 0, "misses": 8, "hit_rate": 0.0}
    assert first["sample_cache"] == {"hits": 0, "misses": 8, "hit_rate": 0.0}
    assert first["targets_computed"] == 8
    assert second["target_cache"] == {"hits": 8, "misses": 0, "hit_rate": 1.0}
    assert second["sample_cache"] == {"hits": 8, "misses": 0, "hit_rate": 1.0}
    assert second["targets_computed"] == 0
    assert second["worker_ms_per_image"]["decode"] == 0.0
    assert result["metrics_identical_across_epochs"]
    assert (tmp_path / "out" / "perf_summary.json").is_file()


def _module(tmp_path: Path, **kwargs: Any) -> ReceiptDataModule:
    args: dict[str, Any] = {
        "reader": {"_target_": "ocr.data.datasets.synthetic.SyntheticReceipts"},
        "train": {"num_samples": 2},
        "val": {"num_samples": 2},
        "image_size": 64,
        "loader": {"num_workers": 0},
        "cache": {"dir": str(tmp_path / "cache")},
    }
    for key, value in kwargs.items():
        args[key] = {**args.get(key, {}), **value} if isinstance(value, dict) else value
    module = ReceiptDataModule(**args)
    module.setup("fit")
    return module


def test_where_the_cache_applies(tmp_path: Path) -> None:
    default = _module(tmp_path)
    assert not default._collate("train").use_cache, "random augmentation must bypass the cache"
    assert default._collate("val").use_cache
    assert isinstance(default.val_dataloader().dataset, CachedSampleDataset)
    assert not isinstance(default.train_dataloader().dataset, CachedSampleDataset)
    opt_in = _module(tmp_path, augment={"enabled": False}, cache={"train": True})
    assert opt_in._collate("train").use_cache
    assert not isinstance(
        opt_in.train_dataloader().dataset, CachedSampleDataset
    )  # whole samples: validation only
    augmented_opt_in = _module(tmp_path, cache={"train": True})
    assert not augmented_opt_in._collate("train").use_cache
    no_samples = _module(tmp_path, cache={"samples": False})
    assert no_samples._collate("val").use_cache
    assert not isinstance(no_samples.val_dataloader().dataset, CachedSampleDataset)
    disabled = _module(tmp_path, cache={"enabled": False})
    assert disabled.target_cache() is None and not disabled._collate("val").use_cache
    loader = default.val_dataloader()
    cache = default.target_cache()
    assert isinstance(cache, PolygonCache) and cache.cache_dir == tmp_path / "cache"
    for part in (loader.dataset, loader.collate_fn):  # what DataLoader workers receive
        assert len(pickle.dumps(part)) < 200_000


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_bench_targets_reports_a_real_cache_hit(sroie_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench_main(
        ["targets", "--data", str(sroie_root / "val"), "--size", "640", "--limit", "3", "--repeats", "1"]
    )
    result = _last_json(capsys)
    for key in (
        "images",
        "reference_ms",
        "fast_db_ms",
        "fast_exact_ms",
        "cache_hit_ms",
        "speedup_db",
        "speedup_exact",
        "db_identical_images",
    ):
        assert key in result, key
    assert result["images"] == result["db_identical_images"] == result["cache_identical_images"] == 3
    assert result["cache_hit_ms"] > 0
