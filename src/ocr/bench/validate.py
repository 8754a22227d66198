"""``ocr bench validate``: the real validation loop with a stand-in model, per evaluator-pool size.

``ocr bench validate --data /work/shared/datasets/sroie/val --size 1024 --pools 0,1,2 --forward-ms 20``

The stand-in (:class:`GTStandIn`) is a ``DBNetModule`` whose forward pass returns the batch's GT
shrink map as the probability map after ``--forward-ms`` per image (a sleep: a GPU forward leaves
the CPU idle), so the post-processing and CLEval/IoU work is the one a perfect model causes. The
batches go through the data pipeline once, before anything is timed, and are then served from
memory (images dropped: the stand-in does not look at them), so the figures measure the
evaluation pipeline, not decoding. Each pool size gets one model whose pool lives across its
``trainer.validate`` calls, as it lives across a fit's epochs; after one untimed epoch per size,
each repeat runs one epoch per pool size, side by side; the figures are medians over the repeats,
read from ``PerformanceProfilerCallback``.

Per pool size (one JSON line each): images/s; main-process ms per image (epoch wall time minus
the epoch-end drain, per image); drain ms and how many images' worth of evaluation work it is;
the evaluation work per image (pool: its busy time; size 0: post-processing + metric update in the
step); ``hidden_share``, the share of that work the main process did not wait for. The last line
adds the speed-up of each size over size 0 and whether the summed metric states are identical.

Each size's CPU per image is measured too, of the main process and of the evaluators, over the
epoch (drain included): ``cpu_bound_images_per_s`` is the most that CPU allows on this machine's
cores, whatever the scheduling, and ``cpu_bound_vs_pool0`` that bound over size 0's (the CPU of
size 0, which is serial); both only with ``--forward-ms 0`` (the stand-in's forward sleeps). A
speed-up beyond the bound needs less CPU per image, not more overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from ocr.bench.common import bench_trainer
from ocr.data.sample import Batch
from ocr.errors import UserInputError
from ocr.models.lit_module import DBNetModule
from ocr.perf.stats import stage_total
from ocr.perf.system import cpu_seconds

STANDIN_NET = {"backbone": "mobilenetv3_small_050", "inner_channels": 16}


class GTStandIn(DBNetModule):
    """Outputs the GT shrink map (``batch["prob_maps"]``) after ``forward_ms`` per image."""

    def __init__(self, forward_ms: float = 0.0, **kwargs: Any) -> None:
        super().__init__(net=STANDIN_NET, **kwargs)
        self.forward_ms = forward_ms

    def _eval_outputs(self, batch: Batch, prefix: str) -> dict[str, torch.Tensor]:
        start = time.perf_counter()
        # (free on prepare_batches' float32 maps: a zero-cost forward costs nothing per step)
        prob = batch["prob_maps"].to(torch.float32).unsqueeze(1)
        left = self.forward_ms * batch["images"].shape[0] / 1000.0 - (time.perf_counter() - start)
        if left > 0:
            time.sleep(left)
        return {"prob": prob}

    def _forward_leaves_cpu_idle(self) -> bool:
        return self.forward_ms > 0  # the stand-in's forward is a device's: the CPU sleeps through it


def prepare_batches(
    data: str | None, image_size: int, batch_size: int, limit: int, loader_workers: int
) -> list[dict[str, Any]]:
    """Validation batches from the real data pipeline, held in memory without their images."""
    from ocr.data.datamodule import ReceiptDataModule

    if data is not None and not Path(data).is_dir():
        raise UserInputError(f"--data {data} is not a folder; pass a split folder (e.g. sroie/val)")
    reader_kwargs: dict[str, Any]
    if data is None:
        reader_kwargs = {"val": {"num_samples": limit or 8}}  # the default reader: synthetic
    else:
        reader_kwargs = {"reader": {"_target_": "ocr.data.datasets.sroie.SROIEDataset"}, "root": data}
    dm = ReceiptDataModule(
        **reader_kwargs,
        image_size=image_size,
        loader={"num_workers": loader_workers, "val_batch_size": batch_size, "batch_size": batch_size},
        cache={"enabled": False},
    )
    dm.setup("validate")
    batches: list[dict[str, Any]] = []
    seen = 0
    for batch in dm.val_dataloader():
        n = batch["images"].shape[0]
        if n == 0:
            continue
        batch["images"] = torch.zeros((n, 3, 1, 1), dtype=torch.uint8)
        # the stand-in's output, converted once here: a real network's output is float32 already
        batch["prob_maps"] = batch["prob_maps"].to(torch.float32)
        batch.pop("perf", None)
        batches.append(batch)
        seen += n
        if limit and seen >= limit:
            break
    if not batches:
        raise UserInputError(f"--data {data}: no validation images")
    return batches


class _PoolKept(GTStandIn):
    """The stand-in, keeping its evaluator pool across ``validate`` calls as a fit keeps it."""

    def teardown(self, stage: str) -> None:
        pass


def _pool_cpu_s(model: L.LightningModule) -> float:
    """CPU seconds the model's evaluator processes have used so far (0 without a pool)."""
    pool = getattr(model, "evaluator_pool", None)
    return cpu_seconds(pool.pids) if pool is not None else 0.0


