"""Run information (hardware, versions) and memory readings for ``perf_summary.json``."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import psutil
import torch

from ocr.perf.schema import MemoryReading, RunBlock, reader_label

MB = 1024.0**2


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 2),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 1024**3, 2)
    return info


def versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        **{
            pkg: _version(pkg)
            for pkg in ("ocr", "lightning", "numpy", "numba", "albumentations", "timm", "cleval")
        },
    }


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (one that has exited: 0)."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def memory_snapshot(process: psutil.Process | None = None, pss: bool = False) -> MemoryReading:
    """Main-process and child-process RSS, system memory %, CUDA memory; children's PSS on request.

    ``workers_rss_mb`` counts a page once per child that maps it: forked DataLoader workers and
    evaluators share most of their pages with their parent, so the sum grows with the process
    count, not with memory use. ``workers_pss_mb`` (proportional set size: a shared page split
    between its sharers) is what the children really cost, and what the memory budget checks.
    It is read only with ``pss=True``: the kernel walks each child's page tables for it (costly
    for torch-sized processes, see docs/performance.md), so the profiler reads it once per epoch,
    not on its timeline.
    """
    process = process or psutil.Process()
    try:
        children = process.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        children = []
    rss = total_pss = 0
    for child in children:
        try:  # a child may exit between the listing and the read
            rss += child.memory_info().rss
            if pss:
                total_pss += getattr(child.memory_full_info(), "pss", 0)  # Linux only; 0 elsewhere
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    snap: MemoryReading = {
        "rss_mb": process.memory_info().rss / MB,
        "workers_rss_mb": rss / MB,
        "workers": float(len(children)),
        "system_percent": psutil.virtual_memory().percent,
    }
    if pss:
        snap["workers_pss_mb"] = total_pss / MB
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        snap["gpu_allocated_mb"] = torch.cuda.memory_allocated() / MB
        snap["gpu_reserved_mb"] = torch.cuda.memory_reserved() / MB
        snap["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / MB
    return snap


def run_block(hparams: dict[str, Any], planned_workers: Callable[[], int] | None = None) -> RunBlock:
    """The summary's ``run`` block from the model/data/trainer hyper-parameters.

    ``planned_workers`` gives the worker count the data module derived from the machine, for a
    config that left ``num_workers`` null: the block records the count used, not ``None``.
    """
    blob = json.dumps(hparams, sort_keys=True, default=str)
    data = hparams.get("data", {})
    net = hparams["model"].get("net") or {}
    loader = data.get("loader") or {}
    workers = loader.get("num_workers")
    if workers is None and planned_workers is not None:
        workers = planned_workers()
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": hardware_info(),
        "versions": versions(),
        "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:16],
        "config": {
            "reader": reader_label(data.get("reader")),
            "image_size": data.get("image_size"),
            "batch_size": loader.get("batch_size"),
            "num_workers": workers,
            "cache_enabled": (data.get("cache") or {}).get("enabled"),
            "target_formula": (data.get("targets") or {}).get("formula"),
            "augment": (data.get("augment") or {}).get("enabled"),
            "backbone": net.get("backbone"),
            **hparams["trainer"],
        },
        "hparams": json.loads(blob),
    }
