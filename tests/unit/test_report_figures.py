"""Headline figures: steady-state aggregation, cache estimate, and one result whatever the origin."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocr.report.context import Analysis
from ocr.report.epoch_perf import from_metrics, from_summary
from ocr.report.figures import FIGURE_SPECS, compute_figures, spec_for
from ocr.report.sources import load_run
from tests.unit.test_report_builders import analyze, epoch, healthy_epochs, summary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"


def test_steady_state_leaves_out_the_first_epoch() -> None:
    epochs = [epoch("train", 0, wall=50.0), epoch("train", 1, wall=10.0), epoch("train", 2, wall=12.0)]
    figures = analyze(summary(epochs)).figures
    assert figures["train.epochs"] == 3
    assert figures["train.wall_s"] == pytest.approx(11.0)  # median of epochs 1 and 2
    assert figures["train.time_per_sample_s"] == pytest.approx(0.11)
    assert figures["train.stage.compute.share"] == pytest.approx(0.9)
    assert figures["train.stage.compute.median_s"] == pytest.approx(0.9 * 11.0 / 10)


def test_ratio_memory_and_accuracy_figures() -> None:
    doc = summary(healthy_epochs(validate={"wall": 4.0, "samples": 50}))
    figures = analyze(doc, hmeans=[0.2, 0.8, 0.6]).figures
    assert figures["val_vs_train_ratio"] == pytest.approx((4.0 / 50) / (10.0 / 100))
    assert figures["memory.rss_peak_mb"] == 1000.0
    assert figures["val.hmean"] == 0.6 and figures["val.hmean_best"] == 0.8
    # per sample: collate (per batch) is spread over the batch of 10
    assert figures["train.worker.targets.share"] == pytest.approx(
        0.004 / (0.010 + 0.005 + 0.004 + 0.001 / 10)
    )


def test_cache_counts_and_time_saved_estimate() -> None:
    epochs = []
    for i, (rate, targets) in enumerate([(0.0, 0.020), (1.0, 0.001), (1.0, 0.001)]):
        worker = {"decode": 0.01, "transform": 0.005, "targets": targets, "collate": 0.001}
        epochs += [
            epoch("train", i),
            epoch("validate", i, wall=2.0, samples=50, hit_rate=rate, worker=worker),
        ]
    figures = analyze(summary(epochs, cache_enabled=True)).figures
    assert figures["cache.hits"] == 100 and figures["cache.misses"] == 50
    assert figures["cache.hit_rate"] == pytest.approx(100 / 150)
    assert figures["validate.cache.hit_rate"] == 1.0
    # 100 hits x (20 ms on a miss - 1 ms on a hit)
    assert figures["cache.time_saved_s"] == pytest.approx(100 * 0.019)
    assert figures["validate.cache.miss_cost_s"] == 0.020 and figures["validate.cache.hit_cost_s"] == 0.001


def test_every_figure_is_documented() -> None:
    figures = analyze(summary(healthy_epochs()), hmeans=[0.5]).figures
    assert figures
    undocumented = [k for k in figures if spec_for(k) is None]
    assert undocumented == []
    docs = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text()
    for spec in FIGURE_SPECS:
        assert f"`{spec.pattern}`" in docs, spec.pattern


def test_logged_keys_give_the_same_figures_as_the_summary(tmp_path: Path) -> None:
    """The perf/* keys in metrics.csv rebuild the epochs the summary describes."""
    run = load_run(str(FIXTURES / "tb_run"))
    assert run.summary is not None
    from_doc = compute_figures(run, from_summary(run.summary))
    from_keys = compute_figures(run, from_metrics(run))
    assert set(from_doc) == set(from_keys)
    for key, value in from_doc.items():
        assert from_keys[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # and the same through the source when the summary is gone (only metrics.csv)
    partial = tmp_path / "run"
    shutil.copytree(
        FIXTURES / "tb_run", partial, ignore=shutil.ignore_patterns("perf_summary.json", "tensorboard")
    )
    analysis = Analysis.build(load_run(str(partial)))
    assert analysis.perf.origin == "logged perf/* keys"
    assert analysis.figures == pytest.approx(from_doc)


def test_stage_order_and_colours_do_not_depend_on_the_process_hash_seed() -> None:
    """Two stages with equal shares, and a stage without a fixed colour: the same report every run."""
    import os
    import subprocess
    import sys

    code = (
        "from tests.unit.test_report_builders import analyze, healthy_epochs, summary\n"
        "from ocr.report.sections import _stage_table\n"
        "from ocr.report.plots.style import stage_color\n"
        "a = analyze(summary(healthy_epochs()))\n"
        "print(_stage_table(a, 'validate'))\n"
        "print([stage_color(n) for n in ('handoff', 'gt_lookup', 'my_stage')])\n"
    )
    outputs = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1, outputs
    table = outputs.pop()
    assert table.index("`metric_update`") < table.index("`postprocess`")  # tied at 10%: by name
