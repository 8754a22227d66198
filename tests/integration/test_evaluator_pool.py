"""The evaluator pool: the same summed states as in-process evaluation, ordered predictions, failures.

Every run is a real Lightning ``Trainer.validate`` with the real cleval, on tiny synthetic receipts.
"""

from __future__ import annotations

import threading
from typing import Any

import lightning as L
import numpy as np
import psutil
import pytest
import torch

from ocr.bench.validate import GTStandIn
from ocr.data.datamodule import ReceiptDataModule
from ocr.evaluation.pool import EvaluatorError, EvaluatorPool
from ocr.evaluation.worker import FAULT_ENV, states_of
from ocr.metrics.detection import DetectionMetrics
from ocr.postprocess.db_postprocess import DBPostProcessor

# box_thresh=0 keeps every candidate whatever its score, so the uint8 hand-off (exact binarisation,
# scores within 1/255) must give the very same boxes as float32.
NOISY_POST = {"thresh": 0.3, "box_thresh": 0.0}


class _Snapshot:
    """Mixin: keep the merged states of the last evaluation epoch (before compute/reset)."""

    snapshot: dict[str, dict[str, int | float]]
    pids: list[int]

    def _log_metrics(self, metrics: DetectionMetrics, prefix: str) -> dict[str, float]:
        self._merge_pool(metrics)  # type: ignore[attr-defined]
        self.snapshot = states_of(metrics)
        return super()._log_metrics(metrics, prefix)  # type: ignore[misc]

    def _begin_evaluation(self, metrics: DetectionMetrics) -> None:
        super()._begin_evaluation(metrics)  # type: ignore[misc]
        pool = self.evaluator_pool  # type: ignore[attr-defined]
        self.pids = list(pool.pids) if pool is not None else []


