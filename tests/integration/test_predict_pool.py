"""``ocr predict`` with its post-processing in the evaluator pool: the same CSV as in-process.

A real ``Trainer.predict`` over a folder with two unreadable files among the images: the CSV of
``evaluator.workers=2`` is byte for byte the one of ``evaluator.workers=0`` (the reference), every
row in input order (the unreadable ones in their place), rows reach the file while the run goes
on, and no evaluator process outlives the run.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import psutil
import pytest

from tests.detector_helpers import receipt_images, tiny_checkpoint
from tests.helpers import compose_config

BATCH = 2
SLOTS = 2  # maps in flight: fewer than the images, so slots are reused (memory stays bounded)
FAST = [
    "data.loader.num_workers=0",
    f"data.loader.batch_size={BATCH}",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "threads=1",
    "image_size=64",
    # an untrained-ish net: thresholds that still give boxes, so the rows are not all empty
    "postprocess.thresh=0.3",
    "postprocess.box_thresh=0.0",
]


class _Probe(L.Callback):
    """After every predict batch: the images seen so far, the CSV's rows, the evaluator pids."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.seen: list[int] = []
        self.rows: list[int] = []
        self.pids: set[int] = set()

    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        count = len(batch["meta"]) + len(batch["skipped_index"])
        self.seen.append((self.seen[-1] if self.seen else 0) + count)
        self.rows.append(self.output.read_bytes().count(b"\n") - 1 if self.output.exists() else 0)
        pool = getattr(pl_module, "pool", None)
        if pool is not None:
            self.pids.update(pool.pids)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.ckpt", steps=4, size=64)


def _predict(tmp: Path, folder: Path, ckpt: Path, workers: int) -> tuple[Path, _Probe]:
    from ocr.tasks import predict as predict_module

    out = tmp / f"workers{workers}.csv"
    probe = _Probe(out)
    original = predict_module.build_trainer

    def with_probe(cfg: Any, callbacks: list[L.Callback], loggers: Any) -> L.Trainer:
        return original(cfg, [*callbacks, probe], loggers)

    overrides = [*FAST, f"ckpt_path={ckpt}", f"input={folder}", f"output={out}"]
    overrides += [f"evaluator.workers={workers}", f"evaluator.slots={SLOTS}"]
    cfg = compose_config("predict", tmp / f"run{workers}", overrides)
    predict_module.build_trainer = with_probe  # type: ignore[assignment]
    try:
        predict_module.predict(cfg)
    finally:
        predict_module.build_trainer = original  # type: ignore[assignment]
    return out, probe


def test_pool_rows_equal_the_in_process_csv_in_input_order(ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    receipt_images(folder, 9, size=(72, 48))
    # unreadable files among the images: r00001b.png opens its batch (the collate function puts
    # it last), r00005b.jpg closes its batch
    (folder / "r00001b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "r00005b.jpg").write_bytes(b"")
    names = sorted(p.name for p in folder.iterdir())

    reference, in_process = _predict(tmp_path, folder, ckpt, workers=0)
    pooled, probe = _predict(tmp_path, folder, ckpt, workers=2)

    assert not in_process.pids  # workers=0: no pool at all
    assert in_process.rows == in_process.seen  # in-process: every batch's rows at once
    assert pooled.read_bytes() == reference.read_bytes()
    with pooled.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["filename", "polygons"]
    assert [r[0] for r in rows[1:]] == names  # input order
    cells = dict(rows[1:])
    assert cells["r00001b.png"] == "" and cells["r00005b.jpg"] == ""
    assert sum(bool(cells[n]) for n in names if not n.endswith("b.png") and not n.endswith("b.jpg")) >= 3
    # streamed: after each batch the CSV holds a prefix of the rows, never more than the images
    # seen (how far it lags depends on the evaluators' timing; OrderedRows' release rule is
    # pinned down in tests/unit/test_predict_rows.py)
    assert probe.seen[-1] == len(names)
    assert all(rows <= seen for seen, rows in zip(probe.seen, probe.rows, strict=True)), probe.rows
    assert probe.rows == sorted(probe.rows)
    # two evaluators served the run, and both are gone once predict returns
    assert len(probe.pids) == 2
    alive = [pid for pid in probe.pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, alive
