"""``ocr report`` on a run really trained and logged offline to W&B (``logger=wandb logger.offline=true``).

The same run writes metrics.csv and perf_summary.json too, so the W&B-offline source and our
run-directory source must produce the same figures.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocr.report.report import analyze
from ocr.report.sources import load_run
from ocr.report.sources.wandb_log import read_log
from ocr.report.sources.wandb_offline import find_log, parse_records
from tests.helpers import TINY, run_cli


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-wandb")
    run_dir = root / "run"
    env = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        **{
            var: str(root / "wandb-home")
            for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")
        },
    }
    overrides = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    result = run_cli(
        [
            "train",
            *overrides,
            "trainer.max_epochs=3",
            "logger=wandb",
            "logger.offline=true",
            "data.cache.enabled=false",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=root,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_reader_parses_the_real_transaction_log(wandb_run: Path) -> None:
    path, notes = find_log(str(wandb_run))
    assert path is not None and path.parent.name.startswith("offline-run-") and notes == []
    contents = read_log(path)
    assert contents.problems == []  # every chunk's checksum verified
    parsed = parse_records(contents.records)
    assert len(parsed["history"]) >= 9 and "exit" in parsed
    assert parsed["config"]["net"]["backbone"] == "mobilenetv3_small_050"
    assert parsed["environment"]["cpu_count"] >= 1
    assert "val/hmean" in parsed["summary"] and "_runtime" in parsed["summary"]


def test_wandb_offline_figures_agree_with_the_run_dir(wandb_run: Path) -> None:
    ours = analyze(load_run(str(wandb_run)))
    theirs = analyze(load_run(str(wandb_run), source="wandb-offline"))
    assert ours.perf.origin == "perf_summary.json" and theirs.perf.origin == "logged perf/* keys"
    assert set(theirs.figures) == set(ours.figures)
    for key, value in ours.figures.items():
        assert theirs.figures[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert [f.title for f in theirs.findings] == [f.title for f in ours.findings]
    assert ours.figures["train.epochs"] == 3


def test_cli_report_on_the_offline_run(wandb_run: Path, tmp_path: Path) -> None:
    offline = next((wandb_run / "wandb").glob("offline-run-*"))
    result = run_cli(
        [
            "report",
            str(offline),
            "--output",
            str(tmp_path / "r.md"),
            "--export-json",
            str(tmp_path / "r.json"),
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.md").read_text()
    assert "| source | wandb-offline:" in text and "## Bottleneck analysis\n\nFindings ranked" in text
    assert "| `compute` |" in text and "r_plots/stages_per_epoch.png" in text


def test_truncated_log_from_a_killed_run(wandb_run: Path, tmp_path: Path) -> None:
    source = next((wandb_run / "wandb").glob("offline-run-*"))
    killed = tmp_path / source.name
    shutil.copytree(source, killed)
    log = next(killed.glob("*.wandb"))
    data = log.read_bytes()
    log.write_bytes(data[: int(len(data) * 0.7)])
    run = load_run(str(killed))
    assert any("truncated" in n or "incomplete" in n for n in run.notes)
    assert any("no exit record" in n for n in run.notes)
    full = load_run(str(source))
    assert 0 < len(run.metrics) < len(full.metrics)
    result = run_cli(
        ["report", str(killed), "--output", str(tmp_path / "r.md"), "--no-plots"], cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "(the run was killed or is still running)" in (tmp_path / "r.md").read_text()
