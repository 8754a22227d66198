"""Comparison: direction-aware verdicts with a minimum change, tables and overlay plots."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from ocr.report.cli import main
from ocr.report.compare import compare, relative_change, verdict
from ocr.report.export import write_json
from tests.unit.test_report_builders import analyze, healthy_epochs, summary


@pytest.mark.parametrize(
    ("key", "base", "new", "expected"),
    [
        ("train.time_per_sample_s", 1.0, 0.8, "improved"),  # lower is better for times
        ("train.time_per_sample_s", 1.0, 1.2, "regressed"),
        ("train.time_per_sample_s", 1.0, 1.05, "unchanged"),  # within 10%
        ("val.hmean", 0.5, 0.6, "improved"),  # higher is better for accuracy
        ("val.hmean", 0.5, 0.4, "regressed"),
        ("cache.hit_rate", 0.5, 0.9, "improved"),
        ("train.samples_per_s", 10.0, 5.0, "regressed"),
        ("memory.rss_peak_mb", 1000.0, 1500.0, "regressed"),
        ("validate.data_wait_share", 0.3, 0.1, "improved"),
        ("train.stage.compute.share", 0.5, 0.9, "changed"),  # no direction: shares just move
        ("val.hmean", 0.0, 0.3, "improved"),  # from zero
        ("val.hmean", 0.0, 0.0, "unchanged"),
        ("val.hmean", None, 0.3, "n/a"),
    ],
)
def test_verdicts_know_each_figures_direction(key: str, base: float, new: float, expected: str) -> None:
    assert verdict(key, base, new, 0.10) == expected


def test_min_change_is_configurable() -> None:
    assert verdict("train.time_per_sample_s", 1.0, 1.05, 0.01) == "regressed"
    assert verdict("train.time_per_sample_s", 1.0, 1.3, 0.5) == "unchanged"
    assert relative_change(2.0, 1.0) == -0.5 and math.isinf(relative_change(0.0, 1.0) or 0)


def test_compare_runs_side_by_side() -> None:
    base = analyze(summary(healthy_epochs()), hmeans=[0.5, 0.6, 0.7], name="base")
    faster = analyze(summary(healthy_epochs(train={"wall": 5.0})), hmeans=[0.5, 0.6, 0.5], name="faster")
    cmp = compare([base, faster], min_change=0.10)
    assert cmp.labels == ["A: base", "B: faster"]
    row = cmp.row("train.time_per_sample_s")
    assert row is not None and row.values == pytest.approx([0.1, 0.05])
    assert row.changes[1] == pytest.approx(-0.5) and row.verdicts == ["", "improved"]
    assert cmp.row("val.hmean").verdicts[1] == "regressed"  # type: ignore[union-attr]
    assert cmp.row("memory.rss_peak_mb").verdicts[1] == "unchanged"  # type: ignore[union-attr]


def test_negligible_stages_do_not_count(tmp_path: Path) -> None:
    tiny = {"data_wait": 0.05, "compute": 0.9, "hooks": 0.001}
    base = analyze(summary(healthy_epochs(train={"shares": tiny})), name="a")
    noisy = analyze(summary(healthy_epochs(train={"shares": {**tiny, "hooks": 0.003}})), name="b")
    row = compare([base, noisy]).row("train.stage.hooks.median_s")
    assert row is not None and row.verdicts[1] == "negligible"


def test_compare_cli_writes_tables_plots_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_json(analyze(summary(healthy_epochs()), name="base"), tmp_path / "base.json")
    slower = write_json(
        analyze(summary(healthy_epochs(train={"wall": 15.0})), name="slower"), tmp_path / "slow.json"
    )
    out = tmp_path / "out" / "cmp.md"
    main(
        [
            "--compare",
            str(base),
            str(slower),
            "--output",
            str(out),
            "--min-change",
            "0.2",
            "--export-json",
            str(tmp_path / "cmp.json"),
            "--export-csv",
            str(tmp_path / "cmp.csv"),
        ]
    )
    text = out.read_text()
    assert (
        "## Regressions" in text
        and "`train.time_per_sample_s` (reference 100 ms): B: slower 150 ms (+50.0%)" in text
    )
    assert "| `train.time_per_sample_s` | 100 ms | 150 ms | +50.0% | **regressed** |" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 3
    for link in links:
        assert (out.parent / link).is_file() and (out.parent / link).stat().st_size > 10_000
    document = json.loads((tmp_path / "cmp.json").read_text())
    assert document["schema"] == "ocr.report.compare/2" and document["min_change"] == 0.2
    row = next(r for r in document["rows"] if r["key"] == "train.time_per_sample_s")
    assert row["better"] == "lower" and row["verdicts"] == ["", "regressed"]
    assert "train.time_per_sample_s" in (tmp_path / "cmp.csv").read_text()
