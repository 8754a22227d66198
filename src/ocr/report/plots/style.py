"""Shared matplotlib setup: Agg backend, sizes, dpi, and one colour per stage in every plot."""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DPI = 110
STAGE_ORDER = (
    "loader_start",
    "data_wait",
    "h2d",
    "compute",
    "postprocess",
    "metric_update",
    "metric_compute",
    "checkpoint",
    "callbacks",
    "hooks",
    "profiler",
    "other",
    "unattributed",
)
WORKER_ORDER = ("decode", "transform", "targets", "collate", "sample_cache")
_PALETTE = matplotlib.colormaps["tab20"].colors  # type: ignore[attr-defined]
_DARK = matplotlib.colormaps["Dark2"].colors  # type: ignore[attr-defined]
_FIXED = {name: _PALETTE[i * 2 % 20] for i, name in enumerate(STAGE_ORDER[1:])}
_FIXED["loader_start"] = _PALETTE[1]  # light blue, beside data_wait's blue: both are waiting on the loader
_FIXED["callbacks"] = _PALETTE[11]  # tab20's grey would read as "other"
_FIXED["unattributed"] = (0.8, 0.8, 0.8)
_FIXED["other"] = (0.55, 0.55, 0.55)
_FIXED.update({name: _DARK[i] for i, name in enumerate(WORKER_ORDER)})
PHASE_COLOR = {"train": "#1f77b4", "validate": "#d62728", "test": "#2ca02c", "predict": "#9467bd"}


def stage_color(name: str) -> Any:
    # crc32, not hash(): str hashes are salted per process, and a stage should keep its colour
    return _FIXED.get(name, _PALETTE[zlib.crc32(name.encode()) % 20])


def stage_sort_key(name: str) -> tuple[int, str]:
    order = STAGE_ORDER + WORKER_ORDER
    return (order.index(name) if name in order else len(order), name)


MAX_TICK_LABELS = 12  # an epoch axis labels at most this many ticks; more overlap at report widths


def tick_step(count: int, most: int = MAX_TICK_LABELS) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that keeps ``count`` ticks to ``most`` labels."""
    step = 1
    while math.ceil(count / step) > most:
        step = step * 5 // 2 if str(step).startswith("2") else step * 2
    return step


def epoch_axis(ax: Any, positions: list[float], labels: list[str]) -> None:
    """Categorical epoch ticks: every position gets a minor tick, every k-th a number."""
    step = tick_step(len(positions))
    ax.set_xticks(positions, minor=True)
    ax.set_xticks(positions[::step], labels[::step])
    ax.tick_params(axis="x", which="minor", length=2)


def epoch_axes(ax: Any, ylabel: str, title: str, **title_kw: Any) -> None:
    """The finish the per-epoch line plots share: integer epoch ticks, axis labels, title, light grid."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, **title_kw)
    ax.grid(alpha=0.3)


def note(ax: Any, text: str, wrap: bool = False) -> None:
    """A note in a white box at the axes' top left (what the plot leaves out, a headline ratio)."""
    ax.text(
        0.01,
        0.98,
        text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        wrap=wrap,
        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.7", "alpha": 0.9},
    )


def figure(
    ncols: int = 1, nrows: int = 1, width: float = 10.0, height: float = 5.0, **kw: Any
) -> tuple[Any, Any]:
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9})
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)


def save(fig: Any, path: Path, tight: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
