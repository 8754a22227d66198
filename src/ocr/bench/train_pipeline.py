"""Training data cost as a fast GPU would see it: ``ocr bench pipeline --phase train``.

A real Lightning ``fit`` of the real data module (reader, augmentation, DB targets, DataLoader
workers with the defaults or ``--workers``) with a stand-in model whose training step sleeps
``--step-ms`` milliseconds: the main process is free while "the device" computes, as with a GPU,
so the data pipeline is the bottleneck whenever it cannot keep up. Validation runs every epoch on
``--val-data`` (default: the ``val`` folder beside ``--data``), a stand-in step of
``--val-step-ms`` per batch, so that the epoch boundary lasts what it lasts in a real run.

Per training epoch it prints one JSON line: ``first_batch_wait_s`` (loader start in the epoch +
its first fetch: the epoch-boundary stall), ``steady_data_wait_share`` (data wait after the first
batch / the epoch's time after it), ``data_wait_share``, ``samples_per_s``, worker time per sample
and stage (``decode``, ``transform``, ``targets``, ``collate``: the profiler's in-worker timings),
and the training workers' CPU time per sample (user + system of the worker processes, read at the
end of each epoch). The last line adds the workers and prefetch depth the loader used (and whether
they were derived from the machine), ``first_batch_wait_vs_epoch1`` and ``worker_cpu_vs_epoch1``
for every later epoch (``--decoded-cache``: epoch 1 fills a fresh decoded-image cache, the later
epochs read it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch

from ocr.bench.common import bench_trainer, call_with_args
from ocr.errors import UserInputError
from ocr.perf.schema import EpochEntry
from ocr.perf.system import cpu_seconds

STAGES = ("decode", "decoded_cache", "transform", "targets", "collate")


class StandInModule(L.LightningModule):
    """A model whose step costs ``step_ms`` of device time and no CPU: ``time.sleep``."""

    def __init__(self, step_ms: float = 50.0, val_step_ms: float = 50.0) -> None:
        super().__init__()
        self.step_s = step_ms / 1000.0
        self.val_step_s = val_step_ms / 1000.0
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        time.sleep(self.step_s)
        return (self.weight - 1.0).pow(2).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        time.sleep(self.val_step_s)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class WorkerCPU(L.Callback):
    """CPU seconds of the DataLoader workers of one phase, read at the end of each of its epochs.

    The pids come from the batches (``perf.worker_pid``) and are read while the workers are alive.
    ``train``: the workers persist across epochs (``span_epochs``), so each reading is cumulative.
    ``validate`` (``ocr.bench.pipeline``): each ``validate`` call forks fresh workers that are gone
    once it returns, so each reading is that epoch's and the pids start over.
    """

    def __init__(self, phase: Literal["train", "validate"]) -> None:
        super().__init__()
        self.phase = phase
        self.pids: set[int] = set()
        self.seconds: list[float] = []

    def _seen(self, phase: str, batch: Any) -> None:
        pid = (batch.get("perf") or {}).get("worker_pid") if isinstance(batch, dict) else None
        if phase == self.phase and pid and pid != os.getpid():
            self.pids.add(int(pid))

    def _read(self, phase: str) -> None:
        if phase == self.phase:
            self.seconds.append(cpu_seconds(self.pids))
            if phase == "validate":
                self.pids = set()

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        self._seen("train", batch)

    def on_validation_batch_start(self, trainer: Any, module: Any, batch: Any, *args: Any) -> None:
        self._seen("validate", batch)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        self._read("train")

    def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
        self._read("validate")


def _epoch_line(entry: EpochEntry, cpu_s: float | None) -> dict[str, Any]:
    samples = int(entry["samples"])
    worker = entry["worker_stages"]
    per_sample = {s: 1000.0 * worker[s]["total"] / samples for s in STAGES if s in worker and samples}
    return {
        "epoch": int(entry["epoch"]) + 1,
        "samples": samples,
        "wall_s": entry["wall_s"],
        "first_batch_wait_s": entry["first_batch_wait_s"],
        "steady_data_wait_share": entry["steady_data_wait_share"],
        "data_wait_share": entry["data_wait_share"],
        "samples_per_s": entry["samples_per_s"],
        "worker_ms_per_sample": {**per_sample, "total": sum(per_sample.values())},
        "worker_cpu_ms_per_sample": 1000.0 * cpu_s / samples if cpu_s is not None and samples else None,
        "workers_seen": entry["workers"],
        "decoded_cache_hits": int(entry["counters"].get("decoded_cache_hits", 0)),
        "decoded_cache_misses": int(entry["counters"].get("decoded_cache_misses", 0)),
    }


def run_train_pipeline(
    data: str | None,
    val_data: str | None = None,
    reader: str = "sroie",
    workers: int | None = None,
    prefetch: int | None = None,
    epochs: int = 3,
    image_size: int = 1024,
    crop: int | None = 640,
    batch_size: int = 16,
    val_batch_size: int = 8,
    step_ms: float = 50.0,
    val_step_ms: float = 50.0,
    limit_batches: int | None = None,
    limit_val_batches: int | None = None,
    span_epochs: bool = True,
    decoded_cache: bool = False,
    overrides: tuple[str, ...] | list[str] = (),
    output: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit ``epochs`` epochs of the stand-in model and summarise each training epoch."""
    import hydra

    from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
    from ocr.config_dir import compose_config

    roots: list[str] = []
    if data is not None:  # the synthetic reader makes its own receipts
        if not Path(data).is_dir():
            raise UserInputError(f"--data {data} is not a folder; pass a split folder (e.g. sroie/train)")
        if val_data is None:
            sibling = Path(data).parent / "val"
            val_data = str(sibling) if sibling.is_dir() else data
        elif not Path(val_data).is_dir():
            raise UserInputError(
                f"--val-data {val_data} is not a folder; pass a split folder (e.g. sroie/val)"
            )
        roots = [f"data.train_root={data}", f"data.val_root={val_data}"]
    with contextlib.ExitStack() as temporary:
        # a fresh cache, and a run folder unless given, removed when the fit is done
        cache = temporary.enter_context(
            tempfile.TemporaryDirectory(prefix="ocr-bench-train-cache-", ignore_cleanup_errors=True)
        )
        out = output or temporary.enter_context(
            tempfile.TemporaryDirectory(prefix="ocr-bench-train-", ignore_cleanup_errors=True)
        )
        args = [
            f"data={reader}",
            *roots,
            f"data.image_size={image_size}",
            f"data.augment.crop_size={crop if crop else 'null'}",
            f"data.loader.batch_size={batch_size}",
            f"data.loader.val_batch_size={val_batch_size}",
            f"data.loader.num_workers={'null' if workers is None else workers}",
            f"data.loader.prefetch_factor={'null' if prefetch is None else prefetch}",
            f"data.loader.span_epochs={str(span_epochs).lower()}",
            f"data.cache.dir={cache}",
            f"data.cache.decoded={str(decoded_cache).lower()}",
            f"seed={seed}",
            *overrides,
        ]
        cfg = compose_config("train", args)
        L.seed_everything(seed, workers=True, verbose=False)
        datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
        model = StandInModule(step_ms, val_step_ms)
        profiler = PerformanceProfilerCallback(output_dir=out)
        cpu = WorkerCPU("train")
        trainer = bench_trainer(
            [profiler, cpu],
            max_epochs=epochs,
            limit_train_batches=limit_batches,
            limit_val_batches=limit_val_batches,
            default_root_dir=out,
        )
        trainer.fit(model, datamodule=datamodule)
        plan = datamodule.loader_plan()
        train = [e for e in profiler.epochs if e["phase"] == "train"]
        # the workers persist across epochs: an epoch's CPU is the difference of two readings
        deltas = [now - before for before, now in zip([0.0, *cpu.seconds], cpu.seconds, strict=False)]
        lines = []
        for i, entry in enumerate(train):
            line = _epoch_line(entry, deltas[i] if i < len(deltas) and plan.train_workers else None)
            lines.append(line)
            print(json.dumps(line), flush=True)
    first = lines[0]["first_batch_wait_s"] if lines else None
    later = [line["first_batch_wait_s"] for line in lines[1:]]
    steady = [line["steady_data_wait_share"] for line in lines[1:] or lines]
    return {
        "phase": "train",
        "data": data,
        "val_data": val_data,
        "image_size": image_size,
        "crop": crop,
        "batch_size": batch_size,
        "step_ms": step_ms,
        "val_step_ms": val_step_ms,
        "span_epochs": span_epochs,
        "workers": plan.train_workers,
        "val_workers": plan.val_workers,
        "prefetch_factor": plan.prefetch_factor,
        "workers_from_machine": plan.auto_workers,
        "prefetch_from_machine": plan.auto_prefetch,
        "cores_for_rank": plan.cores,
        "epochs": lines,
        "decoded_cache": decoded_cache,
        "first_batch_wait_vs_epoch1": [w / first if first else None for w in later],
        # with --decoded-cache: epoch 1 fills the (fresh) cache, later epochs read it
        "worker_cpu_vs_epoch1": [
            line["worker_cpu_ms_per_sample"] / lines[0]["worker_cpu_ms_per_sample"]
            if line["worker_cpu_ms_per_sample"] and lines[0]["worker_cpu_ms_per_sample"]
            else None
            for line in lines[1:]
        ],
        "steady_data_wait_share_median": statistics.median_high(steady) if steady else None,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--phase train`` options (``ocr.bench.pipeline`` adds the shared ones)."""
    group = parser.add_argument_group("--phase train")
    group.add_argument(
        "--val-data", default=None, help="validation split (default: the val folder beside --data)"
    )
    group.add_argument("--crop", type=int, default=640, help="data.augment.crop_size (0: no crop)")
    group.add_argument("--step-ms", type=float, default=50.0, help="stand-in training step, ms")
    group.add_argument(
        "--val-step-ms", type=float, default=None, help="stand-in validation step (default: --step-ms)"
    )
    group.add_argument("--val-batch-size", type=int, default=8)
    group.add_argument(
        "--prefetch", type=int, default=None, help="data.loader.prefetch_factor (default: derived)"
    )
    group.add_argument("--limit-val-batches", type=int, default=None)
    group.add_argument(
        "--decoded-cache",
        action="store_true",
        help="data.cache.decoded=true (a fresh cache: epoch 1 cold, later epochs warm)",
    )
    group.add_argument(
        "--no-span",
        dest="span_epochs",
        action="store_false",
        help="data.loader.span_epochs=false: workers stop at each epoch's end",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.data is None and args.reader != "synthetic":
        raise UserInputError("--phase train needs --data SPLIT_FOLDER (e.g. ../shared/datasets/sroie/train)")
    # the defaults that differ from --phase validate's, and --crop 0 / no --val-step-ms spelled out
    args.batch_size = 16 if args.batch_size is None else args.batch_size
    args.crop = args.crop or None
    args.val_step_ms = args.step_ms if args.val_step_ms is None else args.val_step_ms
    return call_with_args(run_train_pipeline, args)