class _CPUClock(L.Callback):
    """CPU seconds of this process and of the evaluators over the epoch, drain included."""

    def __init__(self) -> None:
        self.main_s = self.pool_s = 0.0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.main_s, self.pool_s = -time.process_time(), -_pool_cpu_s(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the module's epoch end, which drains the pool
        self.main_s += time.process_time()
        self.pool_s += _pool_cpu_s(pl_module)


def cpu_bound(row: dict[str, Any], cores: int) -> float:
    """The most images/s this pool size could give on ``cores`` cores, from its measured CPU.

    The main process is serial (its CPU per image bounds it alone), each evaluator too (the pool
    size over the pool's CPU per image), and all of them share the cores.
    """
    main, pool = row["main_cpu_ms_per_image"] / 1000.0, row["pool_cpu_ms_per_image"] / 1000.0
    bounds = [1.0 / main if main > 0 else float("inf"), cores / (main + pool)]
    if row["pool"] > 0 and pool > 0:
        bounds.append(row["pool"] / pool)
    return min(bounds)


def _one_epoch(model: _PoolKept, batches: list[dict[str, Any]]) -> dict[str, Any]:
    from ocr.callbacks.performance_profiler import PerformanceProfilerCallback

    profiler = PerformanceProfilerCallback(summary_file=None)
    # collate_fn passes each batch as it is: default_convert would turn the metas' numpy GT into
    # tensors, which no real validation batch carries (DBCollateFN keeps them numpy)
    loader: DataLoader[Any] = DataLoader(
        batches,  # type: ignore[arg-type]
        batch_size=None,
        shuffle=False,
        collate_fn=lambda batch: batch,
    )
    clock = _CPUClock()
    # the clock first: its epoch ends before the profiler's epoch-end memory reading (the
    # children's PSS, a walk of their page tables), which is the profiler's cost, not validation's
    bench_trainer([clock, profiler]).validate(model, dataloaders=loader, verbose=False)
    entry = [e for e in profiler.epochs if e["phase"] == "validate"][-1]
    samples = int(entry["samples"])
    stages = entry["stages"]
    evaluator = entry.get("evaluator")
    drain = stage_total(stages, "eval_drain")
    if evaluator:
        work = float(evaluator["busy_s"])
        hidden = evaluator["hidden_share"]
    else:
        work = sum(stage_total(stages, s) for s in ("postprocess", "metric_update"))
        hidden = 0.0
    work_per_image = work / samples
    return {
        "images": samples,
        "wall_s": entry["wall_s"],
        "images_per_s": samples / entry["wall_s"],
        "main_ms_per_image": 1000.0 * (entry["wall_s"] - drain) / samples,
        "handoff_ms_per_image": 1000.0 * stage_total(stages, "handoff") / samples,
        "slot_wait_ms_per_image": 1000.0 * stage_total(stages, "eval_wait") / samples,
        "drain_ms": 1000.0 * drain,
        "drain_images_worth": drain / work_per_image if work_per_image > 0 else None,
        "eval_work_ms_per_image": 1000.0 * work_per_image,
        "hidden_share": hidden,
        "main_cpu_ms_per_image": 1000.0 * clock.main_s / samples,
        "pool_cpu_ms_per_image": 1000.0 * clock.pool_s / samples,
        "busy_share": evaluator["busy_share"] if evaluator else None,
        **{
            f"pool_{stage}_ms_per_image": 1000.0 * seconds / samples
            for stage, seconds in (evaluator["stages"] if evaluator else {}).items()
        },
        "counts": {
            k: v for k, v in getattr(model, "last_val_metrics", {}).items() if k.startswith("val/num_")
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    pools = [int(p) for p in str(args.pools).split(",") if p.strip()]
    if not pools or min(pools) < 0:
        raise UserInputError(f"--pools {args.pools}: comma-separated pool sizes >= 0, e.g. 0,1,2")
    torch.set_num_threads(1)
    batches = prepare_batches(args.data, args.size, args.batch_size, args.limit, args.loader_workers)
    from ocr.evaluation.worker import warm_up

    warm_up()  # the in-process path's first image must not pay cleval's JIT compilation
    runs: dict[int, list[dict[str, Any]]] = {p: [] for p in pools}
    copy_thread = {"auto": None, "on": True, "off": False}[args.copy_thread]
    evaluator = {"handoff": args.handoff, "copy_thread": copy_thread}
    models = {p: _PoolKept(args.forward_ms, evaluator={**evaluator, "workers": p}) for p in pools}
    try:
        for pool in pools:  # one untimed epoch each: pool start and first touches of its slots
            _one_epoch(models[pool], batches)
        for _ in range(args.repeats):  # then the sizes side by side, repeat after repeat
            for pool in pools:
                runs[pool].append(_one_epoch(models[pool], batches))
    finally:
        for model in models.values():
            model._close_pool()
    results: dict[str, Any] = {}
    cores = len(os.sched_getaffinity(0))
    for pool in pools:
        reps = runs[pool]
        row: dict[str, Any] = {"pool": pool, "forward_ms": args.forward_ms, "images": reps[0]["images"]}
        for key in reps[0]:
            values = [r[key] for r in reps if isinstance(r[key], int | float)]
            if key not in ("images", "counts") and values:
                row[key] = statistics.median(values)
        if not args.forward_ms:  # a stand-in forward sleeps: CPU does not bound that loop
            row["cpu_bound_images_per_s"] = cpu_bound(row, cores)
        print(json.dumps(row), flush=True)
        results[str(pool)] = row
    reference = runs[pools[0]][0]["counts"]
    identical = all(r["counts"] == reference for reps in runs.values() for r in reps)
    base = results.get("0")

    def vs_pool0(key: str) -> dict[str, float]:
        """Every other pool size's ``key`` over size 0's (nothing without a size 0)."""
        return {k: v[key] / base[key] for k, v in results.items() if k != "0"} if base else {}

    return {
        "data": args.data,
        "size": args.size,
        "batch_size": args.batch_size,
        "forward_ms": args.forward_ms,
        "handoff": args.handoff,
        "copy_thread": models[pools[0]].copy_thread(),
        "repeats": args.repeats,
        "pools": results,
        "images_per_s_vs_pool0": vs_pool0("images_per_s"),
        "cores": cores,
        # the speed-up over size 0 that the CPU each used allows on these cores, bound over bound
        # (the same window for both): a speed-up beyond it is out of reach of any scheduling
        "cpu_bound_vs_pool0": {} if args.forward_ms else vs_pool0("cpu_bound_images_per_s"),
        "states_identical": identical,
        "counts": reference,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="SROIE split folder (default: synthetic receipts)")
    parser.add_argument("--size", type=int, default=1024, help="network input size (longest side)")
    parser.add_argument("--pools", default="0,1,2", help="evaluator pool sizes to compare (0: in-process)")
    parser.add_argument("--forward-ms", type=float, default=0.0, help="stand-in forward cost per image")
    parser.add_argument("--batch-size", type=int, default=1, help="validation batch size")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per pool size (median)")
    parser.add_argument("--handoff", default="auto", help="map encoding: auto | uint8 | float16 | float32")
    parser.add_argument(
        "--copy-thread",
        choices=("auto", "on", "off"),
        default="auto",
        help="hand-off copies behind the forward pass (auto: when --forward-ms > 0, as on CUDA)",
    )
    parser.add_argument("--loader-workers", type=int, default=0, help="DataLoader workers (preparation)")
