"""Transforms keep polygons on their pixels; DBCollateFN stacks exact targets and carries timings."""

from __future__ import annotations

import numpy as np
import torch

from ocr.data.collate import DBCollateFN
from ocr.data.sample import TextSample
from ocr.data.transforms import AugmentConfig, ReceiptTransform, TransformConfig
from ocr.targets import DBTargetParams, make_db_targets


def _sample(h: int = 400, w: int = 200) -> TextSample:
    image = np.full((h, w, 3), 255, np.uint8)
    image[100:120, 20:150] = 0
    poly = np.array([[20, 100], [150, 100], [150, 120], [20, 120]], np.float32)
    return TextSample(image, [poly], ["TOTAL"], [False], "s.png")


def test_validation_transform_scales_and_pads_top_left() -> None:
    out = ReceiptTransform(TransformConfig(image_size=200), train=False)(_sample())
    assert out["image"].shape == (3, 200, 200)
    np.testing.assert_allclose(out["polygons"][0], _sample().polygons[0] * 0.5, atol=1e-4)
    assert out["meta"]["scale"] == 0.5 and out["meta"]["orig_size"] == (400, 200)
    # the dark text bar stays under its polygon after resize
    img = out["image"].numpy().mean(axis=0)
    assert img[52:58, 12:72].mean() < img[80:90, 12:72].mean() - 1.0
    # padding is bottom/right only: column 100+ is zero-filled (normalised black)
    assert np.allclose(out["image"][:, :, 100:].numpy(), out["image"][:, 0, 100].numpy()[:, None, None])


def test_augmentation_is_training_only_and_seeded() -> None:
    cfg = TransformConfig(image_size=200, augment=AugmentConfig(affine_p=1.0))
    assert ReceiptTransform(cfg, train=False).deterministic
    train_a, train_b = ReceiptTransform(cfg, train=True, seed=3), ReceiptTransform(cfg, train=True, seed=3)
    assert not train_a.deterministic
    a, b = train_a(_sample()), train_b(_sample())
    assert torch.equal(a["image"], b["image"])
    assert not np.allclose(a["polygons"][0], _sample().polygons[0] * 0.5)


def test_collate_builds_exact_targets_and_worker_timings() -> None:
    transform = ReceiptTransform(TransformConfig(image_size=200), train=False)
    samples = [transform(_sample()), transform(_sample(300, 300))]
    for s in samples:
        s["perf"]["decode"] = 0.001
    params = DBTargetParams()
    batch = DBCollateFN(params)(samples)
    assert batch["images"].shape == (2, 3, 200, 200)
    for i, s in enumerate(samples):
        ref = make_db_targets(s["polygons"], s["ignore"], (200, 200), params)
        assert np.array_equal(batch["prob_maps"][i].numpy(), ref.prob_map)
        assert np.array_equal(batch["thresh_maps"][i].numpy(), ref.thresh_map)
        assert np.array_equal(batch["prob_masks"][i].numpy(), ref.prob_mask)
        assert np.array_equal(batch["thresh_masks"][i].numpy(), ref.thresh_mask)
    perf = batch["perf"]
    assert perf["counters"]["samples"] == 2
    assert len(perf["times"]["targets"]) == 2 and len(perf["times"]["decode"]) == 2
    assert batch["prob_maps"][0].sum() > 0
