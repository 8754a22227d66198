"""``ocr bench --save-baseline PATH``: the performance regression suite's measurements, as a baseline.

``tests/performance`` and this command measure through the same functions (below), so a saved
baseline holds exactly the figures the suite compares. Everything runs the project's real
pipeline on built-in synthetic receipts (no data set needed, the same in CI):

* :func:`measure_targets`: fast DB targets vs the numpy reference ("db" formula) through the one
  targets timer, :func:`ocr.bench.targets.time_targets`: bit-identity per image, and the speed
  ratio from interleaved passes (median of the per-repeat ratios).
* :func:`measure_cache`: :class:`~ocr.data.collate.DBCollateFN` + :class:`~ocr.targets.cache.PolygonCache`
  over several "validation epochs": hit rate and maps computed after the warm-up epoch (through a
  fresh cache instance, i.e. another process's view of the shared folder, and through the warm
  in-process LRU), bit-identity with recomputation, and the folder's byte budget under pressure.
* :func:`measure_overhead`: :func:`ocr.bench.overhead.bench_overhead` on a tiny model (profiler on
  vs off, ABBA) plus the callback's own hook time per step, which is stable where step times are not.
* :func:`measure_trainer`: a real Lightning ``fit`` (train + validation every epoch) of a tiny DBNet
  with the :class:`~ocr.callbacks.performance_profiler.PerformanceProfilerCallback`, read back
  through ``ocr.report`` from its run folder (``perf_summary.json`` + ``metrics.csv``), and the
  first-batch wait of its later training epochs relative to epoch 1's (the epoch-boundary stall).

The file is the report's JSON export (``ocr.report/1``, :func:`ocr.report.export.write_json`) of
that Trainer run: the report's own figures (``val_vs_train_ratio``, ``validate.cache.hit_rate``,
``validate.memory.rss_peak_mb``...) plus the suite's under ``bench.*``; ``run.hardware`` says where
it was measured and ``run.suite`` with which settings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocr.bench.common import alternate, bench_trainer, chunks, pinned_threads, timed, validation_samples
from ocr.bench.identity import same_bits
from ocr.data.sample import Batch, image_hw
from ocr.targets.db_targets import slowdown_injected

SUITE_VERSION = "ocr-perf-suite/1"

# Figures measured by this module, by group (the suite measures a group only when a test needs it).
GROUPS = ("targets", "cache", "overhead", "evalwork", "trainer")


@dataclass(frozen=True)
class SuiteSettings:
    """How much the suite measures; the tests read them from ``thresholds.yaml`` (``--ci``: fewer repeats)."""

    seed: int = 1  # synthetic validation receipts (rendered once per OCR_CACHE_DIR)
    target_images: int = 8
    target_size: int = 640  # realistic maps: the fast path's advantage grows with image size
    target_repeats: int = 7  # A/B pairs
    cache_images: int = 8
    cache_size: int = 384
    cache_epochs: int = 3  # 1 warm-up + 2 measured (fresh instance, then the warm one)
    cache_batch_size: int = 4
    overhead_backbone: str = "mobilenetv3_small_050"
    overhead_size: int = 128
    overhead_batch_size: int = 4
    overhead_steps: int = 8
    overhead_repeats: int = 3
    trainer_size: int = 128
    trainer_train_samples: int = 16
    trainer_val_samples: int = 16
    trainer_batch_size: int = 4
    trainer_epochs: int = 3
    trainer_workers: int = 2
    # Intra-op threads of the main process while timing steps. One: on an oversubscribed machine a
    # multi-threaded step stalls at OpenMP barriers whenever a thread is descheduled, while a
    # single-threaded step follows the CPU share (figures: docs/performance.md). 0 keeps torch's default.
    torch_threads: int = 1
    evalwork_images: int = 8  # synthetic receipts, perfect-model maps (ocr.bench.eval_work)
    evalwork_size: int = 384
    evalwork_repeats: int = 5  # interleaved A/B passes (median of the per-pair ratios)
    evalwork_forward_size: int = 128  # tiny DBNet input for the forward-pass ratio


# -- targets ----------------------------------------------------------------------------------------
def measure_targets(settings: SuiteSettings) -> dict[str, float]:
    """Fast "db" targets vs the reference through :func:`ocr.bench.targets.time_targets`."""
    from ocr.bench.targets import FAST_DB, REFERENCE, Item, time_targets

    samples = validation_samples(settings.target_images, settings.target_size, settings.seed)
    items: list[Item] = [(image_hw(s["image"]), s["polygons"], s["ignore"]) for s in samples]
    timing = time_targets(items, settings.target_repeats)
    return {
        "bench.targets.images": float(timing.images),
        "bench.targets.db_identical_share": timing.db_identical / timing.images,
        "bench.targets.fast_vs_reference_ratio": timing.speedup(FAST_DB),
        "bench.targets.fast_vs_reference_ratio_min": min(timing.ratios[FAST_DB]),
        "bench.targets.fast_ms_per_image": timing.ms_per_image(FAST_DB),
        "bench.targets.reference_ms_per_image": timing.ms_per_image(REFERENCE),
    }


# -- cache ------------------------------------------------------------------------------------------
def _maps(batch: Batch) -> list[np.ndarray]:
    return [batch[k].numpy() for k in ("prob_maps", "prob_masks", "thresh_maps", "thresh_masks")]


def measure_cache(settings: SuiteSettings, workdir: Path | None = None) -> dict[str, float]:
    """Validation epochs through the collate and a PolygonCache; see the module docstring."""
    from ocr.data.collate import DBCollateFN
    from ocr.targets.cache import PolygonCache
    from ocr.targets.params import DBTargetParams

    samples = validation_samples(settings.cache_images, settings.cache_size, settings.seed)
    batches = chunks(samples, settings.cache_batch_size)
    params = DBTargetParams()  # the configured default formula ("exact")
    # one OpenCV thread, as in a DataLoader worker: OpenCV's pool would add scheduling noise
    with (
        pinned_threads(cv2=1),
        tempfile.TemporaryDirectory(prefix="ocr-perf-cache-", dir=workdir, ignore_cleanup_errors=True) as tmp,
    ):
        root = Path(tmp)
        plain = DBCollateFN(params)  # recomputation, no cache: what every hit must equal
        expected = [_maps(plain(batch)) for batch in batches]
        shared = root / "shared"
        warm = PolygonCache(max_size=256, cache_dir=shared)
        counts = {"hits": 0, "misses": 0, "identical": 0, "samples": 0}
        per_epoch_computed: list[int] = []
        warmup_ms = measured_ms = 0.0
        for epoch in range(settings.cache_epochs):
            # Epoch 0 fills the folder; odd epochs look up through a fresh instance (another
            # worker or rank: empty LRU, reads the shared folder), even ones through the warm LRU.
            cache = PolygonCache(max_size=256, cache_dir=shared) if epoch % 2 == 1 else warm
            collate = DBCollateFN(params, cache=cache, use_cache=True)
            computed = 0
            for batch, want in zip(batches, expected, strict=True):
                out = collate(batch)
                c = out["perf"]["counters"]
                spent = 1e3 * sum(out["perf"]["times"]["targets"])
                computed += int(c["targets_computed"])
                if epoch == 0:
                    warmup_ms += spent
                    continue
                measured_ms += spent
                counts["hits"] += int(c.get("target_cache_hits", 0))
                counts["misses"] += int(c.get("target_cache_misses", 0))
                got = _maps(out)
                for i in range(int(c["samples"])):
                    counts["identical"] += all(same_bits(g[i], w[i]) for g, w in zip(got, want, strict=True))
                counts["samples"] += int(c["samples"])
            if epoch:
                per_epoch_computed.append(computed)
        entry_bytes = warm.total_bytes()

        # Byte budget: room for about half of the entries, then every entry inserted.
        budget = max(1, entry_bytes // 2)
        small = PolygonCache(max_size=0, cache_dir=root / "budget", max_bytes=budget)
        collate = DBCollateFN(params, cache=small, use_cache=True)
        for batch in batches:
            collate(batch)
        used = small.total_bytes()
        # Read the survivors back without storing (a miss here would evict others: LRU thrash).
        reread = PolygonCache(max_size=0, cache_dir=root / "budget", max_bytes=budget)  # disk only
        survivors = survivors_exact = 0
        for batch, want in zip(batches, expected, strict=True):
            for i, sample in enumerate(batch):
                shape = image_hw(sample["image"])
                hit = reread.get(reread._generate_key(sample["polygons"], shape, params, sample["ignore"]))
                if hit is not None:
                    survivors += 1
                    # a hit's maps are float32; the batch's binary maps travel as uint8 (0/1): compare
                    # them back in float32, bit for bit (as the collate's consumers see them)
                    survivors_exact += all(
                        same_bits(g, w[i].astype(np.float32)) for g, w in zip(hit.maps(), want, strict=True)
                    )
    lookups = counts["hits"] + counts["misses"]
    n = len(samples)
    return {
        "bench.cache.samples_per_epoch": float(n),
        "bench.cache.lookups_after_warmup": float(lookups),
        "bench.cache.hit_rate_after_warmup": counts["hits"] / lookups if lookups else 0.0,
        "bench.cache.maps_computed_after_warmup": float(max(per_epoch_computed, default=0)),
        "bench.cache.identical_share": counts["identical"] / counts["samples"] if counts["samples"] else 0.0,
        "bench.cache.hit_vs_compute_time_ratio": (
            (measured_ms / max(1, settings.cache_epochs - 1)) / warmup_ms if warmup_ms else float("nan")
        ),
        "bench.cache.entry_bytes": float(entry_bytes),
        "bench.cache.budget_bytes": float(budget),
        "bench.cache.budget_used_share": used / budget,
        "bench.cache.budget_survivor_hits": float(survivors),
        "bench.cache.budget_survivors_identical_share": survivors_exact / survivors if survivors else 1.0,
    }


# -- profiler overhead ------------------------------------------------------------------------------
def measure_overhead(settings: SuiteSettings) -> dict[str, float]:
    """Profiler on vs off (ABBA, median of repeats) and its own hook time, on a tiny model."""
    from ocr.bench.overhead import bench_overhead

    with pinned_threads(torch=settings.torch_threads):
        result = bench_overhead(
            backbone=settings.overhead_backbone,
            image_size=settings.overhead_size,
            batch_size=settings.overhead_batch_size,
            steps=settings.overhead_steps,
            repeats=settings.overhead_repeats,
        )
    return {
        "bench.overhead.step_pct": float(result["overhead_pct"]),
        "bench.overhead.hooks_pct_of_step": float(result["callback_hooks_pct_of_step"]),
        "bench.overhead.hooks_ms_per_step": float(result["callback_hooks_ms_per_step"]),
        "bench.overhead.step_ms": float(result["step_ms_without"]),
    }


# -- validation's exact work and forward pass ------------------------------------------------------
def measure_evalwork(settings: SuiteSettings) -> dict[str, float]:
    """Same-run ratios of validation's per-image stages against fixed reference workloads.

    Each ratio is the median over interleaved pairs of thread CPU times (see ocr.bench.eval_work):

    * ``postprocess_vs_reference``: :class:`DBPostProcessor` / :func:`reference_quads` on the same maps;
    * ``cleval_vs_official``: the fast CLEval update (GT cache warm) / the official whole-image one;
    * ``forward_vs_encoder``: a tiny DBNet's forward / its encoder alone on the same batch.

    The references are untouched by ``OCR_PERF_INJECT_SLOWDOWN`` (:mod:`ocr.perf.inject`), so a 2x
    slower stage doubles its ratio.
    """
    import torch

    from ocr.bench.eval_work import Item, perfect_map
    from ocr.bench.eval_work import _clock as clock
    from ocr.metrics import CLEvalDetectionMetric
    from ocr.models.dbnet import DBNet
    from ocr.postprocess import DBPostProcessor
    from ocr.postprocess.reference import reference_quads

    samples = validation_samples(settings.evalwork_images, settings.evalwork_size, settings.seed)
    items = []
    for s in samples:
        meta = s["meta"]
        scale = float(meta["scale"])
        prob = perfect_map(meta["gt_polygons"], meta["gt_ignore"], scale, settings.evalwork_size)
        items.append(Item(meta["name"], prob, meta, meta["gt_polygons"], meta["gt_texts"], meta["gt_ignore"]))
    post = DBPostProcessor()
    dets = [post(it.prob_map, it.meta)[0] for it in items]
    fast_cleval = CLEvalDetectionMetric()

    def post_fast() -> None:
        for it in items:
            post(it.prob_map, it.meta)

    def post_ref() -> None:
        for it in items:
            reference_quads(post, it.prob_map, it.meta)

    def cleval_fast() -> None:
        for d, it in zip(dets, items, strict=True):
            fast_cleval.update(d, it.polygons, it.texts, it.ignore)

    def cleval_official() -> None:
        m = CLEvalDetectionMetric(split_groups=False)
        for d, it in zip(dets, items, strict=True):
            m.update(d, it.polygons, it.texts, it.ignore)

    torch.manual_seed(0)
    net = DBNet(backbone=settings.overhead_backbone, pretrained=False, inner_channels=32).eval()
    batch = torch.rand(2, 3, settings.evalwork_forward_size, settings.evalwork_forward_size)

    def forward() -> None:
        with torch.no_grad():
            for _ in range(3):
                net(batch, with_thresh=False)

    def encoder() -> None:
        with torch.no_grad():
            for _ in range(3):
                net.encoder(batch)

    def ratio(a: Callable[[], None], b: Callable[[], None]) -> float:
        # warm-up: numba compiles cleval's matchers, first-touch buffers, GT cache fill
        a()
        b()
        runs = alternate({"a": timed(a, clock), "b": timed(b, clock)}, settings.evalwork_repeats)
        return statistics.median(ta / tb for ta, tb in zip(runs["a"], runs["b"], strict=True))

    with pinned_threads(torch=1, cv2=1):
        return {
            "bench.evalwork.images": float(len(items)),
            "bench.evalwork.postprocess_vs_reference": ratio(post_fast, post_ref),
            "bench.evalwork.cleval_vs_official": ratio(cleval_fast, cleval_official),
            "bench.evalwork.forward_vs_encoder": ratio(forward, encoder),
        }


# -- the real Trainer -------------------------------------------------------------------------------
@dataclass
class TrainerRun:
    run_dir: Path
    figures: dict[str, float]


def trainer_overrides(settings: SuiteSettings, cache_dir: Path) -> list[str]:
    return [
        "data=synthetic",
        "model.net.backbone=mobilenetv3_small_050",
        "model.net.inner_channels=32",
        f"data.image_size={settings.trainer_size}",
        f"data.train.num_samples={settings.trainer_train_samples}",
        f"data.val.num_samples={settings.trainer_val_samples}",
        f"data.val.seed={settings.seed}",
        f"data.loader.batch_size={settings.trainer_batch_size}",
        f"data.loader.num_workers={settings.trainer_workers}",
        # The workload the committed baseline measured: whole images and the DB paper's targets,
        # not the crops and targets of the CPU training recipe (configs/data/synthetic.yaml).
        "data.augment.crop_size=null",
        "data.targets.shrink_ratio=0.4",
        "data.targets.min_text_size=8",
        "data.cache.enabled=true",
        f"data.cache.dir={cache_dir}",
    ]


def measure_trainer(settings: SuiteSettings, run_dir: Path) -> TrainerRun:
    """A real ``fit`` with the profiler; figures from ``ocr.report`` plus per-epoch counters."""
    import hydra
    import lightning as L

    from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
    from ocr.config_dir import compose_config
    from ocr.loggers import ResumableCSVLogger
    from ocr.report.report import analyze
    from ocr.report.sources import load_run

    run_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = run_dir / "target-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # epoch 1 must be the cold one
    cfg = compose_config("train", trainer_overrides(settings, cache_dir))
    L.seed_everything(0, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    # every validation epoch's PSS (the memory budget's figure), whatever the readings cost
    profiler = PerformanceProfilerCallback(output_dir=str(run_dir), pss_budget=1.0)
    trainer = bench_trainer(
        [profiler],
        max_epochs=settings.trainer_epochs,
        logger=ResumableCSVLogger(save_dir=str(run_dir), name="", version=""),
        default_root_dir=str(run_dir),
        log_every_n_steps=1,
    )
    with pinned_threads(torch=settings.torch_threads):
        trainer.fit(model, datamodule=datamodule)
    loaded = load_run(str(run_dir))
    if loaded.summary is None:  # the profiler writes it when the fit ends
        raise RuntimeError(f"{run_dir}: the fit left no perf_summary.json")
    summary = loaded.summary
    analysis = analyze(loaded)
    figures = dict(analysis.figures)
    validate = [e for e in summary["epochs"] if e["phase"] == "validate"]
    steady = sorted(validate, key=lambda e: e["epoch"])[1:]
    computed = [int(e.get("counters", {}).get("targets_computed", 0)) for e in steady]
    figures["bench.validate.maps_computed_after_warmup"] = float(max(computed, default=0))
    figures["bench.validate.epochs_after_warmup"] = float(len(steady))
    # The epoch-boundary stall: the worst later epoch's first-batch wait, relative to epoch 1's.
    train = sorted((e for e in summary["epochs"] if e["phase"] == "train"), key=lambda e: e["epoch"])
    first = float(train[0].get("first_batch_wait_s") or 0.0) if train else 0.0
    later = [float(e.get("first_batch_wait_s") or 0.0) for e in train[1:]]
    figures["bench.train.first_batch_wait_s_epoch1"] = first
    figures["bench.train.first_batch_wait_s_later_max"] = max(later, default=float("nan"))
    figures["bench.train.first_batch_wait_vs_epoch1"] = (
        max(later) / first if later and first > 0 else float("nan")
    )
    # The same waits against what one batch costs a worker in that epoch (the stall a boundary
    # without prefetch costs): unlike epoch 1's wait, it carries no one-off start-up cost.
    ratios = []
    for entry in train[1:]:
        worker_s = sum(float(st.get("total", 0.0)) for st in (entry.get("worker_stages") or {}).values())
        per_batch = worker_s / max(1, int(entry.get("batches") or 0))
        if per_batch > 0:
            ratios.append(float(entry.get("first_batch_wait_s") or 0.0) / per_batch)
    figures["bench.train.first_batch_wait_vs_batch_cost"] = max(ratios, default=float("nan"))
    return TrainerRun(run_dir, figures)


def measure_trainer_isolated(settings: SuiteSettings, run_dir: Path) -> TrainerRun:
    """:func:`measure_trainer` in a fresh (spawned) process.

    Its peak RSS is a budgeted figure: measured in-process it would also hold whatever the
    measurements before it (or, in pytest, every earlier test) left in the interpreter
    (docs/performance.md has the figures).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # (ProcessPoolExecutor's workers are not daemonic, so the fit may start DataLoader workers.)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_trainer, settings, run_dir).result()


