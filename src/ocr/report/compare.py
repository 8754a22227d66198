"""Side-by-side comparison of runs: the same figures, deltas against the first run, verdicts.

The first run is the *reference* (a previous run, or a stored report export); "baseline" is kept
for the regression suite's committed figures. Verdicts are direction-aware (``FigureSpec.better``:
lower is better for times and memory, higher for hmean, throughput and hit rate); a relative change
within ``min_change`` is "unchanged".
Figures without a direction (shares, counts) only report "changed" or "unchanged".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.figures import spec_for
from ocr.report.markdown import not_available, plot_link, table
from ocr.report.sections import HEADLINES

IMPROVED, REGRESSED, UNCHANGED, CHANGED, MISSING = "improved", "regressed", "unchanged", "changed", "n/a"
NEGLIGIBLE = "negligible"
NEGLIGIBLE_SHARE = 0.01  # stages below this share (of the epoch / of worker time) in every run: noise


def relative_change(base: float | None, new: float | None) -> float | None:
    if base is None or new is None:
        return None
    if base == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - base) / abs(base)


def verdict(key: str, base: float | None, new: float | None, min_change: float) -> str:
    change = relative_change(base, new)
    if change is None:
        return MISSING
    if abs(change) <= min_change:
        return UNCHANGED
    spec = spec_for(key)
    better = spec.better if spec else None
    if better is None:
        return CHANGED
    return IMPROVED if (change < 0) == (better == "lower") else REGRESSED


@dataclass
class Row:
    key: str
    values: list[float | None]
    changes: list[float | None]  # relative to the first run; [0] is None
    verdicts: list[str]  # against the first run; [0] is ""

    def to_dict(self) -> dict[str, Any]:
        spec = spec_for(self.key)
        return {
            "key": self.key,
            "better": spec.better if spec else None,
            "values": self.values,
            "changes": [None if c is None or not math.isfinite(c) else c for c in self.changes],
            "verdicts": self.verdicts,
        }


@dataclass
class Comparison:
    labels: list[str]
    analyses: list[Analysis]
    rows: list[Row]
    min_change: float

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)


def negligible(key: str, analyses: list[Analysis]) -> bool:
    """A stage figure whose stage takes under 1% in every run: its relative changes are noise."""
    parts = key.split(".")
    if len(parts) != 4 or parts[1] not in ("stage", "worker"):
        return False
    shares = [s for s in (a.fig(".".join([*parts[:3], "share"])) for a in analyses) if s is not None]
    return bool(shares) and max(shares) < NEGLIGIBLE_SHARE


def compare(analyses: list[Analysis], min_change: float = 0.10) -> Comparison:
    keys = sorted({k for a in analyses for k in a.figures})
    rows = []
    for key in keys:
        values = [a.fig(key) for a in analyses]
        changes = [None] + [relative_change(values[0], v) for v in values[1:]]
        verdicts = [""] + [verdict(key, values[0], v, min_change) for v in values[1:]]
        if negligible(key, analyses):
            verdicts = [""] + [NEGLIGIBLE if v in (IMPROVED, REGRESSED, CHANGED) else v for v in verdicts[1:]]
        rows.append(Row(key, values, changes, verdicts))
    labels = [f"{chr(65 + i) if i < 26 else i}: {a.run.name}" for i, a in enumerate(analyses)]
    return Comparison(labels, analyses, rows, min_change)


def _change_text(change: float | None) -> str:
    if change is None:
        return fmt.NA
    if math.isinf(change):
        return "new" if change > 0 else "-inf"
    return f"{100 * change:+.1f}%"


def _table(cmp: Comparison, keys: list[str]) -> str:
    header = ["figure", cmp.labels[0]]
    for label in cmp.labels[1:]:
        header += [label, "change", "verdict"]
    rows = []
    for key in keys:
        row = cmp.row(key)
        if row is None:
            continue
        cells = [f"`{key}`", fmt.value(key, row.values[0])]
        for value, change, verdict_ in zip(row.values[1:], row.changes[1:], row.verdicts[1:], strict=True):
            mark = {IMPROVED: "**improved**", REGRESSED: "**regressed**"}.get(verdict_, verdict_)
            cells += [fmt.value(key, value), _change_text(change), mark]
        rows.append(cells)
    align = "lr" + "rrl" * (len(cmp.labels) - 1)
    return table(header, rows, align) if rows else not_available("none of these figures in the runs")


def _regressions(cmp: Comparison) -> str:
    lines = []
    for r in cmp.rows:
        worse = [
            f"{label} {fmt.value(r.key, v)} ({_change_text(c)})"
            for label, v, c, verdict_ in zip(
                cmp.labels[1:], r.values[1:], r.changes[1:], r.verdicts[1:], strict=True
            )
            if verdict_ == REGRESSED
        ]
        if worse:
            lines.append(f"- `{r.key}` (reference {fmt.value(r.key, r.values[0])}): " + ", ".join(worse))
    return "\n".join(lines) or "None."


def render(cmp: Comparison, plots: dict[str, tuple[Path | None, str]], output: Path) -> str:
    def plot(name: str, alt: str) -> str:
        return plot_link(plots, name, alt, output.parent)

    runs = table(
        ("run", "source", "location", "hardware", "key config"),
        [
            (
                label,
                a.run.source,
                f"`{a.run.location}`",
                (a.run.info.get("hardware") or {}).get("cpu", fmt.NA),
                ", ".join(f"{k}={v}" for k, v in (a.run.info.get("config") or {}).items()) or fmt.NA,
            )
            for label, a in zip(cmp.labels, cmp.analyses, strict=True)
        ],
        "lllll",
    )
    counts = {v: sum(v in r.verdicts[1:] for r in cmp.rows) for v in (IMPROVED, REGRESSED)}
    headline_keys = [k for k, _ in HEADLINES] + ["val.hmean_best", "train.wall_s", "validate.wall_s"]
    stage_keys = [r.key for r in cmp.rows if ".stage." in r.key and r.key.endswith(".median_s")]
    worker_keys = [r.key for r in cmp.rows if ".worker." in r.key and r.key.endswith(".median_s")]
    other = [r.key for r in cmp.rows if r.key not in set(headline_keys) | set(stage_keys) | set(worker_keys)]
    parts = [
        "# Performance comparison",
        runs,
        f"Reference: **{cmp.labels[0]}**. A relative change within {fmt.pct(cmp.min_change)} is unchanged "
        "(`--min-change`); verdicts know each figure's direction (lower is better for times and memory, "
        f"higher for hmean, throughput and hit rate); changes of stages under {fmt.pct(NEGLIGIBLE_SHARE)} of "
        f"the time in every run are marked negligible. {counts[IMPROVED]} improved, "
        f"{counts[REGRESSED]} regressed.",
        "## Regressions\n\n" + _regressions(cmp),
        "## Headline figures\n\n" + _table(cmp, headline_keys),
        "## Stage medians (per batch)\n\n" + _table(cmp, stage_keys),
        "## Worker stage medians (per sample)\n\n" + _table(cmp, worker_keys),
        "## Overlays\n\n"
        + plot("compare_time_per_sample", "time per sample per epoch, every run")
        + "\n\n"
        + plot("compare_stage_medians", "stage medians per run")
        + "\n\n"
        + plot("compare_hmean", "validation hmean per epoch, every run"),
        "## All other figures\n\n<details><summary>"
        + f"{len(other)} figures</summary>\n\n"
        + _table(cmp, other)
        + "\n\n</details>",
    ]
    return "\n\n".join(parts) + "\n"


def document(cmp: Comparison) -> dict[str, Any]:
    return {
        "schema": "ocr.report.compare/2",  # /2: "threshold" became "min_change"
        "min_change": cmp.min_change,
        "runs": [
            {"label": label, "source": a.run.source, "location": a.run.location, "figures": a.figures}
            for label, a in zip(cmp.labels, cmp.analyses, strict=True)
        ],
        "rows": [r.to_dict() for r in cmp.rows],
    }
