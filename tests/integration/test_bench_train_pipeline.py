"""``ocr bench pipeline --phase train``: a real fit with a stand-in step, one JSON line per epoch."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli

SMALL = [
    "data.train.num_samples=8",
    "data.val.num_samples=4",
    "data.augment.enabled=false",
]


def test_bench_train_reports_first_batch_wait_and_the_workers_chosen(tmp_path: Path) -> None:
    proc = run_cli(
        [
            "bench",
            "pipeline",
            "--phase",
            "train",
            "--reader",
            "synthetic",
            "--size",
            "128",
            "--crop",
            "0",
            "--batch-size",
            "4",
            "--val-batch-size",
            "4",
            "--epochs",
            "2",
            "--step-ms",
            "5",
            *SMALL,
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    *epochs, summary = lines
    assert [e["epoch"] for e in epochs] == [1, 2] == [e["epoch"] for e in summary["epochs"]]
    for epoch in epochs:
        assert epoch["samples"] == 8
        assert epoch["first_batch_wait_s"] > 0
        assert 0 <= epoch["steady_data_wait_share"] <= 1
        assert {"decode", "transform", "targets", "collate"} <= set(epoch["worker_ms_per_sample"])
        assert epoch["worker_cpu_ms_per_sample"] > 0
    assert summary["workers_from_machine"] and summary["workers"] >= 1
    assert summary["prefetch_factor"] >= 2 and summary["span_epochs"]
    assert len(summary["first_batch_wait_vs_epoch1"]) == 1
