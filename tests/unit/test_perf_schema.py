"""The perf schema is one definition: what the profiler writes (JSON and logged keys) is what
``ocr report`` reads back, and nothing the writer emits is outside the schema."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from ocr.perf.aggregate import RankPayload, link_train_validation, merge_ranks
from ocr.perf.keys import PerfKey, epoch_keys, parse_key
from ocr.perf.schema import (
    EPOCH_SCALARS,
    EVALUATOR_STAGES,
    STAT_KEYS,
    EpochEntry,
    EpochMemory,
    PerfSummary,
    RankEvaluator,
)
from ocr.perf.stats import summarize
from ocr.perf.summary import summary_document
from ocr.report.epoch_perf import EpochPerf, from_metrics, from_summary
from ocr.report.run import RunData, long_table
from tests.helpers import schema_problems


def _memory(rss: float) -> EpochMemory:
    return {
        "rss_mb": rss,
        "workers_rss_mb": 2 * rss,
        "workers": 2.0,
        "system_percent": 40.0,
        "workers_pss_mb": rss / 2,
        "gpu_allocated_mb": 10.0,
        "gpu_reserved_mb": 20.0,
        "gpu_peak_mb": 15.0,
        "rss_peak_mb": rss + 1,
        "workers_rss_peak_mb": 2 * rss + 1,
        "workers_pss_peak_mb": rss / 2 + 1,
    }


def _evaluator(busy: float) -> RankEvaluator:
    return {
        "workers": 2,
        "handoff": "uint8",
        "images": 4,
        "wall_s": 1.0,
        "busy_s": busy,
        "busy_share": busy / 2,
        "drain_s": 0.1,
        "slot_wait_s": 0.05,
        "stages": {stage: busy / len(EVALUATOR_STAGES) for stage in EVALUATOR_STAGES},
    }


def rank_payload(wall: float, phase: str, rank: int) -> RankPayload:
    """One rank's epoch: three batches of four samples (an evaluator pool on validation epochs)."""
    stages = {"data_wait": [0.05, 0.01, 0.02], "compute": [0.2, 0.21, 0.19], "loader_start": [0.03]}
    return {
        "wall": wall,
        "samples": 12,
        "batches": 3,
        "stages": {k: summarize(v) for k, v in stages.items()},
        "worker": {"decode": summarize([0.01] * 12), "collate": summarize([0.002] * 3)},
        "counters": {
            "samples": 12,
            "target_cache_hits": 9,
            "target_cache_misses": 3,
            "sample_cache_write_errors": 1,
        },
        "workers": 2,
        "memory": _memory(1000.0 + rank),
        "first_batch_wait": 0.08,
        "first_data_wait": 0.05,
        "evaluator": _evaluator(0.8 + rank) if phase == "validate" else None,
    }


def _epochs() -> list[EpochEntry]:
    """A train and a validate epoch of a two-rank run, merged as the profiler merges them."""
    epochs: list[EpochEntry] = []
    for phase, wall in (("train", 1.0), ("validate", 0.5)):
        entry = merge_ranks(phase, 0, [rank_payload(wall, phase, 0), rank_payload(wall * 1.1, phase, 1)])
        link_train_validation(epochs, entry)
        epochs.append(entry)
    return epochs


def _document() -> PerfSummary:
    run: Any = {"created": "2026-01-01T00:00:00+00:00", "hardware": {}, "versions": {}, "config_hash": "0"}
    run.update(config={}, hparams={})
    reading = {k: v for k, v in _memory(1000.0).items() if not k.endswith("_peak_mb")}
    timeline: Any = [{"t": 0.0, "phase": "train", "epoch": 0, **reading}]
    return summary_document(run, _epochs(), timeline)


def test_the_writer_emits_only_what_the_schema_declares() -> None:
    document = json.loads(json.dumps(_document()))
    assert schema_problems(document, PerfSummary) == []
    assert "val_vs_train_time_per_sample" in document["epochs"][1] and "evaluator" in document["epochs"][1]
    # the check can fail: a field the schema does not have, or a required one missing
    document["epochs"][0]["unknown_share"] = 0.5
    del document["epochs"][1]["ranks"][0]["memory"]["rss_mb"]
    assert schema_problems(document, PerfSummary) == [
        "$.epochs[0].unknown_share: not in EpochEntry",
        "$.epochs[1].ranks[0].memory.rss_mb: missing",
    ]


def test_every_logged_key_is_in_the_key_grammar() -> None:
    for entry in _epochs():
        keys = epoch_keys(entry, STAT_KEYS)
        for key in keys:
            assert parse_key(str(key)) == key, str(key)
    assert {k.group for e in _epochs() for k in epoch_keys(e, STAT_KEYS)} == {
        "scalar", "stage", "worker", "cache", "memory", "rank", "evaluator", "evaluator_stage"
    }  # fmt: skip
    assert parse_key("perf/train/unknown_share") is None  # outside the grammar: not read as a figure
    assert parse_key("perf/train/compute/median/extra") is None
    assert parse_key("perf/validate/cache_hit_rate") == PerfKey("validate", "cache", "target")  # older logs


def test_summary_round_trip_reads_back_what_was_written() -> None:
    written = _document()
    read = from_summary(json.loads(json.dumps(written))).epochs
    assert [(e.phase, e.epoch) for e in read] == [("train", 0), ("validate", 0)]
    for entry, record in zip(written["epochs"], read, strict=True):
        for name in EPOCH_SCALARS:
            assert getattr(record, name) == entry.get(name), name
        assert record.samples == entry["samples"] and record.workers == entry["workers"]
        assert record.stages == entry["stages"] and record.worker_stages == entry["worker_stages"]
        assert record.memory == entry["memory"]
        assert record.cache_hit_rate == entry["cache"]["target"]["hit_rate"] == 0.75
        assert record.sample_cache_hit_rate == entry["cache"]["sample"]["hit_rate"] is None
        assert record.rank_data_wait_share == {
            f"rank{r['rank']}": r["data_wait_share"] for r in entry["ranks"]
        }
        assert record.evaluator == entry.get("evaluator", {})


def test_logged_keys_read_back_as_the_summary_does() -> None:
    """W&B/TensorBoard runs have only the logged keys: the report must rebuild the same epochs."""
    written = _document()
    rows = [
        (10 * i, entry["epoch"], str(key), value)
        for i, entry in enumerate(written["epochs"])
        for key, value in epoch_keys(entry, STAT_KEYS).items()
    ]
    logged = from_metrics(RunData("tensorboard", "x", long_table(rows), {}, None)).epochs
    from_json = from_summary(written).epochs
    for a, b in zip(logged, from_json, strict=True):
        a_dict, b_dict = a.to_dict(), b.to_dict()
        b_dict["workers"] = None  # not logged
        b_dict["evaluator"].pop("handoff", None)  # a name, not a number: not logged
        if b_dict["evaluator"].get("hidden_share") is None:
            b_dict["evaluator"].pop("hidden_share", None)
        assert a_dict == b_dict


def test_the_report_record_holds_every_logged_scalar() -> None:
    declared = {f.name for f in fields(EpochPerf)}
    assert set(EPOCH_SCALARS) <= declared, set(EPOCH_SCALARS) - declared
