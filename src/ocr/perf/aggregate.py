"""One epoch's figures: each rank's payload, and the ranks merged into one summary entry.

Every DDP rank measures; at each epoch end the payloads are gathered and rank zero merges them:
samples and counts add, stage statistics merge as :func:`ocr.perf.stats.merge_rank_stats` says
(the slowest rank's percentiles), wall time takes the slowest rank, and data wait is also kept
per rank (a merge would hide the rank that waits).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import TypedDict

from ocr.perf.clock import EpochRecord
from ocr.perf.schema import (
    CACHE_CLIENTS,
    CacheClientStats,
    EpochEntry,
    EpochMemory,
    EvaluatorBlock,
    RankEvaluator,
    RankRow,
    StageStats,
)
from ocr.perf.stats import merge_rank_stats, stage_total, summarize


class RankPayload(TypedDict):
    """What one rank sends to rank zero at an epoch end (never written to disk)."""

    wall: float
    samples: int
    batches: int
    stages: dict[str, StageStats]
    worker: dict[str, StageStats]
    counters: dict[str, int]
    workers: int
    memory: EpochMemory
    first_batch_wait: float  # the epoch's loader start + first fetch: the epoch-boundary stall
    first_data_wait: float
    evaluator: RankEvaluator | None


def local_payload(
    record: EpochRecord, wall: float, memory: EpochMemory, evaluator: RankEvaluator | None
) -> RankPayload:
    first_fetch = record.stages["data_wait"][0] if record.stages.get("data_wait") else 0.0
    return {
        "wall": wall,
        "samples": record.samples,
        "batches": record.batches,
        "stages": {k: summarize(v) for k, v in record.stages.items()},
        "worker": {k: summarize(v) for k, v in record.worker.items()},
        "counters": dict(record.counters),
        "workers": len(record.worker_pids - {os.getpid()}),
        "memory": memory,
        "first_batch_wait": sum(record.stages.get("loader_start", [])) + first_fetch,
        "first_data_wait": first_fetch,
        "evaluator": evaluator,
    }


def cache_stats(counters: Mapping[str, int]) -> dict[str, CacheClientStats]:
    """Per cache client (``target``, ``sample``), its ``<client>_cache_*`` counters apart: hits,
    misses, hit rate (``None`` without lookups) and any fault counter (``write_errors``...)."""
    out: dict[str, CacheClientStats] = {}
    for client in CACHE_CLIENTS:
        prefix = f"{client}_cache_"
        stats: CacheClientStats = {k[len(prefix) :]: v for k, v in counters.items() if k.startswith(prefix)}
        hits, misses = int(stats.get("hits") or 0), int(stats.get("misses") or 0)
        stats.update(hits=hits, misses=misses, hit_rate=hits / (hits + misses) if hits + misses else None)
        out[client] = stats
    return out


def merge_evaluator_stats(pools: Sequence[RankEvaluator]) -> EvaluatorBlock:
    """The ranks' evaluator pools as one: work and images add, the epoch's waits take the maximum.

    ``hidden_share`` is the share of the evaluators' work the main processes did not wait for
    (waits = the epoch-end drain plus any wait for a free slot); ``busy_share`` is the evaluators'
    work over their capacity (processes x epoch wall time).
    """
    workers = sum(int(p["workers"]) for p in pools)
    busy = sum(float(p["busy_s"]) for p in pools)
    waited = sum(float(p["drain_s"]) + float(p.get("slot_wait_s", 0.0)) for p in pools)
    wall = max(float(p["wall_s"]) for p in pools)
    stages: dict[str, float] = defaultdict(float)
    for p in pools:
        for stage, seconds in p.get("stages", {}).items():
            stages[stage] += float(seconds)
    return {
        "workers": workers,
        "handoff": pools[0].get("handoff"),
        "images": sum(int(p["images"]) for p in pools),
        "wall_s": wall,
        "busy_s": busy,
        "busy_share": busy / (workers * wall) if workers and wall > 0 else 0.0,
        "drain_s": max(float(p["drain_s"]) for p in pools),
        "slot_wait_s": max(float(p.get("slot_wait_s", 0.0)) for p in pools),
        "hidden_share": max(0.0, 1.0 - waited / busy) if busy > 0 else None,
        "stages": dict(stages),
    }


def rank_row(rank: int, payload: RankPayload) -> RankRow:
    """One rank's wall time, data wait and attributed share."""
    wall = payload["wall"]
    data_wait = stage_total(payload["stages"], "data_wait")
    named = sum(st["total"] for st in payload["stages"].values())
    first = float(payload.get("first_batch_wait", 0.0))
    steady_wall = wall - first
    steady_wait = data_wait - float(payload.get("first_data_wait", 0.0))
    return {
        "rank": rank,
        "wall_s": wall,
        "samples": payload["samples"],
        "data_wait_s": data_wait,
        "data_wait_share": data_wait / wall if wall > 0 else 0.0,
        "first_batch_wait_s": first,
        "steady_data_wait_share": steady_wait / steady_wall if steady_wall > 0 else 0.0,
        "attributed_share": named / wall if wall > 0 else 0.0,
        "memory": payload["memory"],
    }


