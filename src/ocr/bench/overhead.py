"""``ocr bench overhead``: what the PerformanceProfilerCallback costs per training step.

The two arms (callback on / off) run alternately in one process on the same pre-collated batches
(so data loading noise is out of the picture), each for ``steps`` optimizer steps, ``repeats``
times. Reported: the median step time of each arm, the overhead as the median over repeats of
(on / off - 1), and the time the callback itself spent in its hooks (a direct, noise-free view of
the same cost).
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from typing import Any, cast

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ocr.bench.common import alternate, bench_trainer, chunks, validation_samples
from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
from ocr.data.collate import DBCollateFN
from ocr.data.sample import Batch
from ocr.data.transforms import TransformConfig, normalize_images
from ocr.models.lit_module import DBNetModule
from ocr.perf.stats import stage_total


class _StepClock(L.Callback):
    """The same tiny timer in both arms: wall time from batch start to batch end."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0 = 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t0)


def _batches(image_size: int, batch_size: int, count: int) -> list[Batch]:
    """Pre-collated batches, images already normalised: no data module (and no device hook) here."""
    config = TransformConfig(image_size=image_size)
    collate = DBCollateFN()
    samples = validation_samples(batch_size * count, image_size, seed=7)
    batches = [collate(batch) for batch in chunks(samples, batch_size)]
    for batch in batches:
        batch["images"] = normalize_images(batch["images"], config.mean, config.std)
    return batches


def _fit(
    module: DBNetModule, batches: list[Batch], steps: int, profiled: bool, accelerator: str
) -> dict[str, Any]:
    clock = _StepClock()
    profiler = PerformanceProfilerCallback(enabled=True, summary_file=None) if profiled else None
    callbacks: list[L.Callback] = [clock] if profiler is None else [clock, profiler]
    # a list of pre-collated batches is a map-style dataset (batch_size=None: served as they are)
    dataset = cast("Dataset[dict[str, Any]]", batches)
    loader: DataLoader[dict[str, Any]] = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)
    trainer = bench_trainer(
        callbacks,
        accelerator=accelerator,
        max_steps=steps,
        limit_val_batches=0,
        precision="bf16-mixed" if accelerator == "gpu" else "32-true",
    )
    trainer.fit(module, train_dataloaders=loader)
    times = clock.times[2:]  # the first steps warm up allocators and kernels
    out: dict[str, Any] = {"median_step_s": statistics.median(times), "steps": len(times)}
    if profiler is not None and profiler.epochs:
        own = sum(stage_total(e["stages"], "profiler") for e in profiler.epochs)
        out["callback_hook_s_per_step"] = own / max(1, sum(e["batches"] for e in profiler.epochs))
        out["attributed_share"] = min(e["attributed_share"] for e in profiler.epochs)
    return out


def bench_overhead(
    backbone: str = "resnet18", image_size: int = 640, batch_size: int = 4, steps: int = 12, repeats: int = 5
) -> dict[str, Any]:
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    module = DBNetModule(net={"backbone": backbone})
    batches = _batches(image_size, batch_size, count=4)
    batches = (batches * (steps // len(batches) + 1))[:steps]
    _fit(module, batches, min(steps, 4), profiled=False, accelerator=accelerator)  # warm-up, not timed
    arms = {
        profiled: partial(_fit, module, batches, steps, profiled, accelerator) for profiled in (True, False)
    }
    runs = alternate(arms, repeats)  # ABBA: drift hits both arms
    on = [result["median_step_s"] for result in runs[True]]
    off = [result["median_step_s"] for result in runs[False]]
    ratios = [with_ / without - 1.0 for with_, without in zip(on, off, strict=True)]
    own = [result.get("callback_hook_s_per_step", 0.0) for result in runs[True]]
    step = statistics.median(off)
    return {
        "backbone": backbone,
        "image_size": image_size,
        "batch_size": batch_size,
        "device": torch.cuda.get_device_name(0) if accelerator == "gpu" else "cpu",
        "repeats": repeats,
        "steps_per_repeat": steps,
        "step_ms_without": 1e3 * step,
        "step_ms_with": 1e3 * statistics.median(on),
        "overhead_pct": 100.0 * statistics.median(ratios),
        "overhead_pct_per_repeat": [round(100.0 * x, 3) for x in ratios],
        "callback_hooks_ms_per_step": 1e3 * statistics.median(own),
        "callback_hooks_pct_of_step": 100.0 * statistics.median(own) / step,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per arm and repeat")
    parser.add_argument("--repeats", type=int, default=5)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return bench_overhead(args.backbone, args.image_size, args.batch_size, args.steps, args.repeats)
