"""Transforms keep polygons on their pixels; DBCollateFN stacks exact targets and carries timings;
uint8 images normalised on the device are the former CPU normaliser's float32 bit for bit, and
there is one normalisation path (``data.normalize_on_device`` was removed, and says so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ocr.data.collate import DBCollateFN
from ocr.data.sample import TextSample
from ocr.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    ReceiptTransform,
    TransformConfig,
    normalize_images,
)
from ocr.targets import DBTargetParams, make_db_targets

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _sample(h: int = 400, w: int = 200) -> TextSample:
    image = np.full((h, w, 3), 255, np.uint8)
    image[100:120, 20:150] = 0
    poly = np.array([[20, 100], [150, 100], [150, 120], [20, 120]], np.float32)
    return TextSample(image, [poly], ["TOTAL"], [False], "s.png")


def test_validation_transform_scales_and_pads_top_left() -> None:
    out = ReceiptTransform(TransformConfig(image_size=200), train=False)(_sample())
    assert out["image"].shape == (3, 200, 200) and out["image"].dtype == torch.uint8  # normalised on device
    np.testing.assert_allclose(out["polygons"][0], _sample().polygons[0] * 0.5, atol=1e-4)
    assert out["meta"]["scale"] == 0.5 and out["meta"]["orig_size"] == (400, 200)
    assert out["meta"]["input_size"] == (200, 200)
    # the dark text bar stays under its polygon after resize
    img = out["image"].numpy().mean(axis=0)
    assert img[52:58, 12:72].mean() < img[80:90, 12:72].mean() - 1.0
    # padding is bottom/right only: column 100+ is zero-filled (black)
    assert not out["image"][:, :, 100:].any() and out["image"][:, :, :100].float().mean() > 200
    assert out["image"].is_contiguous()


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
    assert batch["images"].shape == (2, 3, 200, 200) and batch["images"].dtype == torch.uint8
    assert all(torch.equal(batch["images"][i], s["image"]) for i, s in enumerate(samples))
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


# -- normalisation: uint8 on the device == float32 on the CPU, bit for bit --------------------------
def _legacy_normalizer(image: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """The CPU ``_Normalizer`` as it was before normalisation moved to the device, verbatim."""
    scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
    shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    chw *= scale[:, None, None]
    chw -= shift[:, None, None]
    return chw


def _every_value_image(seed: int = 0) -> np.ndarray:
    """HWC uint8 holding every value 0..255 in every channel, plus a random block."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), 3, axis=2)
    noise = np.random.default_rng(seed).integers(0, 256, (7, 256, 3), dtype=np.uint8)
    return np.concatenate([ramp, ramp[:, ::-1], noise])


def _bits(t: torch.Tensor | np.ndarray) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
    assert a.dtype == np.float32
    return a.view(np.uint32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("mean", "std"),
    [
        (IMAGENET_MEAN, IMAGENET_STD),
        ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ((0.1, 0.7, 0.33), (0.07, 0.31, 1.9)),
    ],
)
def test_device_normalisation_is_bit_identical_to_the_cpu_normalizer(
    device: str, mean: tuple[float, float, float], std: tuple[float, float, float]
) -> None:
    image = _every_value_image()
    reference = _legacy_normalizer(image, mean, std)
    # a batch of uint8 CHW images, as the collate makes it, moved to the device and normalised there
    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).unsqueeze(0).repeat(2, 1, 1, 1)
    on_device = normalize_images(batch.to(device), mean, std)
    assert on_device.dtype == torch.float32 and on_device.device.type == device and on_device.is_contiguous()
    for i in range(2):
        assert np.array_equal(_bits(on_device[i]), _bits(reference))


@pytest.mark.parametrize("device", DEVICES)
def test_real_receipt_normalised_on_the_device_equals_the_cpu_path(sroie_root: Path, device: str) -> None:
    from ocr.data.datasets import SROIEDataset

    dataset = SROIEDataset(root=sroie_root / "val")
    sample = dataset.load(0)
    uint8 = ReceiptTransform(TransformConfig(image_size=1024), train=False)(sample)["image"]
    on_device = normalize_images(uint8.unsqueeze(0).to(device), IMAGENET_MEAN, IMAGENET_STD)[0]
    hwc = uint8.permute(1, 2, 0).numpy()
    assert np.array_equal(_bits(on_device), _bits(_legacy_normalizer(hwc, IMAGENET_MEAN, IMAGENET_STD)))


