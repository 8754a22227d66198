"""The plots of one run's report. Each returns the PNG path, or a reason why it could not be drawn."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.epoch_perf import partial_text
from ocr.report.figures import PER_BATCH_WORKER_STAGES, STATS
from ocr.report.plots.style import (
    PHASE_COLOR,
    epoch_axes,
    epoch_axis,
    figure,
    note,
    plt,
    save,
    stage_color,
    stage_sort_key,
)

PlotResult = tuple[Path | None, str]
MIN_SHARE = 0.01  # stages below this share in every epoch are drawn together as "other"


def _phases(analysis: Analysis) -> list[str]:
    return [p for p in ("train", "validate") if analysis.epochs(p)] or analysis.perf.phases


def stages_per_epoch(analysis: Analysis, path: Path) -> PlotResult:
    phases = [p for p in _phases(analysis) if any(e.stages and e.wall_s for e in analysis.epochs(p))]
    if not phases:
        return None, "no per-stage totals in this run"
    counts = [len([e for e in analysis.epochs(p) if e.wall_s]) for p in phases]
    fig, axes = figure(
        ncols=len(phases),
        width=sum(3.0 + min(n, 30) * 0.12 for n in counts) + 2.5 * len(phases),
        height=4.8,
        gridspec_kw={"width_ratios": [max(6, min(n, 30)) for n in counts]},
    )
    for ax, phase in zip(axes[0], phases, strict=True):
        epochs = [e for e in analysis.epochs(phase) if e.wall_s]
        names = sorted({s for e in epochs for s in e.stages}, key=stage_sort_key)
        big = [s for s in names if any((e.stage_share(s) or 0) >= MIN_SHARE for e in epochs)]
        x = np.arange(len(epochs))
        bottom = np.zeros(len(epochs))
        series: dict[str, np.ndarray] = {
            s: np.array([e.stages.get(s, {}).get("total", 0.0) for e in epochs]) for s in big
        }
        series["other"] = np.array(
            [sum(v.get("total", 0.0) for s, v in e.stages.items() if s not in big) for e in epochs]
        )
        attributed = sum(series.values(), np.zeros(len(epochs)))
        series["unattributed"] = np.maximum(0.0, np.array([e.wall_s or 0.0 for e in epochs]) - attributed)
        hatch = ["//" if e.partial else None for e in epochs]
        for name, values in series.items():
            if not values.any():
                continue
            ax.bar(
                x,
                values,
                0.7 if len(epochs) > 20 else 0.6,
                bottom=bottom,
                label=name,
                color=stage_color(name),
                edgecolor="white",
                linewidth=0.5 if len(epochs) <= 20 else 0.2,
                hatch=hatch,
            )
            bottom += values
        for i, e in enumerate(epochs):
            if e.partial:
                ax.annotate(
                    f"partial: {partial_text(e, epochs)}",
                    (i, bottom[i]),
                    textcoords="offset points",
                    xytext=(0, 4),
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7,
                )
        epoch_axis(ax, list(x), [str(e.epoch) for e in epochs])
        ax.set_xlim(-0.7, len(epochs) - 0.3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("time per epoch (s)")
        ax.set_title(f"{fmt.PHASE_LABEL.get(phase, phase)}: where each epoch's time goes")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="stage", frameon=False)
    return save(fig, path), ""


def stage_distribution(analysis: Analysis, path: Path) -> PlotResult:
    panels = []
    for phase in _phases(analysis):
        for kind, label in (("stage", "per batch"), ("worker", "per sample, in workers")):
            medians = analysis.stage_figures(phase, kind, "median_s")
            names = sorted((n for n, median in medians.items() if median > 0), key=stage_sort_key)
            if names:
                panels.append((phase, kind, label, names))
    if not panels:
        return None, "no per-stage statistics in this run"
    ncols = min(2, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = figure(ncols=ncols, nrows=nrows, width=13.0, height=3.4 * nrows + 1.0)
    markers = {"median": "o", "mean": "D", "p95": "^", "p99": "x"}  # legend labels: the statistics' names
    for ax, (phase, kind, label, names) in zip(axes.flat, panels, strict=False):
        y = np.arange(len(names))
        right = 0.0
        for i, name in enumerate(names):
            values = {s: analysis.fig(f"{phase}.{kind}.{name}.{s}_s") for s in STATS}
            present = [v for v in values.values() if v]
            lo, hi = min(present), max(present)
            right = max(right, hi)
            ax.plot([1000 * lo, 1000 * hi], [i, i], color=stage_color(name), linewidth=3, alpha=0.5)
            for stat, marker in markers.items():
                value = values.get(stat)
                if value:
                    ax.plot(
                        1000 * value,
                        i,
                        marker,
                        color="black" if stat == "median" else stage_color(name),
                        markersize=6,
                        linestyle="none",
                        zorder=3 if stat == "median" else 2,
                    )
            ax.annotate(
                f"median {fmt.ms(values['median'])}, p95 {fmt.ms(values['p95'])}",
                (1000 * hi, i),
                textcoords="offset points",
                xytext=(8, 0),
                va="center",
                fontsize=8,
            )
        # worker stages are per sample except collate, timed once per batch
        ax.set_yticks(
            y, [f"{n} (per batch)" if kind == "worker" and n in PER_BATCH_WORKER_STAGES else n for n in names]
        )
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.set_xlim(right=1000 * right * 40)
        ax.set_xlabel("time (ms, log scale)")
        ax.set_title(
            f"{fmt.PHASE_LABEL.get(phase, phase)}: "
            f"{'stages' if kind == 'stage' else 'worker stages'} ({label})"
        )
        ax.grid(axis="x", which="major", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles = [
        plt.Line2D(
            [], [], marker=marker, color="black" if stat == "median" else "grey", linestyle="none", label=stat
        )
        for stat, marker in markers.items()
    ]
    fig.legend(handles=handles, loc="upper center", ncols=4, bbox_to_anchor=(0.5, 0.955), frameon=False)
    fig.suptitle("Time distribution per stage (steady epochs; bar = median to p99 range)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save(fig, path, tight=False), ""


MAX_RATIO_LABELS = 6  # more validation epochs than this: the val/train labels crowd (the table has them)


def time_per_sample(analysis: Analysis, path: Path) -> PlotResult:
    phases = [p for p in _phases(analysis) if any(e.time_per_sample_s for e in analysis.epochs(p))]
    if not phases:
        return None, "no time per sample in this run"
    fig, axes = figure(width=9.0, height=4.6)
    ax = axes[0][0]
    left_out = []
    for phase in phases:
        measured = [e for e in analysis.epochs(phase) if e.time_per_sample_s]
        # an epoch cut short times one or two batches (the epoch's start), not the epoch: not drawn
        left_out += [
            f"{fmt.PHASE_LABEL.get(phase, phase)} epoch {e.epoch} ({partial_text(e, measured)})"
            for e in measured
            if e.partial
        ]
        epochs = [e for e in measured if not e.partial]
        ax.plot(
            [e.epoch for e in epochs],
            [1000 * (e.time_per_sample_s or 0) for e in epochs],
            "o-",
            color=PHASE_COLOR.get(phase),
            label=fmt.PHASE_LABEL.get(phase, phase),
            linewidth=2,
            markersize=6 if len(epochs) <= 20 else 3.5,
        )
    ratios = [
        e
        for e in analysis.epochs("validate")
        if e.val_vs_train_time_per_sample and e.time_per_sample_s and not e.partial
    ]
    if len(ratios) <= MAX_RATIO_LABELS:
        for e in ratios:
            ax.annotate(
                f"val/train {e.val_vs_train_time_per_sample:.2f}x",
                (e.epoch, 1000 * (e.time_per_sample_s or 0)),
                textcoords="offset points",
                xytext=(0, -18),
                ha="center",
                fontsize=8,
                color="#d62728",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#d62728", "lw": 0.5, "alpha": 0.9},
            )
    ratio = analysis.fig("val_vs_train_ratio")
    notes = []
    if ratio is not None:
        notes.append(f"steady validation / training time per sample: {ratio:.2f}x")
    if left_out:
        notes.append("not drawn (cut short): " + ", ".join(left_out))
    if notes:
        note(ax, "\n".join(notes))
    epoch_axes(
        ax, "time per sample (ms)", "Training vs validation: time per sample per epoch (lower is better)"
    )
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.15)
    ax.margins(x=0.04)
    ax.legend(loc="upper right")
    return save(fig, path), ""


def _mark_process_changes(ax: Any, points: list[tuple[float, float | None]]) -> None:
    """A dotted line and a label where the workers' sum changes because the process count did:
    where the child-process count of consecutive ``(x, count)`` readings changes."""
    for (_, before), (x, after) in itertools.pairwise(points):
        if before is None or after is None or before == after:
            continue
        ax.axvline(x, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(
            f"worker processes {before:.0f} -> {after:.0f}",
            (x, 0.5),
            xycoords=("data", "axes fraction"),
            xytext=(4, 0),
            textcoords="offset points",
            rotation=90,
            va="center",
            fontsize=8,
            color="0.3",
        )


def memory(analysis: Analysis, path: Path) -> PlotResult:
    timeline = analysis.perf.memory_timeline
    series = {
        "rss_mb": ("main process RSS", "#1f77b4"),
        "workers_rss_mb": ("workers RSS (sum over processes)", "#ff7f0e"),
        "gpu_allocated_mb": ("GPU allocated", "#2ca02c"),
        "gpu_peak_mb": ("GPU peak allocated", "#9467bd"),
    }
    # phase markers in black/white so that they never read as another series
    phase_style = {"train": {"marker": "o", "mfc": "black"}, "validate": {"marker": "s", "mfc": "white"}}
    fig, axes = figure(width=10.0, height=5.2)
    ax = axes[0][0]
    if timeline:
        t = np.array([p["t"] for p in timeline])
        small = len(timeline) > 60
        for key, (label, color) in series.items():
            if any(key in p for p in timeline):
                ax.plot(t, [p.get(key, np.nan) for p in timeline], "-", label=label, linewidth=2, color=color)
                for phase, style in phase_style.items():
                    points = [p for p in timeline if p.get("phase") == phase and key in p]
                    ax.plot(
                        [p["t"] for p in points],
                        [p[key] for p in points],
                        linestyle="none",
                        color="black",
                        markersize=3.5 if small else 5,
                        **style,
                    )
        for phase, style in phase_style.items():
            ax.plot(
                [],
                [],
                linestyle="none",
                color="black",
                label=f"reading during {fmt.PHASE_LABEL[phase]}",
                **style,
            )
        _mark_process_changes(ax, [(p["t"], p.get("workers")) for p in timeline])
        ax.set_xlabel("time since the profiler started (s)")
        ax.set_title("Memory over time (each marker is one reading: during an epoch and at its end)")
        ax.margins(x=0.04)
    else:
        epochs = [e for e in analysis.perf.epochs if e.memory]
        if not epochs:
            plt.close(fig)
            return None, "no memory readings in this run"
        x = np.arange(len(epochs))
        for key, (label, color) in series.items():
            if any(key in e.memory for e in epochs):
                ax.plot(
                    x,
                    [e.memory.get(key, np.nan) for e in epochs],
                    "o-",
                    label=label,
                    color=color,
                    markersize=5 if len(epochs) <= 30 else 3,
                )
        epoch_axis(
            ax,
            list(x),
            [f"{ {'validate': 'val'}.get(e.phase, e.phase) } {e.epoch}" for e in epochs],
        )
        ax.tick_params(axis="x", labelrotation=30)
        _mark_process_changes(ax, [(float(i), e.memory.get("workers")) for i, e in enumerate(epochs)])
        ax.set_xlabel("epoch end (phase, epoch)")
        ax.set_title("Memory at each epoch end (no timeline in this source)")
    ax.set_ylabel("memory (MB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    # above the axes, under the title: a legend inside would cover readings
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.06), ncols=3, frameon=False, fontsize=8)
    ax.title.set_position((0.5, 1.2))
    return save(fig, path), ""


MAX_VALUE_LABELS = 12  # hmean labels on at most this many points (the table has every value)
LABEL_CLEAR = 0.05  # score units a label keeps from the other curves' points at the same epoch
LABEL_OFFSET = 0.06  # score units from a point to its label's centre (10 pt at the plot's size)


def _label_place(y: float, others: list[float]) -> tuple[float, str, float, str]:
    """(dy points, va, dx points, ha) for a value label: below, above, else right of the point.

    Below or above only where no other curve's point at the same epoch is within reach and the
    label stays inside the 0-1 range (above 1 it runs into the title); otherwise to the right.
    """
    for sign, va in ((-1, "top"), (1, "bottom")):
        centre = y + sign * LABEL_OFFSET
        if 0.0 <= centre <= 0.98 and all(abs(o - centre) > LABEL_CLEAR for o in others):
            return 8.0 * sign, va, 0.0, "center"
    return 0.0, "center", 7.0, "left"


def hmean(analysis: Analysis, path: Path) -> PlotResult:
    run = analysis.run
    curves = {k: run.series(k) for k in ("val/hmean", "val/precision", "val/recall")}
    if curves["val/hmean"].empty:
        return None, "val/hmean was not logged"
    fig, axes = figure(width=9.0, height=4.6)
    ax = axes[0][0]
    for key, style in (("val/hmean", "o-"), ("val/precision", "s--"), ("val/recall", "^--")):
        rows = curves[key]
        if rows.empty:
            continue
        x = rows["epoch"].astype("float").to_numpy()
        y = rows["value"].to_numpy()
        ax.plot(
            x,
            y,
            style,
            label=key.split("/")[1],
            linewidth=2.2 if key == "val/hmean" else 1.2,
            markersize=6 if len(x) <= 30 else 3,
            zorder=3 if key == "val/hmean" else 2,
        )
    hm = curves["val/hmean"]
    if len(hm) <= MAX_VALUE_LABELS:
        others = [
            dict(zip(rows["epoch"].astype("float"), rows["value"], strict=True))
            for key, rows in curves.items()
            if key != "val/hmean" and not rows.empty
        ]
        for xi, yi in zip(hm["epoch"].astype("float"), hm["value"], strict=True):
            near = [o[xi] for o in others if xi in o]
            dy, va, dx, ha = _label_place(float(yi), [float(v) for v in near])
            ax.annotate(
                f"{yi:.3f}",
                (xi, yi),
                textcoords="offset points",
                xytext=(dx, dy),
                ha=ha,
                va=va,
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                zorder=4,
            )
    epoch_axes(ax, "score (0-1)", "Validation accuracy per epoch (higher is better)", pad=10)
    ax.set_ylim(-0.02, 1.04)
    ax.margins(x=0.06)
    ax.legend(loc="lower right")
    return save(fig, path), ""


def draw_all(analysis: Analysis, directory: Path) -> dict[str, PlotResult]:
    """The report's plots, in order; a new plot is a function above plus one entry here. Each is
    keyed, and its PNG named, by the function's name (the sections link them by that name)."""
    return {
        fn.__name__: fn(analysis, directory / f"{fn.__name__}.png")
        for fn in (stages_per_epoch, stage_distribution, time_per_sample, memory, hmean)
    }