# -- the whole suite ---------------------------------------------------------------------------------
def measure(group: str, settings: SuiteSettings, workdir: Path) -> dict[str, float]:
    """One group's figures (``trainer`` runs its fit under ``workdir/trainer``)."""
    if group == "targets":
        return measure_targets(settings)
    if group == "cache":
        return measure_cache(settings, workdir)
    if group == "overhead":
        return measure_overhead(settings)
    if group == "evalwork":
        return measure_evalwork(settings)
    if group == "trainer":
        return measure_trainer_isolated(settings, workdir / "trainer").figures
    raise ValueError(f"unknown group {group!r}; known: {GROUPS}")


def write_baseline(
    path: Path,
    run_dir: Path,
    figures: dict[str, float],
    settings: SuiteSettings,
    groups: Sequence[str],
    name: str = "perf-suite baseline",
) -> Path:
    """The Trainer run's report export (``ocr.report/1``) with the suite's figures and settings added."""
    from ocr.report.export import write_json
    from ocr.report.report import analyze
    from ocr.report.sources import load_run

    analysis = analyze(load_run(str(run_dir)))
    analysis.figures.update(figures)
    analysis.run.info["name"] = name  # the label `ocr report --compare` shows
    analysis.run.info["suite"] = {
        "version": SUITE_VERSION,
        "groups": list(groups),
        "settings": asdict(settings),
        "slowdown_injected": slowdown_injected(),
    }
    analysis.run.notes.append(
        f"performance suite baseline ({SUITE_VERSION}) from `ocr bench --save-baseline`"
    )
    return write_json(analysis, path)


def save_baseline(path: Path, settings: SuiteSettings) -> dict[str, Any]:
    started = time.perf_counter()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ocr-perf-baseline-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        for group in GROUPS:
            figures.update(measure(group, settings, work))
        written = write_baseline(path, work / "trainer", figures, settings, GROUPS)
    return {"baseline": str(written), "seconds": round(time.perf_counter() - started, 1), "figures": figures}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", required=True, metavar="PATH", help="baseline JSON to write (ocr.report/1)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=INT",
        help=f"override a measurement setting (repeatable), e.g. target_repeats=9; "
        f"names: {', '.join(SuiteSettings.__dataclass_fields__)}",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ocr.schema import from_dotlist

    return save_baseline(Path(args.output), from_dotlist(SuiteSettings, args.set, "--set"))
