"""``ocr report`` end to end on recorded runs: sections, linked PNGs, exports, partial data, errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ocr.report.cli import main
from tests.helpers import run_cli
from tests.unit.test_report_sources import install_fake_api

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"
SECTIONS = (
    "# Performance report",
    "## Headline figures",
    "## Bottleneck analysis",
    "## Training: time per stage",
    "## Validation: time per stage",
    "## Worker stages (DataLoader workers)",
    "## Training vs validation time per sample",
    "## Data wait",
    "## Memory",
    "## Target cache",
    "## Validation hmean per epoch",
)
PLOTS = ("stages_per_epoch", "stage_distribution", "time_per_sample", "memory", "hmean")


def image_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]+\]\(([^)]+)\)", markdown)


def test_full_report_with_linked_plots_and_exports(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report.md"
    main(
        [
            str(FIXTURES / "tb_run"),
            "--output",
            str(out),
            "--export-json",
            str(tmp_path / "r.json"),
            "--export-csv",
            str(tmp_path / "r.csv"),
        ]
    )
    text = out.read_text()
    for heading in SECTIONS:
        assert heading in text, heading
    # header: source, hardware, versions, key config
    assert (
        "| source | run-dir:" in text
        and "(2 cores)" in text
        and "torch 2." in text
        and "num_workers=2" in text
    )
    assert "| `compute` |" in text and "| train | `decode` |" in text and "_unattributed_" in text
    assert "not available: the target cache was off" in text  # this run had the cache off
    links = image_links(text)
    assert sorted(Path(link).stem for link in links) == sorted(PLOTS)
    for link in links:
        assert not Path(link).is_absolute() and link.startswith("report_plots/")
        with Image.open(out.parent / link) as png:
            assert png.width >= 900 and png.height >= 450
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["schema"] == "ocr.report/1"
    for key in (
        "train.time_per_sample_s",
        "validate.time_per_sample_s",
        "val_vs_train_ratio",
        "validate.data_wait_share",
        "train.stage.compute.median_s",
        "val.hmean",
    ):
        assert isinstance(document["figures"][key], float), key
    assert document["findings"] and {"rule", "title", "evidence", "recommendation", "severity"} <= set(
        document["findings"][0]
    )
    assert document["run"]["hardware"]["cpu_count"] == 2
    with (tmp_path / "r.csv").open() as fh:
        kinds = {row["kind"] for row in csv.DictReader(fh)}
    assert kinds == {"metric", "figure", "finding"}


def test_only_metrics_csv_still_reports(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "tb_run" / "metrics.csv", run / "metrics.csv")
    out = tmp_path / "report.md"
    main([str(run), "--output", str(out), "--no-plots"])
    text = out.read_text()
    assert "perf_summary.json not found" in text
    assert "| `compute` |" in text  # rebuilt from the logged perf/* keys
    assert "_not available: plot: plots were not drawn (--no-plots)_" in text


def test_wandb_run_without_perf_keys_marks_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_api(monkeypatch, lambda row: {k: v for k, v in row.items() if not k.startswith("perf/")})
    out = tmp_path / "report.md"
    main(["--run-id", "hkapaqhw", "--project", "ocr", "--entity", "receipts-team", "--output", str(out)])
    text = out.read_text()
    assert "wandb-online: `wandb://receipts-team/ocr/hkapaqhw`" in text
    assert "## Bottleneck analysis\n\n_not available: the wandb-online source has no perf data" in text
    assert "## Training: time per stage\n\n_not available:" in text
    assert "## Validation hmean per epoch\n\n| epoch |" in text  # accuracy is still there
    assert [Path(p).stem for p in image_links(text)] == ["hmean"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "missing: no such file or directory"),
        (["{tmp}/empty"], "no source recognises this run"),
        (["{tmp}/blank"], "the run is empty"),
        (["{tmp}/badschema"], "schema 'other/9', expected 'ocr.perf_summary/1'"),
        (
            ["{fixture}", "--require", "val/hmean", "--require", "val/cleval_f1"],
            "missing metric(s) val/cleval_f1",
        ),
        (["{fixture}", "--source", "wandb-offline"], "not a wandb-offline run"),
        (["{fixture}", "--rule-limit", "data_wait_share"], "expects NAME=VALUE"),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "metrics.csv").write_text("")
    (tmp_path / "badschema").mkdir()
    (tmp_path / "badschema" / "perf_summary.json").write_text(json.dumps({"schema": "other/9"}))
    argv = [a.format(tmp=tmp_path, fixture=FIXTURES / "tb_run") for a in args]
    result = run_cli(["report", *argv, "--output", str(tmp_path / "r.md")], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ocr report: error: ")
    assert message in result.stderr, result.stderr


def test_gpu_run_shows_gpu_hardware_and_memory(tmp_path: Path) -> None:
    """A CUDA run's summary (constructed: no GPU here) carries gpu_* memory keys and GPU hardware."""
    from tests.unit.test_report_builders import healthy_epochs, summary

    doc = summary(healthy_epochs())
    doc["run"]["hardware"].update(
        {"cuda": True, "gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 1, "gpu_memory_gb": 79.2}
    )
    for i, e in enumerate(doc["epochs"]):
        e["memory"].update(
            {"gpu_allocated_mb": 900.0 + i, "gpu_reserved_mb": 2048.0, "gpu_peak_mb": 1500.0 + 10 * i}
        )
    for i, point in enumerate(doc["memory_timeline"]):
        point.update(
            {"gpu_allocated_mb": 900.0 + i, "gpu_reserved_mb": 2048.0, "gpu_peak_mb": 1500.0 + 10 * i}
        )
    run = tmp_path / "gpu_run"
    run.mkdir()
    (run / "perf_summary.json").write_text(json.dumps(doc))
    out = tmp_path / "report.md"
    main([str(run), "--output", str(out), "--export-json", str(tmp_path / "r.json")])
    text = out.read_text()
    assert "GPU: NVIDIA H100 80GB HBM3 x1 (79.2 GB)" in text
    assert "Peaks over the run: main process 1000 MB, workers 2000 MB, GPU 1550 MB." in text
    assert json.loads((tmp_path / "r.json").read_text())["figures"]["memory.gpu_peak_mb"] == 1550.0
    assert (tmp_path / "report_plots" / "memory.png").is_file()
