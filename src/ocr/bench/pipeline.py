"""Validation data cost, epoch by epoch: does the cache make epoch 2 nearly free?

``ocr bench pipeline --data /work/shared/datasets/sroie/val --workers 2 --epochs 2`` runs a real
Lightning validation ``--epochs`` times (a tiny DBNet; the model is not what is measured) with
the :class:`~ocr.callbacks.performance_profiler.PerformanceProfilerCallback`, starting from an
empty cache folder. Each ``trainer.validate`` call starts fresh DataLoader workers, so every hit
after epoch 1 is the cross-process path (shared folder, empty in-process LRU).

Per epoch it prints one JSON line: worker time per image split into ``decode``, ``transform``,
``sample_identity`` (the sample key: hashing the input files' bytes), ``sample_cache``
(whole-sample cache read, or encode + store on a miss), ``targets`` (map cache hit, or
computation) and ``collate`` (the profiler's in-worker wall clock); the workers' CPU time per
image (user + system, read from the worker processes when the epoch ends: it includes what the
stages leave out, e.g. moving the batch to shared memory, and unlike wall time it does not grow
when the workers wait for a core); target and sample cache hits/misses summed over workers; maps
computed. The last line adds ``epoch2_vs_epoch1`` (stage time per image, last epoch / first) and
``epoch2_vs_epoch1_cpu`` (worker CPU time per image, likewise), and the content check's cost per
image (``identity_ms_per_image``) next to what a hit saves (``hit_saves_ms_per_image``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from ocr.bench.common import bench_trainer, call_with_args
from ocr.errors import UserInputError
from ocr.perf.schema import EpochEntry
from ocr.perf.stats import stage_total

STAGES = ("decode", "transform", "sample_identity", "sample_cache", "targets", "collate")


def _epoch_summary(entry: EpochEntry) -> dict[str, Any]:
    samples = int(entry["samples"])
    worker = entry["worker_stages"]
    per_image = {s: 1000.0 * worker[s]["total"] / samples for s in STAGES if s in worker and samples}
    counters = entry["counters"]

    def rate(hits: str, misses: str) -> dict[str, Any]:
        h, m = int(counters.get(hits, 0)), int(counters.get(misses, 0))
        return {"hits": h, "misses": m, "hit_rate": h / (h + m) if h + m else None}

    wait = stage_total(entry["stages"], "data_wait")
    return {
        "samples": samples,
        "workers": entry["workers"],
        "worker_ms_per_image": {**per_image, "total": sum(per_image.values())},
        "data_wait_ms_per_image": 1000.0 * wait / samples if samples else None,
        "target_cache": rate("target_cache_hits", "target_cache_misses"),
        "sample_cache": rate("sample_cache_hits", "sample_cache_misses"),
        "targets_computed": int(counters.get("targets_computed", 0)),
        "wall_s": entry["wall_s"],
    }


def run_pipeline(
    data: str | None,
    reader: str = "sroie",
    workers: int = 2,
    epochs: int = 2,
    image_size: int = 1024,
    batch_size: int = 4,
    cache_dir: str | None = None,
    samples: bool = True,
    enabled: bool = True,
    limit_batches: int | None = None,
    accelerator: str = "cpu",
    overrides: Sequence[str] = (),
    output: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Validate ``epochs`` times and summarise each epoch (see the module docstring)."""
    import hydra

    from ocr.bench.train_pipeline import WorkerCPU
    from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
    from ocr.config_dir import compose_config

    if data is not None and not Path(data).is_dir():
        raise UserInputError(f"--data {data} is not a folder; pass a split folder (e.g. sroie/val)")
    with contextlib.ExitStack() as temporary:
        # a fresh cache and run folder unless given, removed when the epochs are done
        cache = cache_dir or temporary.enter_context(
            tempfile.TemporaryDirectory(prefix="ocr-bench-pipeline-cache-", ignore_cleanup_errors=True)
        )
        out = output or temporary.enter_context(
            tempfile.TemporaryDirectory(prefix="ocr-bench-pipeline-", ignore_cleanup_errors=True)
        )
        args = [
            f"data={reader}",
            *([f"data.root={data}"] if data else []),
            f"data.image_size={image_size}",
            f"data.loader.num_workers={workers}",
            f"data.loader.val_batch_size={batch_size}",
            f"data.cache.enabled={str(enabled).lower()}",
            f"data.cache.dir={cache}",
            f"data.cache.samples={str(samples).lower()}",
            "model.net.backbone=mobilenetv3_small_050",
            "model.net.inner_channels=32",
            # The DB paper's targets, the workload of this bench's figures in docs/ (not the CPU recipe's).
            "data.targets.shrink_ratio=0.4",
            "data.targets.min_text_size=8",
            *overrides,
        ]
        cfg = compose_config("train", args, run_dir=out)
        L.seed_everything(seed, workers=True, verbose=False)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        model = hydra.utils.instantiate(cfg.model, _convert_="all")
        profiler = PerformanceProfilerCallback(output_dir=out)
        cpu = WorkerCPU("validate")
        trainer = bench_trainer(
            [profiler, cpu], accelerator=accelerator, limit_val_batches=limit_batches, default_root_dir=out
        )
        results: list[dict[str, Any]] = []
        for epoch in range(epochs):
            trainer.validate(model, datamodule=datamodule, verbose=False)
            entry = [e for e in profiler.epochs if e["phase"] == "validate"][-1]
            summary = {"epoch": epoch + 1, **_epoch_summary(entry)}
            seconds = cpu.seconds[-1] if cpu.seconds else 0.0
            summary["worker_cpu_ms_per_image"] = 1000.0 * seconds / summary["samples"] if workers else None
            summary["metrics"] = dict(getattr(model, "last_val_metrics", {}))
            results.append(summary)
            print(json.dumps(summary), flush=True)
    first, last = results[0], results[-1]
    ratio = last["worker_ms_per_image"]["total"] / first["worker_ms_per_image"]["total"]
    cpu_first, cpu_last = first["worker_cpu_ms_per_image"], last["worker_cpu_ms_per_image"]
    return {
        "data": data,
        "reader": reader,
        "workers": workers,
        "image_size": image_size,
        "batch_size": batch_size,
        "cache": enabled,
        "sample_cache": samples and enabled,
        "epochs": results,
        "epoch2_vs_epoch1": ratio,
        "epoch2_vs_epoch1_cpu": cpu_last / cpu_first if cpu_first and cpu_last is not None else None,
        "last_epoch_target_hit_rate": last["target_cache"]["hit_rate"],
        "last_epoch_sample_hit_rate": last["sample_cache"]["hit_rate"],
        "metrics_identical_across_epochs": all(r["metrics"] == first["metrics"] for r in results),
        "last_epoch_targets_computed": last["targets_computed"],
        # what checking the inputs' content costs on a hit, next to what the hit saves
        "identity_ms_per_image": last["worker_ms_per_image"].get("sample_identity"),
        "hit_saves_ms_per_image": first["worker_ms_per_image"]["total"]
        - last["worker_ms_per_image"]["total"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--phase",
        choices=("validate", "train"),
        default="validate",
        help="validate (this module) or train (ocr.bench.train_pipeline: a stand-in model's fit)",
    )
    parser.add_argument("--data", default=None, help="split folder, e.g. sroie/val (not for synthetic)")
    parser.add_argument("--reader", default="sroie", help="data config: sroie | json | synthetic")
    parser.add_argument("--workers", type=int, default=None, help="validate: 2; train: from the machine")
    parser.add_argument("--epochs", type=int, default=None, help="validate: 2; train: 3")
    # (dests named as run_pipeline's and run_train_pipeline's parameters: see call_with_args)
    parser.add_argument(
        "--size", dest="image_size", metavar="SIZE", type=int, default=1024, help="data.image_size"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="validate: 4; train: 16")
    parser.add_argument("--cache-dir", default=None, help="reuse this cache folder (default: a fresh one)")
    parser.add_argument("--no-samples", dest="samples", action="store_false", help="data.cache.samples=false")
    parser.add_argument(
        "--no-cache",
        dest="enabled",
        action="store_false",
        help="data.cache.enabled=false (the uncached reference)",
    )
    parser.add_argument("--limit-batches", type=int, default=None)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--output", default=None, help="keep perf_summary.json in this folder")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data.val.num_samples=16")
    from ocr.bench import train_pipeline

    train_pipeline.add_arguments(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.phase == "train":
        from ocr.bench import train_pipeline

        args.epochs = 3 if args.epochs is None else args.epochs
        return train_pipeline.run(args)
    args.workers = 2 if args.workers is None else args.workers
    args.epochs = 2 if args.epochs is None else args.epochs
    args.batch_size = 4 if args.batch_size is None else args.batch_size
    if args.data is None and args.reader != "synthetic":
        raise UserInputError(f"--reader {args.reader} needs --data SPLIT_FOLDER")
    return call_with_args(run_pipeline, args)
