"""A long run shaped like the 43-epoch GPU run (H200, 12 persistent workers, SROIE) that showed
what the report got wrong: a memory "leak" that was the validation workers starting, an
unreadable epoch axis, a stale memory title and a legend over the data, a data-wait variance
finding ranked by a meaningless ratio, and a last epoch cut short by ``trainer.max_time``
reported as a real epoch. The numbers below are that run's (one epoch's statistics, repeated)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from ocr.perf.stats import summarize
from ocr.report.compare import compare
from ocr.report.plots import compare as compare_plots
from ocr.report.plots import single
from ocr.report.plots.style import tick_step
from ocr.report.rules.memory import memory_trend
from ocr.report.rules.waits import batches_over, stage_spread
from ocr.report.sections import SectionInput, render
from tests.unit.test_report_builders import analyze, epoch, summary

PROCESSES_BEFORE, PROCESSES_AFTER = 13.0, 25.0  # 12 training workers (+1 child), then + 12 validation


def stats(
    count: int, median: float, p95: float, p99: float, slowest: float, total: float
) -> dict[str, float]:
    return {
        "count": float(count),
        "total": total,
        "mean": total / count,
        "median": median,
        "p95": p95,
        "p99": p99,
        "std": 0.0,
        "min": median * 0.7,
        "max": slowest,
    }


def long_run(
    n_train: int = 43,
    first_val: int = 4,
    val_every: int = 5,
    partial_last: bool = True,
    worker_leak: float = 0.0,  # per-process RSS growth per epoch after the last process change
) -> dict[str, Any]:
    epochs = []
    for i in range(n_train):
        processes = PROCESSES_BEFORE if i < first_val else PROCESSES_AFTER
        per_process = 815.0 if i < first_val else 1234.0 * (1 + worker_leak * (i - first_val)) + (i % 3)
        rss, workers_rss = 8247.0 + 5 * (i >= first_val) + 0.5 * i, per_process * processes
        train = epoch(
            "train",
            i,
            wall=3.54,
            samples=400,
            batches=25,
            shares={"data_wait": 0.405, "h2d": 0.097, "compute": 0.45},
            rss=rss,
            workers_rss=workers_rss,
        )
        train["stages"]["data_wait"] = stats(25, 0.000138, 0.162, 0.950, 1.190, 1.434)
        epochs.append(train)
        if i >= first_val and (i - first_val) % val_every == 0:
            val = epoch(
                "validate",
                i,
                wall=4.78,
                samples=100,
                batches=13,
                shares={"data_wait": 0.271, "compute": 0.047, "postprocess": 0.24, "metric_update": 0.418},
                rss=rss,
                workers_rss=workers_rss,
            )
            val["stages"]["data_wait"] = stats(13, 0.000163, 0.528, 1.160, 1.319, 1.321)
            epochs.append(val)
    if partial_last:  # trainer.max_time stopped the run after one batch of the last epoch
        cut = epoch(
            "train",
            n_train,
            wall=1.55,
            samples=16,
            batches=1,
            shares={"data_wait": 0.954, "compute": 0.03},
            rss=8627.0,
            workers_rss=31709.0,
        )
        cut["stages"]["data_wait"] = stats(1, 1.476, 1.476, 1.476, 1.476, 1.476)
        epochs.append(cut)
    for e in epochs:
        e["memory"]["workers"] = PROCESSES_BEFORE if e["epoch"] < first_val else PROCESSES_AFTER
    doc = summary(epochs, cpu_count=16, num_workers=12)
    doc["memory_timeline"] = [
        {
            "t": 16.5 + 3.6 * k,
            "phase": e["phase"],
            "epoch": e["epoch"],
            "rss_mb": e["memory"]["rss_mb"],
            "workers_rss_mb": e["memory"]["workers_rss_mb"],
            "workers": e["memory"]["workers"],
        }
        for k, e in enumerate(doc["epochs"])
    ]
    return doc


HMEANS = [0.413, 0.971, 0.819, 0.985, 0.990, 0.993, 0.994, 0.993]


def findings(doc: dict[str, Any], rule: str) -> list:
    return [f for f in analyze(doc).findings if f.rule == rule]


# --- 1. memory growth: a step from more processes is not a leak --------------------------------


def test_worker_processes_joining_is_not_memory_growth() -> None:
    doc = long_run()
    first, last = doc["epochs"][1]["memory"], doc["epochs"][-1]["memory"]
    assert last["workers_rss_mb"] / first["workers_rss_mb"] - 1 > 1.9  # the old rule's "196% growth"
    analysis = analyze(doc)
    assert [f for f in analysis.findings if f.rule == "memory_growth"] == []
    trend = memory_trend(analysis, "workers_rss_mb")
    assert trend is not None and trend.per_process and trend.growth < 0.05
    assert trend.first.epoch == 4 and trend.step is not None and trend.step.epoch == 4
    text = render(SectionInput(analysis, {}))
    assert "the readings before the worker process count last changed (13 -> 25 at epoch 4" in text
    assert "a step from more processes, not growth" in text
    assert "Verdict: below the `memory_growth` rule limit (25.0%)" in text


def test_per_process_growth_after_the_last_process_change_fires() -> None:
    finding = findings(long_run(worker_leak=0.02, partial_last=False), "memory_growth")
    assert len(finding) == 1
    f = finding[0]
    assert f.title.startswith("Memory per DataLoader worker process keeps growing")
    assert f.title.endswith("over epochs 4-42")
    assert f.evidence[0].startswith("RSS per worker process 1235 MB -> ")
    assert f.evidence[0].endswith("epoch 4 -> 42, 25 processes (sum 30.15 GB -> 53.02 GB)")
    assert any("later half" in line for line in f.evidence)
    assert any("13 -> 25 at epoch 4" in line for line in f.evidence)
    assert f.numbers["growth"] > 0.25


def test_a_step_that_then_stays_flat_is_not_sustained() -> None:
    epochs = [epoch("train", i, rss=1000.0 if i < 3 else 2000.0) for i in range(10)]
    analysis = analyze(summary(epochs))
    trend = memory_trend(analysis, "rss_mb")
    assert trend is not None and trend.growth > 0.25 and not trend.sustained
    assert [f for f in analysis.findings if f.rule == "memory_growth"] == []


# --- 4. data wait that comes in stalls ----------------------------------------------------------


def test_data_wait_stalls_are_ranked_by_their_share_not_the_ratio() -> None:
    analysis = analyze(long_run())
    stalls = {
        f.title.split()[0]: f for f in analysis.findings if f.rule == "variance" and "stalls" in f.title
    }
    train = stalls["Train"]
    assert "x the median" not in train.title
    assert (
        train.title
        == "Train data wait comes in stalls: 40.4% of the epoch, while the median batch waits 0.138 ms"
    )
    # impact = the waits above the median batch's, as a share of the epoch (not p95 / median)
    assert train.impact == pytest.approx((1.434 - 25 * 0.000138) / 3.54)
    assert train.recommendation.startswith("The median batch does not wait at all")
    assert "the slowest batch of an epoch holds 83.0% of the epoch's data wait" in " ".join(train.evidence)
    assert "at least 2 of 25 batches per epoch wait more than 10.0 ms" in " ".join(train.evidence)
    # the data_wait finding no longer prescribes more workers: the rest of the epoch is fed
    wait = next(f for f in analysis.findings if f.rule == "data_wait" and f.title.startswith("Train"))
    assert "num_workers" not in wait.recommendation
    assert "more workers cannot make one batch arrive sooner" in wait.recommendation
    assert "without it data wait would be 6.9% of the epoch" in " ".join(wait.evidence)


def test_batches_over_is_a_true_lower_bound() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 13, 25, 100):
        for _ in range(50):
            values = np.where(rng.random(n) < 0.2, rng.exponential(0.3, n), rng.exponential(0.0002, n))
            bound = batches_over(summarize(list(values)), 0.010)
            assert bound is not None and bound <= int((values > 0.010).sum())
    # 25 batches, p95 above the limit: the 24th and 25th of the sorted waits are
    assert batches_over(stats(25, 0.0001, 0.16, 0.95, 1.19, 1.43), 0.010) == 2
    assert batches_over({"count": 4.0}, 0.01) is None  # no max: logged keys, not the summary


def test_stall_spread_needs_the_summary_statistics() -> None:
    analysis = analyze(long_run())
    spread = stage_spread(analysis, "validate", "data_wait")
    assert spread is not None and spread.batches == 13
    assert spread.slowest_share == pytest.approx(1.319 / 1.321)


# --- 5. an epoch cut short ------------------------------------------------------------------------


def test_an_epoch_cut_short_is_marked_and_left_out_of_the_steady_state() -> None:
    full, cut = analyze(long_run(partial_last=False)), analyze(long_run())
    assert [(e.phase, e.epoch) for e in cut.perf.epochs if e.partial] == [("train", 43)]
    for key in ("train.time_per_sample_s", "train.data_wait_share", "train.stage.data_wait.p95_s"):
        assert cut.figures[key] == pytest.approx(full.figures[key]), key
    assert cut.figures["train.epochs"] == 44  # measured, all of them
    text = render(SectionInput(cut, {}))
    assert "training 44 (epoch 43 partial: 16 of 400 samples)" in text
    assert "| 43 (partial) | 96.9 ms |" in text
    assert "Training epoch 43 was cut short (16 of 400 samples)" in text


# --- 2, 3. plots that stay readable with many epochs ---------------------------------------------


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Figure]]:
    """The plots' figures, drawn and kept open instead of saved."""
    figures: dict[str, Figure] = {}

    def keep(fig: Figure, path: Path, tight: bool = True) -> Path:
        if tight:
            fig.tight_layout()
        fig.canvas.draw()
        figures[path.stem] = fig
        return path

    monkeypatch.setattr(single, "save", keep)
    monkeypatch.setattr(compare_plots, "save", keep)
    yield figures
    for fig in figures.values():
        single.plt.close(fig)


