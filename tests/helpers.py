"""Test helpers: compose the real Hydra configs into a temporary run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints, is_typeddict

from omegaconf import DictConfig

from ocr.config_dir import compose_config as compose_task

# A configuration small enough for a CPU test: a tiny backbone, small images, few samples.
TINY = [
    "model.net.backbone=mobilenetv3_small_050",
    "model.net.inner_channels=32",
    "data.image_size=128",
    "data.augment.crop_size=null",  # whole 128 px images (the default recipe trains on crops)
    "data.train.num_samples=8",
    "data.val.num_samples=4",
    "data.loader.batch_size=4",
    "data.loader.num_workers=0",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    # In-process evaluation (the reference path): an evaluator pool's start-up (a forkserver that
    # imports torch, torchmetrics and CLEval) costs more CPU than 4 tiny images, and the pool is
    # tested where it is the subject (test_evaluator_pool, test_ddp, test_predict_pool, the perf suite).
    "model.evaluator.workers=0",
]


def compose_config(task: str, run_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """The tests' argument order (run folder first) over :func:`ocr.config_dir.compose_config`."""
    return compose_task(task, overrides or [], run_dir)


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ocr`` console script in a subprocess."""
    ocr = Path(sys.executable).with_name("ocr")
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [str(ocr), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


def schema_problems(value: object, hint: object, path: str = "$") -> list[str]:
    """Where ``value`` (JSON as written) leaves the typed schema ``hint``: keys a TypedDict does not
    declare, and required keys it lacks. ``[]``: the value is within the schema."""
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        hints = get_type_hints(hint)
        problems = [
            f"{path}.{k}: missing" for k in sorted(getattr(hint, "__required_keys__", ())) if k not in value
        ]
        for key, item in value.items():
            if key not in hints:
                problems.append(f"{path}.{key}: not in {getattr(hint, '__name__', hint)}")
            else:
                problems += schema_problems(item, hints[key], f"{path}.{key}")
        return problems
    origin, args = get_origin(hint), get_args(hint)
    if origin is list and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in schema_problems(item, args[0], f"{path}[{i}]")]
    if origin is dict and isinstance(value, dict):
        return [p for k, item in value.items() for p in schema_problems(item, args[1], f"{path}.{k}")]
    if origin in (Union, UnionType) and value is not None:
        nested = [a for a in args if is_typeddict(a) or get_origin(a) in (list, dict)]
        return schema_problems(value, nested[0], path) if nested else []
    return []
