"""Two nodes x one process on localhost (``trainer.num_nodes=2``, ``MASTER_ADDR=127.0.0.1``,
``NODE_RANK``), each node with its own cache folder: the same metrics as one process, every
image evaluated once, and each node's entries in its own folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

from tests.helpers import TINY, compose_config

pytestmark = pytest.mark.slow

EVAL = [
    "data.val.num_samples=5",
    "data.loader.num_workers=0",
    "postprocess.thresh=0.5",
    "postprocess.box_thresh=0.0",
    "image_size=128",
    "trainer.accelerator=cpu",
]


def _checkpoint(tmp_path: Path) -> Path:
    """An untrained tiny DBNet saved as a Lightning checkpoint (what ``ocr validate`` loads)."""
    import hydra

    cfg = compose_config("train", tmp_path / "model", TINY)
    L.seed_everything(0)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "untrained.ckpt"
    trainer.save_checkpoint(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_nodes_with_their_own_cache_folders_equal_one_process(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    ocr = Path(sys.executable).with_name("ocr")
    port = str(_free_port())
    runs = {}
    for name, rank in (("single", None), ("node0", 0), ("node1", 1)):  # all three at once
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        args = ["validate", f"ckpt_path={ckpt}", *EVAL, f"hydra.run.dir={tmp_path / name}"]
        args.append(f"data.cache.dir={tmp_path / f'{name}_cache'}")  # each node its own folder
        if rank is not None:
            env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(rank), LOCAL_RANK="0")
            args += ["trainer.strategy=ddp", "trainer.devices=1", "trainer.num_nodes=2"]
        runs[name] = subprocess.Popen(
            [str(ocr), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for name, run in runs.items():
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, f"{name}: {out[-2000:]}{err[-4000:]}"
    expected = json.loads((tmp_path / "single" / "metrics.json").read_text())
    got = json.loads((tmp_path / "node0" / "metrics.json").read_text())
    assert got["num_images"] == expected["num_images"] == 5
    assert got == pytest.approx(expected, abs=1e-6)
    assert expected["num_gt"] > 0
    # the five images were split over the nodes: each node cached its own share, in its own folder
    counts = [len(list((tmp_path / f"node{r}_cache").rglob("*.entry"))) for r in (0, 1)]
    assert all(c > 0 for c in counts), counts
