"""Decoded-image cache: a hit skips decode + resize and gives the training input bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from ocr.cache.client import CacheClient
from ocr.cache.codec import KIND_DECODED
from ocr.data.datamodule import ReceiptDataModule
from ocr.data.datasets.base import ReceiptDataset
from ocr.data.decoded_cache import DecodedImageDataset
from ocr.data.sample import TextSample
from ocr.data.transforms import ReceiptTransform, TransformConfig
from ocr.models.lit_module import DBNetModule


class Painted(ReceiptDataset):
    """Receipts drawn from the index (no files); counts how often a sample is decoded."""

    def __init__(self, size: int = 3) -> None:
        super().__init__()
        self.size, self.loads = size, 0

    def __len__(self) -> int:
        return self.size

    def identity(self, index: int) -> tuple[Any, ...]:
        return ("painted", index)

    def load(self, index: int) -> TextSample:
        self.loads += 1
        rng = np.random.default_rng(index)
        image = rng.integers(0, 255, (180 + 20 * index, 120, 3), dtype=np.uint8)
        box = np.array([[10, 10], [100, 12], [98, 40], [12, 38]], np.float32) + index
        return TextSample(image, [box], ["TOTAL"], [False], f"r{index}", {"issues": {}})


def _samples(dataset: Any, seed: int) -> list[dict[str, Any]]:
    dataset.transform.set_random_seed(seed)
    return [dataset[i] for i in range(len(dataset))]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        torch.equal(a["image"], b["image"])
        and all(np.array_equal(p, q) for p, q in zip(a["polygons"], b["polygons"], strict=True))
        and a["meta"]["orig_size"] == b["meta"]["orig_size"]
        and a["meta"]["scale"] == b["meta"]["scale"]
    )


def test_hits_give_the_same_augmented_samples_without_decoding(tmp_path: Path) -> None:
    config = TransformConfig(image_size=96)
    plain = Painted()
    plain.transform = ReceiptTransform(config, train=True, seed=5)
    cached_reader = Painted()
    cached_reader.transform = ReceiptTransform(config, train=True, seed=5)
    cached = DecodedImageDataset(
        cached_reader, CacheClient("decoded", KIND_DECODED, tmp_path / "c", 2**30, memory_items=0)
    )
    for seed in (1, 2):  # epoch 1 (cold), epoch 2 (warm: no decode), with new augmentation draws
        want, got = _samples(plain, seed), _samples(cached, seed)
        assert all(_same(a, b) for a, b in zip(want, got, strict=True))
    assert cached_reader.loads == 3, "decoded once per sample, then served from the store"
    assert [s["perf"]["counters"] for s in got] == [{"decoded_cache_hits": 1}] * 3
    assert all(s["perf"]["decode"] == 0.0 for s in got)


def test_a_corrupt_entry_is_dropped_and_decoded_again(tmp_path: Path) -> None:
    reader = Painted(1)
    reader.transform = ReceiptTransform(TransformConfig(image_size=64), train=True, seed=0)
    store = CacheClient("decoded", KIND_DECODED, tmp_path / "c", 2**30, memory_items=0)
    cached = DecodedImageDataset(reader, store)
    first = _samples(cached, 3)[0]
    store.write(cached.key(0), [b"not an entry"])
    again = _samples(cached, 3)[0]
    assert reader.loads == 2 and again["perf"]["counters"] == {"decoded_cache_misses": 1}
    assert _same(first, again)


class _Losses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, idx: int) -> None:
        self.losses.append(float(outputs["loss"]))


def _first_losses(tmp: Path, decoded: bool) -> list[float]:
    L.seed_everything(0, workers=True, verbose=False)
    data = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.synthetic.SyntheticReceipts"},
        train={"num_samples": 6, "seed": 0, "cache_dir": str(tmp.parent / "synthetic")},
        val={"num_samples": 2, "seed": 1, "cache_dir": str(tmp.parent / "synthetic")},
        image_size=96,
        loader={"batch_size": 2, "num_workers": 0},
        cache={"enabled": True, "dir": str(tmp / "cache"), "decoded": decoded},
    )
    module = DBNetModule(net={"backbone": "mobilenetv3_small_050", "inner_channels": 32})
    losses = _Losses()
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[losses],
        default_root_dir=str(tmp),
    )
    trainer.fit(module, datamodule=data)
    return losses.losses


def test_first_three_losses_identical_with_the_cache_on_and_off(tmp_path: Path) -> None:
    off = _first_losses(tmp_path / "off", decoded=False)
    cold = _first_losses(tmp_path / "on", decoded=True)  # misses: decoded, stored
    warm = _first_losses(tmp_path / "on", decoded=True)  # the same folder: hits
    assert len(off) == 3 and cold == off and warm == off, (off, cold, warm)
