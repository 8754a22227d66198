"""Sources: detection, our run directory, TensorBoard (all scalars kept), W&B online (recorded shapes)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ocr.report.context import Analysis
from ocr.report.errors import ReportError
from ocr.report.export import write_json
from ocr.report.report import analyze
from ocr.report.run import COLUMNS
from ocr.report.sources import detect_source, load_run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "report"
TB_RUN = FIXTURES / "tb_run"


def test_run_dir_source_reads_summary_metrics_and_info() -> None:
    run = load_run(str(TB_RUN))
    assert run.source == "run-dir"
    assert list(run.metrics.columns) == list(COLUMNS)
    assert run.summary is not None and run.summary["schema"] == "ocr.perf_summary/1"
    assert {"val/hmean", "perf/train/compute/median", "train/loss_epoch"} <= run.keys()
    assert run.info["hardware"]["cpu_count"] == 2
    assert run.info["config"]["backbone"] == "mobilenetv3_small_050"
    assert set(run.metrics["epoch"].dropna().unique()) == {0, 1, 2}


def test_tensorboard_source_agrees_with_the_run_dir_of_the_same_run() -> None:
    tb = load_run(str(TB_RUN / "tensorboard"))
    assert tb.source == "tensorboard"
    assert tb.info["config"]["num_workers"] == 2  # from the logger's hparams.yaml
    ours = Analysis.build(load_run(str(TB_RUN)))
    theirs = Analysis.build(tb)
    assert theirs.perf.origin == "logged perf/* keys"
    assert set(theirs.figures) == set(ours.figures)
    for key, value in ours.figures.items():  # TensorBoard stores float32
        assert theirs.figures[key] == pytest.approx(value, rel=2e-6, abs=1e-9), key
    # epochs come from the `epoch` scalar matched by step and wall time
    assert [(e.phase, e.epoch) for e in theirs.perf.epochs] == [(e.phase, e.epoch) for e in ours.perf.epochs]


def test_tensorboard_keeps_more_than_10000_scalars_per_tag(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    n = 10_050
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step in range(n):
        writer.add_scalar("train/loss_step", 1.0 / (step + 1), step)
        if step % 1000 == 0:
            writer.add_scalar("epoch", step // 1000, step)
    writer.add_scalar("perf/train/time_per_sample_s", 0.5, n)
    writer.add_scalar("epoch", 10, n)
    writer.close()
    run = load_run(str(tmp_path))  # the parent folder: the event folder is found one level down
    loss = run.series("train/loss_step")
    assert len(loss) == n
    assert loss["step"].tolist() == list(range(n))
    assert loss["epoch"].iloc[-1] == 10 and loss["epoch"].iloc[1500] == 1
    assert Analysis.build(run).figures["train.time_per_sample_s"] == 0.5


class FakeSummary:
    """W&B's HTTPSummary is dict-like (keys/items/__getitem__) without being a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def keys(self) -> Any:
        return self._data.keys()

    def items(self) -> Any:
        return ((k, FakeSummary(v) if isinstance(v, dict) else v) for k, v in self._data.items())

    def __getitem__(self, key: str) -> Any:
        return self._data[key]


