"""Stage statistics and their DDP merge; the action-to-stage mapping of the profiler tap."""

from __future__ import annotations

import numpy as np
import pytest

from ocr.callbacks.performance_profiler import classify_action
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