def merge_ranks(phase: str, epoch: int, ranks: Sequence[RankPayload]) -> EpochEntry:
    """The summary entry of one phase's epoch from every rank's payload (rank zero's first)."""
    stage_names = sorted({s for r in ranks for s in r["stages"]})
    worker_names = sorted({s for r in ranks for s in r["worker"]})
    counters: Counter[str] = Counter()
    for r in ranks:
        counters.update(r["counters"])
    samples = sum(r["samples"] for r in ranks)
    wall = max(r["wall"] for r in ranks)
    rows = [rank_row(i, r) for i, r in enumerate(ranks)]
    entry: EpochEntry = {
        "phase": phase,
        "epoch": epoch,
        "world_size": len(ranks),
        "wall_s": wall,
        "samples": samples,
        "batches": sum(r["batches"] for r in ranks),
        "samples_per_s": samples / wall if wall > 0 else 0.0,
        "time_per_sample_s": wall * len(ranks) / samples if samples else None,
        "data_wait_share": max(row["data_wait_share"] for row in rows),
        "first_batch_wait_s": max(row["first_batch_wait_s"] for row in rows),
        "steady_data_wait_share": max(row["steady_data_wait_share"] for row in rows),
        "attributed_share": min(row["attributed_share"] for row in rows),
        "stages": {s: merge_rank_stats([r["stages"].get(s, {}) for r in ranks]) for s in stage_names},
        "worker_stages": {s: merge_rank_stats([r["worker"].get(s, {}) for r in ranks]) for s in worker_names},
        "workers": sum(r["workers"] for r in ranks),
        "counters": dict(counters),
        "cache": cache_stats(counters),
        "ranks": rows,
        "memory": ranks[0]["memory"],
    }
    pools = [r["evaluator"] for r in ranks if r.get("evaluator")]
    if pools:
        entry["evaluator"] = merge_evaluator_stats([p for p in pools if p is not None])
    return entry


def link_train_validation(epochs: Sequence[EpochEntry], entry: EpochEntry) -> None:
    """validation-vs-training time per sample, once both epochs of the same index are known."""
    other = "validate" if entry["phase"] == "train" else "train" if entry["phase"] == "validate" else None
    if other is None:
        return
    for previous in reversed(epochs):
        if previous["phase"] == other and previous["epoch"] == entry["epoch"]:
            val, train = (entry, previous) if entry["phase"] == "validate" else (previous, entry)
            val_time, train_time = val["time_per_sample_s"], train["time_per_sample_s"]
            if val_time and train_time:
                val["val_vs_train_time_per_sample"] = train["val_vs_train_time_per_sample"] = (
                    val_time / train_time
                )
            return
