"""``ocr predict`` end to end: loading by name, backends, streaming rows, resume after kill -9,
output checks before inference, and a row for every image (unreadable ones too)."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import psutil
import pytest

from ocr.errors import UserInputError
from ocr.inference.weights import save_weights
from tests.detector_helpers import receipt_images, tiny_checkpoint
from tests.helpers import compose_config, run_cli

FAST = [
    "data.loader.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "threads=1",
]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.ckpt", steps=4)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    receipt_images(folder, 6)
    return folder


def _predict(run: Path, overrides: list[str]) -> Path:
    from ocr.tasks.predict import predict

    cfg = compose_config("predict", run, [*FAST, *overrides])
    return predict(cfg)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


def _boxes(cell: str) -> list[np.ndarray]:
    return [np.array(p.split(), float) for p in cell.split("|") if p]


def test_torch_and_onnxruntime_backends_write_the_same_rows(ckpt: Path, images: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = {}
    for backend in ("torch", "onnxruntime"):
        out[backend] = _predict(
            tmp_path / backend,
            [
                f"ckpt_path={ckpt}",
                f"input={images}",
                f"output={tmp_path / backend}.csv",
                f"backend={backend}",
            ],
        )
    torch_rows, onnx_rows = _rows(out["torch"]), _rows(out["onnxruntime"])
    assert [r[0] for r in torch_rows] == [r[0] for r in onnx_rows] and len(torch_rows) == 7
    total = sum(len(_boxes(r[1])) for r in torch_rows[1:])
    assert total > 0
    for a, b in zip(torch_rows[1:], onnx_rows[1:], strict=True):
        boxes_a, boxes_b = _boxes(a[1]), _boxes(b[1])
        assert len(boxes_a) == len(boxes_b), a[0]
        for p, q in zip(boxes_a, boxes_b, strict=True):
            assert p.shape == q.shape and np.abs(p - q).max() <= 1, a[0]
    # the ONNX model was exported once into the cache, keyed by the checkpoint
    assert len(list((Path(os.environ["OCR_CACHE_DIR"]) / "onnx").glob("tiny-*.onnx"))) == 1


def test_output_problems_are_reported_before_the_model_is_built(
    ckpt: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocr.models.lit_module import DBNetModule

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was built before the output path was checked")

    monkeypatch.setattr(DBNetModule, "load_from_checkpoint", never)
    with pytest.raises(UserInputError, match="is a directory"):
        _predict(tmp_path / "run", [f"ckpt_path={ckpt}", f"input={images}", f"output={tmp_path}"])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserInputError, match="cannot create"):
        _predict(
            tmp_path / "run", [f"ckpt_path={ckpt}", f"input={images}", f"output={blocker / 'x' / 'o.csv'}"]
        )
    if Path("/proc/self").is_dir():  # a folder os.access calls writable for root, yet no file can be made
        with pytest.raises(UserInputError, match=r"output=/proc/o\.csv: cannot write it"):
            _predict(tmp_path / "run", [f"ckpt_path={ckpt}", f"input={images}", "output=/proc/o.csv"])


def test_every_image_gets_a_row_and_unreadable_ones_one_warning(
    ckpt: Path, images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for path in images.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "scan.gif").write_bytes(b"GIF89a")  # a suffix no reader decodes: a row by its name too
    with caplog.at_level(logging.WARNING, logger="ocr"):
        out = _predict(
            tmp_path / "run", [f"ckpt_path={ckpt}", f"input={folder}", f"output={tmp_path / 'o.csv'}"]
        )
    rows = {r[0]: r[1] for r in _rows(out)[1:]}
    assert sorted(rows) == sorted(p.name for p in folder.iterdir())
    assert rows["broken.png"] == "" and rows["empty.jpg"] == "" and rows["scan.gif"] == ""
    warnings = [r.getMessage() for r in caplog.records if "unreadable image" in r.getMessage()]
    assert len(warnings) == 1 and all(n in warnings[0] for n in ("broken.png", "empty.jpg", "scan.gif"))
    assert warnings[0].startswith("3 unreadable")
    # resume=true gives none of them a second row
    _predict(tmp_path / "run", [f"ckpt_path={ckpt}", f"input={folder}", f"output={out}", "resume=true"])
    names = [r[0] for r in _rows(out)[1:]]
    assert sorted(names) == sorted(p.name for p in folder.iterdir())


class _Probe(L.Callback):
    """Reads the CSV's line count and this process's RSS after every predict batch."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.lines: list[int] = []
        self.rss: list[int] = []
        self.process = psutil.Process()

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self.lines.append(self.output.read_bytes().count(b"\n") if self.output.exists() else 0)
        self.rss.append(self.process.memory_info().rss)


