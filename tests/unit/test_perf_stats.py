"""Stage statistics and their DDP merge; the action-to-stage mapping of the profiler tap."""

from __future__ import annotations

import numpy as np
import pytest

from ocr.perf.aggregate import merge_ranks
from ocr.perf.clock import classify_action
from ocr.perf.stats import merge_rank_stats, summarize


def test_summarize_matches_numpy() -> None:
    values = np.random.default_rng(0).exponential(0.01, 1000)
    stats = summarize(values.tolist())
    assert stats["count"] == 1000
    assert stats["total"] == pytest.approx(values.sum())
    assert stats["median"] == pytest.approx(np.median(values))
    assert stats["p95"] == pytest.approx(np.percentile(values, 95))
    assert stats["p99"] == pytest.approx(np.percentile(values, 99))
    assert stats["std"] == pytest.approx(values.std())
    assert summarize([])["count"] == 0


def test_merge_pools_mean_and_std_exactly_and_takes_max_percentiles() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.1, 300), rng.normal(2.0, 0.5, 100)
    merged = merge_rank_stats([summarize(a.tolist()), summarize(b.tolist())])
    both = np.concatenate([a, b])
    assert merged["count"] == 400
    assert merged["mean"] == pytest.approx(both.mean())
    assert merged["std"] == pytest.approx(both.std())
    assert merged["p95"] == pytest.approx(max(np.percentile(a, 95), np.percentile(b, 95)))
    assert merged["min"] == pytest.approx(both.min()) and merged["max"] == pytest.approx(both.max())
    assert merge_rank_stats([summarize([]), summarize([1.0])])["count"] == 1


@pytest.mark.parametrize(
    ("action", "stage"),
    [
        ("[_TrainingEpochLoop].train_dataloader_next", "data_wait"),
        ("[_EvaluationLoop].val_next", "data_wait"),
        ("[_PredictionLoop].predict_next", "data_wait"),
        ("[Strategy]SingleDeviceStrategy.batch_to_device", "h2d"),
        ("run_training_batch", "compute"),
        ("[Strategy]DDPStrategy.validation_step", "compute"),
        ("[Strategy]DDPStrategy.training_step", None),  # nested in run_training_batch
        ("[Callback]ModelCheckpoint{...}.on_validation_end", "callbacks"),
        ("[Callback]PerformanceProfilerCallback.on_train_batch_start", "profiler"),
        ("[LightningModule]DBNetModule.on_validation_epoch_end", "hooks"),
        ("save_checkpoint", "checkpoint"),
        ("run_training_epoch", None),  # the whole epoch: never a stage
    ],
)
def test_action_classification(action: str, stage: str | None) -> None:
    assert classify_action(action, "PerformanceProfilerCallback") == stage


def test_ranks_merge_into_one_entry_and_keep_their_own_rows() -> None:
    from tests.unit.test_perf_schema import rank_payload

    fast, slow = rank_payload(1.0, "validate", 0), rank_payload(2.0, "validate", 1)
    slow["stages"]["data_wait"] = summarize([0.5, 0.1, 0.1])
    entry = merge_ranks("validate", 3, [fast, slow])
    assert (entry["world_size"], entry["samples"], entry["batches"]) == (2, 24, 6)
    assert entry["wall_s"] == 2.0 and entry["time_per_sample_s"] == pytest.approx(2.0 * 2 / 24)
    assert [r["rank"] for r in entry["ranks"]] == [0, 1]
    assert entry["data_wait_share"] == entry["ranks"][1]["data_wait_share"] == pytest.approx(0.7 / 2.0)
    assert entry["attributed_share"] == min(r["attributed_share"] for r in entry["ranks"])
    assert entry["counters"]["target_cache_hits"] == 18 and entry["cache"]["target"]["hit_rate"] == 0.75
    assert entry["memory"] == fast["memory"]  # rank zero's
    pool = entry["evaluator"]
    assert (pool["workers"], pool["images"]) == (4, 8) and pool["busy_s"] == pytest.approx(0.8 + 1.8)
    assert pool["drain_s"] == 0.1 and pool["hidden_share"] == pytest.approx(1 - 0.3 / 2.6)