def test_normalize_images_rejects_float_or_misshaped_input() -> None:
    with pytest.raises(TypeError, match="uint8"):
        normalize_images(torch.zeros(1, 3, 4, 4), IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ValueError, match="3, H, W"):
        normalize_images(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), IMAGENET_MEAN, IMAGENET_STD)


def _val_batch(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    from ocr.data.datamodule import ReceiptDataModule

    module = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.synthetic.SyntheticReceipts"},
        val={"num_samples": 3, "seed": 1, "cache_dir": str(tmp_path / "synthetic")},
        image_size=96,
        loader={"num_workers": 0, "batch_size": 3},
        cache={"enabled": False},
    )
    module.setup("validate")
    return module, next(iter(module.val_dataloader()))


@pytest.mark.parametrize("device", DEVICES)
def test_data_module_hook_normalises_uint8_batches_after_transfer(tmp_path: Path, device: str) -> None:
    from lightning.fabric.utilities.apply_func import move_data_to_device

    module, batch = _val_batch(tmp_path)
    assert batch["images"].dtype == torch.uint8
    expected = np.stack(
        [_legacy_normalizer(i.permute(1, 2, 0).numpy(), IMAGENET_MEAN, IMAGENET_STD) for i in batch["images"]]
    )
    normalised = module.on_after_batch_transfer(move_data_to_device(batch, torch.device(device)), 0)
    assert normalised["images"].device.type == device
    assert np.array_equal(_bits(normalised["images"]), _bits(expected))
    assert "normalize_on_device" not in module.hparams


@pytest.mark.parametrize("value", [True, False, "false"])
def test_normalize_on_device_is_removed_with_a_clear_error(value: Any) -> None:
    """One normalisation path: a config that still sets the key is told so, never silently ignored."""
    from ocr.data.datamodule import ReceiptDataModule
    from ocr.data.transforms import ReceiptTransform
    from ocr.errors import UserInputError

    with pytest.raises(UserInputError, match=r"data\.normalize_on_device was removed.*delete the key"):
        ReceiptDataModule(normalize_on_device=value)
    assert not hasattr(ReceiptTransform(TransformConfig(), train=False), "normalizer")
    assert "normalize_on_device" not in TransformConfig.__dataclass_fields__


def test_collate_refuses_float_images() -> None:
    image = torch.zeros(3, 8, 8)
    sample = {"image": image, "polygons": [], "ignore": [], "meta": {}, "perf": {}}
    with pytest.raises(RuntimeError, match="uint8"):
        DBCollateFN(DBTargetParams())([sample])


def test_content_crops_come_from_the_receipt_not_its_padding() -> None:
    """A 200x100 receipt in a 200 px square is half padding; crop_from=padded cuts 100 px crops
    anywhere in the square (some nearly all padding), crop_from=content only within the receipt."""
    quiet = {"affine_p": 0.0, "color_p": 0.0, "blur_p": 0.0, "crop_size": 100}

    def padding_shares(crop_from: str) -> list[float]:
        cfg = TransformConfig(image_size=200, augment=AugmentConfig(**quiet, crop_from=crop_from))
        transform = ReceiptTransform(cfg, train=True, seed=0)
        sample = _sample()
        sample.image[sample.image == 0] = 40  # dark ink, not the padding's exact zeros
        shares = []
        for _ in range(40):
            image = transform(sample)["image"]
            assert image.shape == (3, 100, 100)
            shares.append(float((image == 0).all(dim=0).float().mean()))
        return shares

    assert max(padding_shares("content")) == 0.0
    assert max(padding_shares("padded")) > 0.5
    with pytest.raises(ValueError, match="crop_from"):
        AugmentConfig(crop_from="receipt")