def test_rows_stream_out_and_memory_stays_flat_on_2000_images(ckpt: Path, tmp_path: Path) -> None:
    from ocr.tasks import predict as predict_module

    folder = tmp_path / "many"
    receipt_images(folder, 2000, size=(40, 24))
    out = tmp_path / "many.csv"
    probe = _Probe(out)
    original = predict_module.build_trainer
    seen: dict[str, Any] = {}

    def with_probe(cfg: Any, callbacks: list[L.Callback], loggers: Any) -> L.Trainer:
        trainer = original(cfg, [*callbacks, probe], loggers)
        seen["trainer"] = trainer
        return trainer

    predict_module.build_trainer = with_probe  # type: ignore[assignment]
    try:
        _predict(
            tmp_path / "run",
            [
                f"ckpt_path={ckpt}",
                f"input={folder}",
                f"output={out}",
                "data.loader.batch_size=50",
                "image_size=64",
                # exact per-batch row counts: the in-process path (the pool's rows lag by the
                # images in flight; tests/integration/test_predict_pool.py bounds that lag)
                "evaluator.workers=0",
            ],
        )
    finally:
        predict_module.build_trainer = original  # type: ignore[assignment]
    assert len(_rows(out)) == 2001
    # streamed: after batch k the CSV already holds the header + 50 k rows (nothing gathered)
    assert probe.lines == [1 + 50 * (k + 1) for k in range(40)]
    assert not seen["trainer"].predict_loop.predictions
    # flat: from a quarter of the way to the end, RSS grows by less than 20 MB
    growth = (max(probe.rss[10:]) - probe.rss[10]) / 2**20
    assert growth < 20, f"RSS grew {growth:.1f} MB over 1500 images: {[r >> 20 for r in probe.rss]}"


def test_name_loading_uses_the_shipped_file_and_says_when_it_is_absent(
    ckpt: Path, images: Path, tmp_path: Path
) -> None:
    """The real CLI: without ckpt_path, model=sroie (the default) loads OCR_WEIGHTS_DIR/sroie.pt;
    while that file is absent, one `ocr: error:` line and exit status 2."""
    empty = tmp_path / "no_weights"
    empty.mkdir()
    args = [*FAST, f"input={images}", f"output={tmp_path / 'o.csv'}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = run_cli(["predict", *args], cwd=tmp_path, env={"OCR_WEIGHTS_DIR": str(empty)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ocr: error:")]
    assert len(errors) == 1 and "not in this build" in errors[0] and "ckpt_path=" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.csv").exists()

    weights = tmp_path / "weights"
    save_weights(ckpt, weights / "sroie.pt")
    proc = run_cli(["predict", "model=sroie", *args], cwd=tmp_path, env={"OCR_WEIGHTS_DIR": str(weights)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(_rows(tmp_path / "o.csv")) == 7


@pytest.mark.slow
def test_kill_9_then_resume_skips_done_images_and_leaves_no_torn_row(ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    names = sorted(p.name for p in receipt_images(folder, 400, size=(40, 24)))
    out = tmp_path / "o.csv"
    ocr = Path(sys.executable).with_name("ocr")
    args = [str(ocr), "predict", *FAST, f"ckpt_path={ckpt}", f"input={folder}", f"output={out}"]
    args += ["data.loader.batch_size=2", "image_size=64"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = [*args, f"hydra.run.dir={tmp_path / 'run1'}"]
    proc = subprocess.Popen(
        first, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") > 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "predict finished before it could be killed; use more images"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = out.read_bytes()
    done_before = killed.count(b"\n") - 1
    assert 40 <= done_before < 400
    again = [*args, "resume=true", f"hydra.run.dir={tmp_path / 'run2'}"]
    resumed = subprocess.run(
        again, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resume: {done_before} images already in" in resumed.stdout
    rows = _rows(out)
    assert rows[0] == ["filename", "polygons"]
    assert sorted(r[0] for r in rows[1:]) == names  # every image exactly once
    assert all(len(r) == 2 for r in rows[1:])
    assert out.read_bytes().endswith(b"\n")
    # the rows written before the kill are kept as they were (only a torn tail may go)
    kept = killed[: killed.rfind(b"\n") + 1]
    assert out.read_bytes().startswith(kept)