def _labels(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def _overlapping(ax: Any) -> bool:
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    return any(a.overlaps(b) for a, b in itertools.pairwise(boxes))


def test_tick_step_is_a_round_number() -> None:
    assert [tick_step(n) for n in (8, 12, 13, 25, 43, 121, 1000)] == [1, 1, 2, 5, 5, 20, 100]


def test_stages_per_epoch_labels_stay_readable(drawn: dict[str, Figure], tmp_path: Path) -> None:
    analysis = analyze(long_run())
    single.stages_per_epoch(analysis, tmp_path / "stages_per_epoch.png")
    train, val = drawn["stages_per_epoch"].axes[:2]
    assert len(train.patches) >= 44  # a bar per epoch is kept
    labels = _labels(train)
    assert labels == [str(e) for e in range(0, 44, 5)]
    assert len(train.get_xticks()) + len(train.get_xticks(minor=True)) == 44  # a tick per bar
    assert not _overlapping(train) and not _overlapping(val)
    assert _labels(val) == [str(e) for e in range(4, 40, 5)]
    assert any(t.get_text() == "partial: 16 of 400 samples" for t in train.texts)


def test_time_per_sample_leaves_out_the_cut_epoch_and_crowded_labels(
    drawn: dict[str, Figure], tmp_path: Path
) -> None:
    single.time_per_sample(analyze(long_run()), tmp_path / "time_per_sample.png")
    ax = drawn["time_per_sample"].axes[0]
    train_line = ax.get_lines()[0]
    assert 43 not in np.asarray(train_line.get_xdata()).tolist()
    texts = [t.get_text() for t in ax.texts]
    assert not any(t.startswith("val/train") for t in texts)  # 8 validation epochs: the table has them
    assert any("not drawn (cut short): training epoch 43 (16 of 400 samples)" in t for t in texts)


def test_memory_plot_title_legend_and_process_change(drawn: dict[str, Figure], tmp_path: Path) -> None:
    single.memory(analyze(long_run()), tmp_path / "memory.png")
    ax = drawn["memory"].axes[0]
    assert "N batches" not in ax.get_title()
    box = ax.get_legend()
    assert box is not None
    legend = box.get_window_extent()
    assert legend.y0 >= ax.get_window_extent().y1  # above the axes: it covers no reading
    assert not legend.overlaps(ax.title.get_window_extent())
    assert any(t.get_text() == "worker processes 13 -> 25" for t in ax.texts)


def test_memory_plot_without_timeline_thins_its_labels(drawn: dict[str, Figure], tmp_path: Path) -> None:
    doc = long_run()
    doc["memory_timeline"] = []
    single.memory(analyze(doc), tmp_path / "memory.png")
    ax = drawn["memory"].axes[0]
    assert len(_labels(ax)) <= 12 and not _overlapping(ax)


def test_hmean_labels_stay_inside_the_axes(drawn: dict[str, Figure], tmp_path: Path) -> None:
    single.hmean(analyze(long_run(), hmeans=HMEANS), tmp_path / "hmean.png")
    ax = drawn["hmean"].axes[0]
    top = ax.get_window_extent().y1
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == len(HMEANS)
    assert all(t.get_window_extent().y1 <= top for t in labels)
    assert not any(t.get_window_extent().overlaps(ax.title.get_window_extent()) for t in labels)


def test_compare_overlay_leaves_out_the_cut_epoch(drawn: dict[str, Figure], tmp_path: Path) -> None:
    a, b = analyze(long_run(), name="cut"), analyze(long_run(partial_last=False), name="full")
    compare_plots.time_per_sample(compare([a, b]), tmp_path / "compare_time_per_sample.png")
    ax = drawn["compare_time_per_sample"].axes[0]
    assert 43 not in np.asarray(ax.get_lines()[0].get_xdata()).tolist()
    assert any("A: cut, training epoch 43" in t.get_text() for t in ax.texts)
