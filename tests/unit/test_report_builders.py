"""Builders for constructed ``perf_summary.json`` documents (used by the report's rule, figure and
comparison tests), and a check that what they build has the profiler's schema."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pytest

from ocr.perf.schema import SCHEMA
from ocr.report.context import Analysis
from ocr.report.epoch_perf import from_summary
from ocr.report.rule_limits import RuleLimits
from ocr.report.rules import run_rules
from ocr.report.run import RunData, long_table

STATS = ("count", "total", "mean", "median", "p95", "p99", "std", "min", "max")


def stat(
    median: float, count: int = 10, p95: float | None = None, total: float | None = None
) -> dict[str, float]:
    p95 = median if p95 is None else p95
    return {
        "count": float(count),
        "total": median * count if total is None else total,
        "mean": median,
        "median": median,
        "p95": p95,
        "p99": p95 * 1.05,
        "std": 0.0,
        "min": median * 0.9,
        "max": p95 * 1.1,
    }


def epoch(
    phase: str,
    index: int,
    *,
    wall: float = 10.0,
    samples: int = 100,
    shares: dict[str, float] | None = None,
    batches: int = 10,
    p95_over_median: dict[str, float] | None = None,
    worker: dict[str, float] | None = None,
    hit_rate: float | None = None,
    rss: float = 1000.0,
    workers_rss: float = 2000.0,
) -> dict[str, Any]:
    """One epoch entry; ``shares`` = each stage's share of ``wall`` (spread over ``batches``)."""
    shares = shares or (
        {"data_wait": 0.05, "compute": 0.9}
        if phase == "train"
        else {"data_wait": 0.05, "compute": 0.7, "postprocess": 0.1, "metric_update": 0.1}
    )
    stages = {}
    for name, share in shares.items():
        median = share * wall / batches
        ratio = (p95_over_median or {}).get(name, 1.0)
        stages[name] = stat(median, batches, median * ratio, share * wall)
    worker = worker or {"decode": 0.010, "transform": 0.005, "targets": 0.004, "collate": 0.001}
    hits = round((hit_rate or 0.0) * samples) if hit_rate is not None else 0
    return {
        "phase": phase,
        "epoch": index,
        "world_size": 1,
        "wall_s": wall,
        "samples": samples,
        "batches": batches,
        "samples_per_s": samples / wall,
        "time_per_sample_s": wall / samples,
        "data_wait_share": shares.get("data_wait", 0.0),
        "attributed_share": sum(shares.values()),
        "stages": stages,
        "worker_stages": {k: stat(v, samples) for k, v in worker.items()},
        "workers": 2,
        "counters": {
            "samples": samples,
            "target_cache_hits": hits,
            "target_cache_misses": samples - hits if hit_rate is not None else 0,
        },
        "cache": {  # each cache client apart, as the profiler writes it
            "target": {
                "hits": hits,
                "misses": samples - hits if hit_rate is not None else 0,
                "hit_rate": hit_rate,
            },
            "sample": {"hits": 0, "misses": 0, "hit_rate": None},
        },
        "ranks": [
            {
                "rank": 0,
                "wall_s": wall,
                "samples": samples,
                "data_wait_s": shares.get("data_wait", 0) * wall,
                "data_wait_share": shares.get("data_wait", 0.0),
                "attributed_share": sum(shares.values()),
                "memory": {},
            }
        ],
        "memory": {
            "rss_mb": rss,
            "rss_peak_mb": rss,
            "workers_rss_mb": workers_rss,
            "workers_rss_peak_mb": workers_rss,
            "workers": 2.0,
            "system_percent": 20.0,
        },
    }


def summary(
    epochs: list[dict[str, Any]],
    *,
    cpu_count: int = 8,
    num_workers: int = 2,
    cache_enabled: bool = False,
    augment: bool = True,
) -> dict[str, Any]:
    """A perf_summary.json document; val_vs_train is linked as the profiler does."""
    epochs = copy.deepcopy(epochs)
    by_key = {(e["phase"], e["epoch"]): e for e in epochs}
    for e in epochs:
        if e["phase"] == "validate" and ("train", e["epoch"]) in by_key:
            train = by_key[("train", e["epoch"])]
            ratio = e["time_per_sample_s"] / train["time_per_sample_s"]
            e["val_vs_train_time_per_sample"] = train["val_vs_train_time_per_sample"] = ratio
    hits = sum(e["cache"]["target"]["hits"] for e in epochs)
    misses = sum(e["cache"]["target"]["misses"] for e in epochs)
    return {
        "schema": SCHEMA,
        "run": {
            "created": "2025-01-01T00:00:00+00:00",
            "hardware": {
                "hostname": "box",
                "cpu": "Test CPU",
                "cpu_count": cpu_count,
                "cpu_affinity": cpu_count,
                "memory_gb": 32.0,
                "cuda": False,
            },
            "versions": {"python": "3.11", "torch": "2.x"},
            "config": {
                "num_workers": num_workers,
                "cache_enabled": cache_enabled,
                "augment": augment,
                "batch_size": 10,
                "target_formula": "exact",
            },
        },
        "epochs": epochs,
        "cache": {
            "target": {
                "hits": hits,
                "misses": misses,
                "hit_rate": hits / (hits + misses) if hits + misses else None,
            },
            "sample": {"hits": 0, "misses": 0, "hit_rate": None},
        },
        "memory_timeline": [
            {
                "t": float(i),
                "phase": e["phase"],
                "epoch": e["epoch"],
                "rss_mb": e["memory"]["rss_mb"],
                "workers_rss_mb": e["memory"]["workers_rss_mb"],
                "workers": 2.0,
                "system_percent": 20.0,
            }
            for i, e in enumerate(epochs)
        ],
    }


def healthy_epochs(n: int = 3, **overrides: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(epoch("train", i, **overrides.get("train", {})))
        out.append(epoch("validate", i, **{"wall": 2.0, "samples": 50, **overrides.get("validate", {})}))
    return out


def hmean_table(values: list[float]) -> pd.DataFrame:
    return long_table([(i * 10 + 9, i, "val/hmean", v) for i, v in enumerate(values)])


def run_from(doc: dict[str, Any], hmeans: list[float] | None = None, name: str = "constructed") -> RunData:
    info = {"name": name, **{k: doc["run"][k] for k in ("hardware", "versions", "config")}}
    return RunData("run-dir", f"/runs/{name}", hmean_table(hmeans or [0.5, 0.6, 0.7]), info, doc)


def analyze(doc: dict[str, Any], rule_limits: RuleLimits | None = None, **kw: Any) -> Analysis:
    analysis = Analysis.build(run_from(doc, **kw), rule_limits)
    analysis.findings = run_rules(analysis)
    return analysis


def test_builder_matches_schema() -> None:
    doc = summary(healthy_epochs())
    perf = from_summary(doc)
    assert [(e.phase, e.epoch) for e in perf.epochs][:2] == [("train", 0), ("validate", 0)]
    first = doc["epochs"][0]
    assert set(first["stages"]["compute"]) == set(STATS)
    covered = sum(s["total"] for s in first["stages"].values()) / first["wall_s"]
    assert first["attributed_share"] == pytest.approx(covered)