class FakeRun:
    def __init__(self, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        attrs = record["attrs"]
        self.id, self.name, self.project = attrs["id"], attrs["name"], attrs["project"]
        self.entity, self.state, self.created_at = attrs["entity"], attrs["state"], attrs["created_at"]
        self.config = record["config"]
        self.summary = FakeSummary(record["summary"])
        self.metadata = record["metadata"]
        self._history = history
        self.scanned = False

    def scan_history(self, keys: list[str] | None = None, page_size: int = 1000, **_: Any) -> Any:
        self.scanned = True
        return iter(self._history)

    def history(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("history() samples rows; the report must use scan_history()")


def install_fake_api(monkeypatch: pytest.MonkeyPatch, history_filter: Any = None) -> dict[str, Any]:
    """Monkeypatch ``wandb.Api`` (no server can exist here) with the recorded run's shapes."""
    import wandb

    record = json.loads((FIXTURES / "wandb_online_run.json").read_text())
    history = [history_filter(row) for row in record["history"]] if history_filter else record["history"]
    state: dict[str, Any] = {"paths": []}

    class FakeApi:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, path: str) -> FakeRun:
            state["paths"].append(path)
            if path != record["path"]:
                raise ValueError(f"Could not find run {path}")
            state["run"] = FakeRun(record, history)
            return state["run"]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    return state


def test_wandb_online_source_uses_scan_history(monkeypatch: pytest.MonkeyPatch) -> None:
    state = install_fake_api(monkeypatch)
    run = load_run("wandb://receipts-team/ocr/hkapaqhw")
    assert run.source == "wandb-online"
    assert state["paths"] == ["receipts-team/ocr/hkapaqhw"] and state["run"].scanned
    assert run.info["hardware"]["cpu_count"] == 2 and run.info["hardware"]["memory_gb"] == pytest.approx(
        23.54
    )
    assert run.info["config"]["num_workers"] == 0
    assert run.extra["summary"]["_wandb"] == {"runtime": run.extra["summary"]["_wandb"]["runtime"]}
    keys = run.keys()
    assert not any(k.startswith("_") or k == "trainer/global_step" for k in keys)
    analysis = analyze(run)
    assert [(e.phase, e.epoch) for e in analysis.perf.epochs] == [
        (p, i) for i in range(3) for p in ("train", "validate")
    ]
    assert analysis.figures["train.time_per_sample_s"] > 0 and "val.hmean" in analysis.figures
    # steps are Lightning's global steps, not W&B's _step
    assert run.series("perf/train/wall_s")["step"].tolist() == [2, 4, 6]


def test_wandb_online_errors_are_report_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_api(monkeypatch)
    with pytest.raises(ReportError, match="cannot read the W&B run"):
        load_run("wandb://receipts-team/ocr/missing")
    with pytest.raises(ReportError, match="expected wandb://"):
        load_run("wandb://just-one-part")


def test_detection_picks_the_right_source(tmp_path: Path) -> None:
    assert detect_source(str(TB_RUN)).name == "run-dir"
    assert detect_source(str(TB_RUN / "tensorboard")).name == "tensorboard"
    assert detect_source("wandb://e/p/id").name == "wandb-online"
    export = write_json(analyze(load_run(str(TB_RUN))), tmp_path / "reference.json")
    assert detect_source(str(export)).name == "report-json"
    with pytest.raises(ReportError, match="no source recognises"):
        detect_source(str(tmp_path / "nothing-here"))


def test_report_json_round_trip(tmp_path: Path) -> None:
    original = analyze(load_run(str(TB_RUN)))
    path = write_json(original, tmp_path / "reference.json")
    document = json.loads(path.read_text())
    assert document["schema"] == "ocr.report/1"
    assert document["figures"] == pytest.approx(original.figures)
    assert document["rule_limits"] == original.rule_limits.to_dict() and "thresholds" not in document
    again = analyze(load_run(str(path)))
    assert again.figures == pytest.approx(original.figures)
    assert [f.title for f in again.findings] == [f.title for f in original.findings]
    assert len(again.run.metrics) == len(original.run.metrics)


def test_tensorboard_speed_is_reasonable(tmp_path: Path) -> None:
    start = time.perf_counter()
    load_run(str(TB_RUN / "tensorboard"))
    assert time.perf_counter() - start < 10


def test_reader_is_its_class_name_from_a_target_and_a_name_from_older_runs() -> None:
    from ocr.report.config import key_config

    target = {"data": {"reader": {"_target_": "ocr.data.datasets.sroie.SROIEDataset", "gt_dir": "gt"}}}
    assert key_config(target)["reader"] == "SROIEDataset"
    assert key_config({"data": {"reader": "synthetic"}})["reader"] == "synthetic"  # perf summaries before
    assert "reader" not in key_config({"data": {"reader": {"gt_dir": "gt"}}})
