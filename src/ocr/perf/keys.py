"""The keys the profiler logs through the trainer's loggers, and their parser: one grammar.

Every key is ``perf/<phase>/<rest>``; ``<rest>`` takes one of these forms (:data:`Group`):

==================== ====================================== ===================================
group                ``<rest>``                             value
==================== ====================================== ===================================
``scalar``           ``<name>`` (:data:`EPOCH_SCALARS`)     the entry's field
``stage``            ``<stage>/<stat>``                     a main-process stage's statistic
``worker``           ``worker_<stage>/<stat>``              a DataLoader-worker stage's statistic
``cache``            ``<client>_cache_hit_rate``            a cache client's hit rate
``memory``           ``memory/<key>``                       the epoch's memory reading or peak
``rank``             ``data_wait_share/rank<N>``            one rank's data-wait share
``evaluator``        ``evaluator/<key>``                    the evaluator pool's numeric figures
``evaluator_stage``  ``evaluator/<stage>_s``                an evaluator stage's summed seconds
==================== ====================================== ===================================

W&B and TensorBoard runs carry only these keys, so ``ocr report`` rebuilds its per-epoch records
from them (:func:`parse_key`) with the same figures as from ``perf_summary.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ocr.perf.schema import EPOCH_SCALARS, EVALUATOR_STAGES, EpochEntry

PREFIX = "perf"
Group = Literal["scalar", "stage", "worker", "cache", "memory", "rank", "evaluator", "evaluator_stage"]
_WORKER = "worker_"
_CACHE = "_cache_hit_rate"
_LEGACY_CACHE = "cache_hit_rate"  # the target cache's key before the clients were logged apart


@dataclass(frozen=True)
class PerfKey:
    phase: str
    group: Group
    name: str  # the field, stage, client, memory key, rank label or evaluator key
    stat: str = ""  # stage and worker groups only

    def __str__(self) -> str:
        rest = {
            "scalar": self.name,
            "stage": f"{self.name}/{self.stat}",
            "worker": f"{_WORKER}{self.name}/{self.stat}",
            "cache": f"{self.name}{_CACHE}",
            "memory": f"memory/{self.name}",
            "rank": f"data_wait_share/{self.name}",
            "evaluator": f"evaluator/{self.name}",
            "evaluator_stage": f"evaluator/{self.name}_s",
        }[self.group]
        return f"{PREFIX}/{self.phase}/{rest}"


def rank_label(rank: int) -> str:
    return f"rank{rank}"


def parse_key(key: str) -> PerfKey | None:
    """The key's parts, or ``None`` for a key outside the grammar (another prefix, a typo)."""
    parts = key.split("/", 2)
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    _, phase, rest = parts
    if "/" not in rest:
        if rest in EPOCH_SCALARS:
            return PerfKey(phase, "scalar", rest)
        if rest == _LEGACY_CACHE:
            return PerfKey(phase, "cache", "target")
        if rest.endswith(_CACHE):
            return PerfKey(phase, "cache", rest[: -len(_CACHE)])
        return None
    head, tail = rest.split("/", 1)
    if head == "memory":
        return PerfKey(phase, "memory", tail)
    if head == "data_wait_share":
        return PerfKey(phase, "rank", tail)
    if head == "evaluator":
        stage = tail.removesuffix("_s")
        if tail.endswith("_s") and stage in EVALUATOR_STAGES:
            return PerfKey(phase, "evaluator_stage", stage)
        return PerfKey(phase, "evaluator", tail)
    if "/" in tail:
        return None
    if head.startswith(_WORKER):
        return PerfKey(phase, "worker", head[len(_WORKER) :], tail)
    return PerfKey(phase, "stage", head, tail)


def epoch_keys(entry: EpochEntry, log_stats: Iterable[str]) -> dict[PerfKey, float]:
    """What the profiler logs for one epoch: its scalars, each stage's ``log_stats`` (and the
    stage's total, which the report's shares need), hit rates, memory, per-rank data wait and the
    evaluator pool's numbers."""
    phase = entry["phase"]
    stats = tuple(log_stats)
    out: dict[PerfKey, float] = {}
    for name in EPOCH_SCALARS:
        value = entry.get(name)
        if isinstance(value, int | float):
            out[PerfKey(phase, "scalar", name)] = float(value)
    for stage, values in entry["stages"].items():
        for stat in (*stats, "total"):
            out[PerfKey(phase, "stage", stage, stat)] = float(values[stat])  # type: ignore[literal-required]
    for stage, values in entry["worker_stages"].items():
        for stat in stats:
            out[PerfKey(phase, "worker", stage, stat)] = float(values[stat])  # type: ignore[literal-required]
    for client, cache in entry["cache"].items():
        rate = cache.get("hit_rate")
        if rate is not None:
            out[PerfKey(phase, "cache", client)] = float(rate)
    for key, value in entry["memory"].items():
        out[PerfKey(phase, "memory", key)] = float(value)  # type: ignore[arg-type]
    for row in entry["ranks"]:
        out[PerfKey(phase, "rank", rank_label(row["rank"]))] = row["data_wait_share"]
    evaluator = entry.get("evaluator")
    for name, number in (evaluator or {}).items():
        if name == "stages" and isinstance(number, dict):
            for stage, seconds in number.items():
                out[PerfKey(phase, "evaluator_stage", stage)] = float(seconds)
        elif isinstance(number, int | float):  # not the handoff's name, nor a None share
            out[PerfKey(phase, "evaluator", name)] = float(number)
    return out
