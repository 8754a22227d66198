"""The ``perf_summary.json`` schema, versioned so that readers (``ocr report``) can check it.

Version 1 (``"schema": "ocr.perf_summary/1"``)::

    {
      "schema": "ocr.perf_summary/1",
      "run": {
        "created": ISO-8601 UTC,
        "hardware": {hostname, platform, cpu, cpu_count, cpu_affinity, memory_gb, cuda, gpu?, gpu_count?},
        "versions": {python, torch, cuda, ocr, lightning, numpy, numba, albumentations, timm, cleval},
        "config_hash": sha256 prefix of the model/data/trainer hyper-parameters,
        "config": {reader (see reader_label), image_size, batch_size, num_workers, cache_enabled,
                   target_formula, augment, backbone, precision, devices, num_nodes, world_size,
                   strategy, accelerator, max_epochs},
        "hparams": the full hyper-parameters hashed above,
        "stages_run": ["fit", "validate", ...]
      },
      "epochs": [                                   # one entry per phase and epoch, in order
        {
          "phase": "train" | "validate" | "test" | "predict",
          "epoch": int, "world_size": int,
          "wall_s": epoch wall time (max over ranks); validation inside a training epoch is not training time,
          "samples": int (summed over ranks), "batches": int,
          "samples_per_s": float,
          "time_per_sample_s": wall_s * world_size / samples (device-seconds per sample),
          "val_vs_train_time_per_sample": float (train and validate entries of the same epoch, when both ran),
          "data_wait_share": data-wait time / wall time (max over ranks),
          "first_batch_wait_s": loader start in the epoch + its first fetch (max over ranks): boundary stall,
          "steady_data_wait_share": data wait after the first batch / wall time after it (max over ranks),
          "attributed_share": share of the wall time covered by named stages (min over ranks),
          "stages": {stage: {count, total, mean, median, p95, p99, std, min, max}},   # seconds
          "worker_stages": {decode|transform|targets|collate: {same statistics}},   # per sample, in workers
          "workers": number of distinct DataLoader worker processes seen,
          "counters": {samples, target_cache_hits, target_cache_misses, sample_cache_hits, ...,
                       targets_computed, ignored_polygons, skipped_*...},
          "cache": {"target": {hits, misses, hit_rate | null, write_errors?, ...},
                    "sample": {same}},            # each cache client's counters apart
          "ranks": [{rank, wall_s, samples, data_wait_s, data_wait_share, first_batch_wait_s,
                     steady_data_wait_share, attributed_share, memory}],
          "memory": {rss_mb, rss_peak_mb, workers_rss_mb, workers_rss_peak_mb, workers_pss_mb?,
                     workers_pss_peak_mb?, workers, system_percent,
                     gpu_allocated_mb?, gpu_reserved_mb?, gpu_peak_mb?},
          "evaluator"?: {workers, handoff, images, wall_s, busy_s, busy_share, drain_s, slot_wait_s,
                         hidden_share, stages: {decode|postprocess|cleval|iou: seconds summed over the pool}}
                                                    # validate/test epochs evaluated by an evaluator pool
        }
      ],
      "cache": {"target": {...}, "sample": {...}},  # over all epochs
      "memory_timeline": [{t, phase, epoch, rss_mb, workers_rss_mb, workers, system_percent, gpu_*?}]
    }

Stages (main process, per batch unless noted): ``data_wait`` (blocked on the DataLoader fetch),
``h2d`` (host-to-device copy), ``compute`` (training: forward + backward + optimizer; evaluation:
forward + loss, and the device-to-host copy that waits for it), ``postprocess``, ``metric_update``
(in-process evaluation), ``handoff`` (copying the encoded maps into the evaluator pool's slots),
``eval_wait`` (blocked on a full ring of slots: the pool is behind), ``eval_drain`` (once per epoch:
waiting for the pool's last images), ``metric_compute`` (once per epoch),
``callbacks`` (other callbacks' hooks), ``hooks`` (LightningModule hooks, minus marked stages),
``checkpoint``, ``profiler`` (this callback's own hooks), ``loader_start`` (``iter(DataLoader)``:
worker start-up). Statistics combine across ranks as
``ocr.perf.stats.merge_rank_stats`` documents: counts and totals add, mean/std are pooled,
median/p95/p99 take the maximum.
"""

from __future__ import annotations

from collections.abc import Mapping

SCHEMA = "ocr.perf_summary/1"


def reader_label(reader: object) -> str | None:
    """``run.config.reader``: the class name in ``data.reader._target_`` (``SROIEDataset``); a run
    from before readers were selected by ``_target_`` recorded a name (``sroie``), kept as is."""
    if isinstance(reader, Mapping):
        target = reader.get("_target_")
        return str(target).rsplit(".", 1)[-1] if target else None
    return None if reader is None else str(reader)
