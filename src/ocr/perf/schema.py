"""The ``perf_summary.json`` document, version ``ocr.perf_summary/1``, as types.

The profiler (:mod:`ocr.callbacks.performance_profiler`) builds its entries as these types and
``ocr report`` reads them back through them; :mod:`ocr.perf.keys` is the one grammar of the keys
the profiler logs. What each field means, for users: ``docs/report.md`` ("perf_summary.json").

Keys marked ``NotRequired`` may be absent: readers must accept summaries that lack them (written
by older versions, or a phase that did not measure them). Times are seconds, memory MB.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired from evaluated annotations.
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

SCHEMA = "ocr.perf_summary/1"
SUMMARY_FILE = "perf_summary.json"
PHASES = ("train", "validate", "test", "predict")
CACHE_CLIENTS = ("target", "sample")  # each reports ``<client>_cache_<counter>`` counters
EVALUATOR_STAGES = ("decode", "postprocess", "cleval", "iou")  # an evaluator's per-image work


class StageStats(TypedDict):
    """One stage's durations in an epoch (floats, counts too: they merge across ranks)."""

    count: float
    total: float
    mean: float
    median: float
    p95: float
    p99: float
    std: float
    min: float
    max: float


STAT_KEYS: tuple[str, ...] = tuple(StageStats.__annotations__)


class MemoryReading(TypedDict):
    """One memory reading (:func:`ocr.perf.system.memory_snapshot`)."""

    rss_mb: float
    workers_rss_mb: float  # summed over child processes: shared pages count once per child
    workers: float  # child processes seen
    system_percent: float
    workers_pss_mb: NotRequired[float]  # read at the epoch end of ``pss_phases`` only (costly)
    gpu_allocated_mb: NotRequired[float]
    gpu_reserved_mb: NotRequired[float]
    gpu_peak_mb: NotRequired[float]


class EpochMemory(MemoryReading):
    """The epoch-end reading plus the epoch's peaks over the timeline."""

    rss_peak_mb: float
    workers_rss_peak_mb: float
    workers_pss_peak_mb: NotRequired[float]


class TimelinePoint(MemoryReading):
    t: float  # seconds since the callback was built
    phase: str
    epoch: int


# Per cache client: hits, misses, hit_rate (None without lookups) and any fault counter the
# client reports (write_errors...): an open set, so a mapping rather than fixed keys.
CacheClientStats = dict[str, int | float | None]


class RankEvaluator(TypedDict):
    """One rank's evaluator pool over an evaluation epoch (set by the LightningModule)."""

    workers: int
    handoff: str | None  # the encoding of the maps handed to the pool
    images: int
    wall_s: float
    busy_s: float  # work summed over the pool's processes
    busy_share: float
    drain_s: float
    slot_wait_s: float
    stages: dict[str, float]  # EVALUATOR_STAGES: seconds summed over the pool


class EvaluatorBlock(RankEvaluator):
    """The ranks' pools merged (:func:`ocr.perf.aggregate.merge_evaluator_stats`)."""

    hidden_share: float | None  # share of the pool's work the main processes did not wait for


class RankRow(TypedDict):
    """One rank's own figures: DDP merges hide a slow rank, so these stay per rank."""

    rank: int
    wall_s: float
    samples: int
    data_wait_s: float
    data_wait_share: float
    first_batch_wait_s: float
    steady_data_wait_share: float
    attributed_share: float
    memory: EpochMemory


class EpochScalars(TypedDict):
    """The per-epoch figures logged as ``perf/<phase>/<name>`` (:data:`EPOCH_SCALARS`)."""

    wall_s: float  # max over ranks; validation inside a training epoch is not training time
    samples_per_s: float
    time_per_sample_s: float | None  # wall_s x world_size / samples: device-seconds per sample
    data_wait_share: float  # max over ranks
    first_batch_wait_s: float  # loader start in the epoch + its first fetch (max over ranks)
    steady_data_wait_share: float  # data wait after the first batch / wall after it (max)
    attributed_share: float  # share of the wall the named stages cover (min over ranks)
    val_vs_train_time_per_sample: NotRequired[float]  # once train and validate of the epoch ran


EPOCH_SCALARS: tuple[str, ...] = tuple(EpochScalars.__annotations__)


class EpochEntry(EpochScalars):
    """One phase's epoch, all ranks merged: counts add, percentiles take the slowest rank."""

    phase: str  # one of PHASES
    epoch: int
    world_size: int
    samples: int
    batches: int
    stages: dict[str, StageStats]  # main-process stages, per batch (a few once per epoch)
    worker_stages: dict[str, StageStats]  # timed in the DataLoader workers, per sample
    workers: int  # distinct DataLoader worker processes seen
    counters: dict[str, int]
    cache: dict[str, CacheClientStats]  # CACHE_CLIENTS
    ranks: list[RankRow]
    memory: EpochMemory  # rank zero's
    evaluator: NotRequired[EvaluatorBlock]  # evaluation epochs evaluated by an evaluator pool


# A resumed fit: the summary it continued ("from" is a keyword, hence the functional form).
ResumeInfo = TypedDict("ResumeInfo", {"from": str, "epoch": int, "epochs_kept": int})


class RunBlock(TypedDict):
    created: str  # ISO-8601 UTC
    hardware: dict[str, Any]  # :func:`ocr.perf.system.hardware_info`
    versions: dict[str, str | None]
    config_hash: str  # sha256 prefix of ``hparams``
    config: dict[str, Any]  # the key settings the report's header shows
    hparams: dict[str, Any]  # model, data and trainer hyper-parameters
    stages_run: NotRequired[list[str]]  # fit, validate, test, predict, in order
    resumed: NotRequired[ResumeInfo]


class PerfSummary(TypedDict):
    schema: str  # SCHEMA
    run: RunBlock
    epochs: list[EpochEntry]  # one per phase and epoch, in the order they ended
    cache: dict[str, CacheClientStats]  # over all epochs
    memory_timeline: list[TimelinePoint]


def reader_label(reader: object) -> str | None:
    """``run.config.reader``: the class name in ``data.reader._target_`` (``SROIEDataset``); a run
    from before readers were selected by ``_target_`` recorded a name (``sroie``), kept as is."""
    if isinstance(reader, Mapping):
        target = reader.get("_target_")
        return str(target).rsplit(".", 1)[-1] if target else None
    return None if reader is None else str(reader)
