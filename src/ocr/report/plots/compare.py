"""Overlay plots for ``ocr report --compare``: one colour per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ocr.report import fmt
from ocr.report.compare import Comparison
from ocr.report.plots.style import epoch_axes, figure, note, plt, save, stage_sort_key

RUN_COLORS = plt.get_cmap("tab10")


def time_per_sample(cmp: Comparison, path: Path) -> tuple[Path | None, str]:
    if not any(e.time_per_sample_s for a in cmp.analyses for e in a.perf.epochs):
        return None, "no time per sample in these runs"
    fig, axes = figure(width=10.0, height=4.8)
    ax = axes[0][0]
    left_out = []
    for i, (label, a) in enumerate(zip(cmp.labels, cmp.analyses, strict=True)):
        for phase, style in (("train", "o-"), ("validate", "s--")):
            measured = [e for e in a.epochs(phase) if e.time_per_sample_s]
            # an epoch cut short times its first batches, not the epoch: not drawn, but said
            left_out += [f"{label}, {fmt.PHASE_LABEL[phase]} epoch {e.epoch}" for e in measured if e.partial]
            epochs = [e for e in measured if not e.partial]
            if epochs:
                ax.plot(
                    [e.epoch for e in epochs],
                    [1000 * (e.time_per_sample_s or 0) for e in epochs],
                    style,
                    color=RUN_COLORS(i % 10),
                    label=f"{label} ({fmt.PHASE_LABEL[phase]})",
                    markersize=6 if len(epochs) <= 20 else 3,
                )
    if left_out:
        note(ax, "not drawn (cut short): " + ", ".join(left_out), wrap=True)
    epoch_axes(
        ax,
        "time per sample (ms)",
        "Time per sample per epoch (solid: training, dashed: validation; lower is better)",
    )
    ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * (1.15 if left_out else 1.0))  # room for the note
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return save(fig, path), ""


def stage_medians(cmp: Comparison, path: Path) -> tuple[Path | None, str]:
    phases = [
        p
        for p in ("train", "validate")
        if any(k.startswith(f"{p}.stage.") for a in cmp.analyses for k in a.figures)
    ]
    if not phases:
        return None, "no stage statistics in these runs"
    n = len(cmp.analyses)
    fig, axes = figure(ncols=len(phases), width=6.5 * len(phases) + 1.0, height=5.0 + 0.6 * max(0, n - 2))
    for ax, phase in zip(axes[0], phases, strict=True):
        prefix = f"{phase}.stage."
        names = sorted(
            {s for a in cmp.analyses for s in a.stage_figures(phase, "stage", "median_s")}, key=stage_sort_key
        )
        names = [s for s in names if any((a.fig(f"{prefix}{s}.median_s") or 0) > 1e-5 for a in cmp.analyses)]
        y = np.arange(len(names))
        height = 0.8 / n
        for i, (label, a) in enumerate(zip(cmp.labels, cmp.analyses, strict=True)):
            values = [1000 * (a.fig(f"{prefix}{s}.median_s") or np.nan) for s in names]
            ys = y + (i - (n - 1) / 2) * height
            ax.barh(ys, values, height, color=RUN_COLORS(i % 10), label=label if phase == phases[0] else None)
            for yi, v in zip(ys, values, strict=True):
                if v == v:
                    ax.annotate(
                        fmt.ms(v / 1000),
                        (v, yi),
                        textcoords="offset points",
                        xytext=(3, 0),
                        va="center",
                        fontsize=7,
                    )
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("median time per batch (ms, log scale)")
        ax.set_title(f"{fmt.PHASE_LABEL[phase]}: stage medians per run")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(right=ax.get_xlim()[1] * 6)
    fig.legend(loc="upper center", ncols=min(n, 4), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save(fig, path, tight=False), ""


def hmean(cmp: Comparison, path: Path) -> tuple[Path | None, str]:
    if all(a.run.series("val/hmean").empty for a in cmp.analyses):
        return None, "val/hmean was not logged in these runs"
    fig, axes = figure(width=9.0, height=4.6)
    ax = axes[0][0]
    for i, (label, a) in enumerate(zip(cmp.labels, cmp.analyses, strict=True)):
        rows = a.run.series("val/hmean")
        if not rows.empty:
            ax.plot(rows["epoch"].astype("float"), rows["value"], "o-", color=RUN_COLORS(i % 10), label=label)
    epoch_axes(ax, "hmean (0-1)", "Validation hmean per epoch (higher is better)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return save(fig, path), ""


def draw_all(cmp: Comparison, directory: Path) -> dict[str, tuple[Path | None, str]]:
    return {
        "compare_time_per_sample": time_per_sample(cmp, directory / "compare_time_per_sample.png"),
        "compare_stage_medians": stage_medians(cmp, directory / "compare_stage_medians.png"),
        "compare_hmean": hmean(cmp, directory / "compare_hmean.png"),
    }
