"""Inference building blocks: shipped-weights lookup, output checks, resume, box agreement, ONNX."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ocr.errors import UserInputError
from ocr.inference.agreement import box_agreement, matched_boxes
from ocr.inference.weights import save_weights, shipped_weights
from ocr.inference.writer import HEADER, check_output, completed_rows
from tests.detector_helpers import TINY_NET, bar_receipt, tiny_checkpoint


def test_missing_shipped_weights_name_the_file_and_ckpt_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCR_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(UserInputError) as err:
        shipped_weights("sroie")
    message = str(err.value)
    assert (
        "not in this build" in message and "ckpt_path=" in message and str(tmp_path / "sroie.pt") in message
    )


def test_unknown_model_name_lists_the_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(UserInputError, match="shipped: sroie"):
        shipped_weights("nope")


def test_shipped_file_is_fp16_and_loads_as_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocr.models.lit_module import DBNetModule

    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    monkeypatch.setenv("OCR_WEIGHTS_DIR", str(tmp_path / "weights"))
    save_weights(ckpt, tmp_path / "weights" / "sroie.pt")
    path = shipped_weights("sroie")
    slim = torch.load(path, map_location="cpu", weights_only=False)
    assert all(v.dtype == torch.float16 for v in slim["state_dict"].values() if v.is_floating_point())
    assert path.stat().st_size < os.path.getsize(ckpt)
    module = DBNetModule.load_from_checkpoint(path, map_location="cpu")
    full = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for name, value in module.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, full[name].half().float()), name
    assert module.hparams["net"]["backbone"] == TINY_NET["backbone"]


def test_check_output_refuses_a_directory_and_an_unwritable_folder(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="is a directory"):
        check_output(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            blocker = tmp_path / "file"
            blocker.write_text("x")
            with pytest.raises(UserInputError, match="cannot create"):
                check_output(blocker / "sub" / "out.csv")
        else:
            with pytest.raises(UserInputError, match="not writable"):
                check_output(locked / "out.csv")
    finally:
        locked.chmod(0o700)
    check_output(tmp_path / "new" / "out.csv")  # a missing parent is created
    assert (tmp_path / "new").is_dir()


def test_completed_rows_drop_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "sub.csv"
    out.write_text(",".join(HEADER) + "\na.png,1 2 3 4 5 6 7 8\nb.png,\nc.png,1 2 3")
    assert completed_rows(out) == {"a.png", "b.png"}
    assert out.read_text().endswith("b.png,\n")  # the partial row is gone from the file
    assert completed_rows(tmp_path / "missing.csv") == set()
    (tmp_path / "other.csv").write_text("name,boxes\nx,1\n")
    with pytest.raises(UserInputError, match="header"):
        completed_rows(tmp_path / "other.csv")


def test_box_agreement_counts_corners_within_tolerance() -> None:
    a = [
        np.array([[0, 0], [10, 0], [10, 5], [0, 5]], np.float32),
        np.array([[20, 20], [30, 20], [30, 25], [20, 25]], np.float32),
    ]
    b = [a[1] + 0.9, a[0] + np.array([[0, 0], [0, 0], [1.5, 0], [0, 0]], np.float32)]
    assert matched_boxes(a, b, tol=1.0) == 1
    assert box_agreement(a, b, tol=2.0) == {"boxes_a": 2, "boxes_b": 2, "matched": 2, "same_count": 1}
    assert box_agreement(a, a[:1])["same_count"] == 0


def test_pad_multiple_keeps_aspect_and_the_letterbox_mapping() -> None:
    from ocr.data.sample import TextSample
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    image, polygons = bar_receipt(0, 300, 140)
    n = len(polygons)
    sample = TextSample(image, polygons, ["x"] * n, [False] * n, "r.png")
    square = ReceiptTransform(TransformConfig(image_size=256), train=False)(sample)
    tall = ReceiptTransform(TransformConfig(image_size=256, pad_multiple=32), train=False)(sample)
    assert tuple(square["image"].shape[-2:]) == (256, 256)
    assert tuple(tall["image"].shape[-2:]) == (256, 128)  # 140 * 256/300 = 119.5 -> 128
    assert tall["meta"]["scale"] == square["meta"]["scale"]
    h, w = 256, round(140 * 256 / 300)
    assert torch.equal(tall["image"][:, :h, :w], square["image"][:, :h, :w])


def test_collate_pads_predict_images_of_different_sizes() -> None:
    from ocr.data.collate import DBCollateFN, pad_to_common_size

    a, b = torch.ones(3, 64, 32, dtype=torch.uint8), torch.ones(3, 32, 64, dtype=torch.uint8)
    padded = pad_to_common_size([a, b])
    assert [tuple(p.shape) for p in padded] == [(3, 64, 64), (3, 64, 64)]
    assert padded[0][:, :, 32:].sum() == 0 and torch.equal(padded[0][:, :, :32], a)
    batch = DBCollateFN(with_targets=False)(
        [
            {"image": a, "polygons": [], "ignore": [], "meta": {"name": "a"}, "perf": {}},
            {"skipped": {"reason": "unreadable_image", "where": "b", "message": "x"}, "index": 7, "perf": {}},
        ]
    )
    assert batch["skipped_index"] == [7] and tuple(batch["images"].shape) == (1, 3, 64, 32)


def _random_net() -> torch.nn.Module:
    from ocr.models.dbnet import DBNet

    torch.manual_seed(0)
    return DBNet(**TINY_NET).eval()


def test_onnx_export_matches_torch_maps_and_boxes_on_synthetic_receipts(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from ocr.bench.onnx_agreement import compare
    from ocr.inference.onnx_export import export_onnx
    from ocr.postprocess.db_postprocess import DBPostProcessor

    net = _random_net()
    path = export_onnx(net, tmp_path / "tiny.onnx")
    images = [bar_receipt(i, 200 + 24 * i, 90 + 10 * i)[0] for i in range(4)]  # sizes unlike the export's
    # Random weights give a smooth map; thresholds at its own quantiles make many contours, a
    # stricter test of agreement than a trained model's near-binary map.
    from ocr.data.transforms import TransformConfig
    from ocr.inference.backends import TorchBackend
    from ocr.inference.detector import Detector

    probe = Detector(TorchBackend(net), TransformConfig(image_size=160, pad_multiple=32), DBPostProcessor())
    prob, _ = probe.probability(images[0])
    lo, hi = np.quantile(prob, [0.5, 0.7])
    post = DBPostProcessor(thresh=float(hi), box_thresh=float(lo), min_size=1.0)
    result = compare(net, path, images, 160, post, pad_multiple=32, tol=1.0, threads=1)
    assert result["boxes_torch"] >= 8, result  # the comparison has boxes to compare
    assert result["prob_max_abs_diff"] <= 1e-3
    assert result["boxes_identical_share"] >= 0.99 and result["images_same_count_share"] == 1.0


def test_onnx_model_has_dynamic_height_and_width(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from ocr.inference.onnx_export import export_onnx

    net = _random_net()
    session = ort.InferenceSession(
        str(export_onnx(net, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    dims = session.get_inputs()[0].shape
    assert isinstance(dims[2], str) and isinstance(dims[3], str)
    for h, w in [(96, 64), (64, 160)]:
        x = torch.randn(2, 3, h, w)
        with torch.inference_mode():
            expected = net(x, with_thresh=False)["prob"].numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == (2, 1, h, w) and float(np.abs(got - expected).max()) <= 1e-4