class NoisyStandIn(GTStandIn):
    """A continuous-valued map: the GT shrink map plus smooth noise blobs, fixed per image.

    Real-valued pixels near the threshold (the uint8 hand-off's hard case), false positives, and
    GT lines merged with or split by noise: every kind of CLEval case, deterministically.
    """

    def _eval_outputs(self, batch: dict[str, Any], prefix: str) -> dict[str, torch.Tensor]:
        gt = super()._eval_outputs(batch, prefix)["prob"]
        h, w = gt.shape[-2:]
        noise = []
        for meta in batch["meta"]:
            gen = torch.Generator().manual_seed(sum(map(ord, str(meta["name"]))))
            coarse = torch.rand((1, 1, h // 16, w // 16), generator=gen)
            noise.append(torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear"))
        return {"prob": (0.6 * gt + 0.45 * torch.cat(noise)).clamp(0.0, 1.0)}


class SnapNet(_Snapshot, NoisyStandIn):
    pass


class SnapStandIn(_Snapshot, GTStandIn):
    pass


def _synthetic(images: int, batch_size: int) -> ReceiptDataModule:
    dm = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.synthetic.SyntheticReceipts"},
        val={"num_samples": images},
        image_size=256,
        loader={"num_workers": 0, "val_batch_size": batch_size},
        cache={"enabled": False},
    )
    dm.setup("validate")
    return dm


@pytest.fixture(scope="module")
def datamodule() -> ReceiptDataModule:
    return _synthetic(5, batch_size=2)


def _validate(model: L.LightningModule, dm: ReceiptDataModule) -> None:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.validate(model, datamodule=dm, verbose=False)


def _net(workers: int, handoff: str = "auto", copy_thread: bool | None = None) -> SnapNet:
    evaluator = {"workers": workers, "handoff": handoff, "copy_thread": copy_thread}
    return SnapNet(postprocess=NOISY_POST, evaluator=evaluator)


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_pool_sizes_give_identical_states(datamodule: ReceiptDataModule) -> None:
    reference = _net(0)
    _validate(reference, datamodule)
    ref = reference.snapshot
    assert ref["iou"]["num_images"] == 5
    # non-trivial: matches, false positives, and split or merged lines all occur
    cl, iou = ref["cleval"], ref["iou"]
    assert cl["det_num_char_tp_recall"] > 0 and cl["det_num_char_fp"] > 0, cl
    assert iou["num_det"] > 0 and iou["num_gt"] > 0, iou
    assert cl["num_splitted"] + cl["num_merged"] > 0, cl
    # auto: float32 on the CPU; copy_thread: the copies behind the next forward pass, as on CUDA
    for workers, handoff, copy_thread in ((1, "uint8", None), (3, "auto", None), (1, "auto", True)):
        model = _net(workers, handoff, copy_thread)
        assert model.copy_thread() is bool(copy_thread)
        _validate(model, datamodule)
        assert len(model.pids) == workers
        assert model.snapshot == ref, (workers, handoff, copy_thread)
        assert model.last_val_metrics == reference.last_val_metrics
        assert model.evaluator_pool is None and _gone(model.pids)  # closed at the end of validate


def test_gt_stand_in_states_identical(datamodule: ReceiptDataModule) -> None:
    """Perfect-model maps (the bench's stand-in, binary): the same states in the pool."""
    results = []
    for workers in (0, 1):
        model = SnapStandIn(evaluator={"workers": workers})
        _validate(model, datamodule)
        results.append(model.snapshot)
    assert results[0]["cleval"]["det_num_char_tp_recall"] > 0
    assert results[0] == results[1]


def _maps_and_metas(n: int) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Maps with 1..n boxes (later images are cheaper), so evaluators finish out of order."""
    maps = torch.zeros(n, 96, 96)
    metas = []
    for i in range(n):
        boxes = n - i
        for b in range(boxes):
            y = 2 + 6 * (b % 15)
            x = 4 + 30 * (b // 15)
            maps[i, y : y + 4, x : x + 20 + i] = 0.9
        metas.append({"name": f"img{i}", "orig_size": (96, 96), "scale": 1.0})
    return maps, metas


def test_predict_results_come_back_in_input_order() -> None:
    maps, metas = _maps_and_metas(12)
    post = DBPostProcessor()
    with EvaluatorPool(3, slots=4) as pool:
        pool.begin("predict", post)
        seqs = pool.submit(maps[:6], metas[:6])
        seqs += pool.submit(maps[6:], metas[6:])
        assert seqs == list(range(12))
        early = [seq for seq, _, _ in pool.ready()]
        assert early == list(range(len(early)))  # only a leading run, never a gap
        rest = list(pool.results_in_order())
        pids = pool.pids
    assert early + [seq for seq, _, _ in rest] == list(range(12))
    for seq, polygons, scores in rest:
        expected, expected_scores = post(maps[seq].numpy(), metas[seq])
        assert len(polygons) == len(expected) == 12 - seq
        assert all(np.array_equal(a, b) for a, b in zip(polygons, expected, strict=True))
        assert scores == expected_scores
    assert _gone(pids)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("crash:img3", r"died while evaluating image 'img3'"),
        ("raise:img1", r"image 'img1' failed in evaluator .*injected evaluator fault"),
        ("hang:img2", r"no progress for 2 s on image 'img2'"),
    ],
)
def test_failing_evaluator_names_the_image(monkeypatch: pytest.MonkeyPatch, fault: str, message: str) -> None:
    monkeypatch.setenv(FAULT_ENV, fault)
    maps, metas = _maps_and_metas(5)
    pool = EvaluatorPool(1, timeout_s=2.0).start()
    pool.begin("metrics", DBPostProcessor())
    pids = list(pool.pids)
    extended = [{**m, "gt_polygons": [], "gt_texts": [], "gt_ignore": []} for m in metas]
    with pytest.raises(EvaluatorError, match=message):
        pool.submit(maps, extended)
        pool.collect()
    assert not pool.running and _gone(pids)


def test_failure_inside_trainer_stops_the_pool(
    monkeypatch: pytest.MonkeyPatch, datamodule: ReceiptDataModule
) -> None:
    name = datamodule.build("val")[2]["meta"]["name"]
    monkeypatch.setenv(FAULT_ENV, f"crash:{name}")
    model = _net(2)
    with pytest.raises(EvaluatorError, match=f"image '{name}'"):
        _validate(model, datamodule)
    assert model.evaluator_pool is None and model.pids and _gone(model.pids)


def _handoff_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ocr-handoff" and t.is_alive()]


def test_background_submit_keeps_input_order_and_the_results() -> None:
    maps, metas = _maps_and_metas(12)
    post = DBPostProcessor()
    with EvaluatorPool(2, slots=3) as pool:
        pool.begin("predict", post)
        for start in range(0, 12, 3):  # more batches than the thread may hold: the caller waits
            pool.submit_in_background(maps[start : start + 3], metas[start : start + 3])
        assert _handoff_threads()
        rest = list(pool.results_in_order())
    assert not _handoff_threads()  # close() stops the thread
    assert [seq for seq, _, _ in rest] == list(range(12))
    for seq, polygons, scores in rest:
        expected, expected_scores = post(maps[seq].numpy(), metas[seq])
        assert all(np.array_equal(a, b) for a, b in zip(polygons, expected, strict=True))
        assert len(polygons) == 12 - seq and scores == expected_scores


def test_background_submit_gives_the_states_of_submit() -> None:
    maps, metas = _maps_and_metas(8)
    gt = [{**m, "gt_polygons": [], "gt_texts": [], "gt_ignore": []} for m in metas]
    reports = []
    for background in (False, True):
        with EvaluatorPool(2) as pool:
            pool.begin("metrics", DBPostProcessor())
            for start in (0, 4):
                submit = pool.submit_in_background if background else pool.submit
                submit(maps[start : start + 4], gt[start : start + 4])
            reports.append(pool.collect())
    assert reports[0].images == reports[1].images == 8
    assert reports[0].states == reports[1].states
    assert reports[0].states["cleval"]["det_num_char_fp"] > 0  # every detection is a false positive


def test_background_submit_raises_the_evaluators_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "crash:img3")
    maps, metas = _maps_and_metas(5)
    pool = EvaluatorPool(1, slots=2, timeout_s=2.0).start()
    pool.begin("metrics", DBPostProcessor())
    pids = list(pool.pids)
    extended = [{**m, "gt_polygons": [], "gt_texts": [], "gt_ignore": []} for m in metas]
    with pytest.raises(EvaluatorError, match=r"died while evaluating image 'img3'"):
        for i in range(5):
            pool.submit_in_background(maps[i : i + 1], extended[i : i + 1])
        pool.collect()
    pool.close()
    assert not pool.running and _gone(pids) and not _handoff_threads()


def test_the_last_batch_is_shared_with_the_main_process() -> None:
    """One batch of 4 (the epoch's last) with 1 evaluator: the main process evaluates 2 of them
    itself instead of waiting in the drain; the summed states stay the in-process ones."""
    dm = _synthetic(6, batch_size=4)
    reference = _net(0)
    _validate(reference, dm)
    assert reference.snapshot["iou"]["num_images"] == 6
    for workers, own in ((1, 1), (2, 0)):  # last batch: 2 images, 1 // (workers + 1) of them here
        model = _net(workers)
        _validate(model, dm)
        assert model.evaluator_stats is not None
        assert model.evaluator_stats["images"] == 6 - own, workers
        assert model.snapshot == reference.snapshot, workers
