"""Input-pipeline rules: data wait, worker targets, target-cache hit rate."""

from __future__ import annotations

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.figures import steady
from ocr.report.finding import Finding
from ocr.report.rules.waits import one_batch_advice, stage_spread, worker_means

WORKER_ADVICE = {
    "decode": "decoding dominates: store images pre-resized (near data.image_size) or in a faster format",
    "transform": "augmentation dominates: lighten data.augment (fewer/cheaper ops) or resize before "
    "augmenting",
    "collate": "collation dominates: check for large per-batch copies (pin_memory, tensor stacking)",
}


def heaviest_worker_stage(analysis: Analysis, phase: str) -> tuple[str, float] | None:
    """The data-loading stage with the largest mean time per sample (collate spread over the batch)."""
    means = worker_means(analysis, phase)
    return max(means.items(), key=lambda item: item[1]) if means else None


def targets_advice(analysis: Analysis, phase: str) -> str:
    """What to do about target maps, given what the cache is doing in this phase."""
    rate = analysis.fig(f"{phase}.cache.hit_rate")
    cheaper = "or use the cheaper border formula (data.targets.formula=db)"
    if rate is None:
        return (
            "enable the target cache (data.cache.enabled=true; for training also data.cache.train=true with "
            f"augmentation off) {cheaper}"
        )
    if rate < analysis.rule_limits.cache_hit_rate:
        return f"the cache hits only {fmt.pct(rate)} here (see the cache findings) {cheaper}"
    return (
        f"the cache already hits {fmt.pct(rate)}, so what is left is the hits themselves "
        f"(p95 {fmt.ms(analysis.fig(f'{phase}.worker.targets.p95_s'))}): keep hits in memory "
        f"(data.cache.memory_items) and check the disk store's latency, {cheaper}"
    )


def _worker_advice(analysis: Analysis, phase: str) -> str:
    cores, workers = analysis.cpu_count, analysis.config.get("num_workers")
    if workers is not None and cores:
        target = max(1, cores - 1)
        if workers == 0:
            return (
                f"data.loader.num_workers=0 loads every batch in the main process: set it to {target} "
                f"(the machine has {cores} cores; leave one for the main process)"
            )
        if workers < target:
            return f"raise data.loader.num_workers from {workers} to {target} (the machine has {cores} cores)"
        return (
            f"the {workers} workers already cover the machine's {cores} cores, so more workers will not "
            "help: make each sample cheaper"
        )
    core_text = f"the machine has {cores} cores" if cores else "the core count is not recorded in this source"
    now = workers if workers is not None else "unknown"
    return f"add DataLoader workers (data.loader.num_workers, now {now}; {core_text})"


def data_wait(analysis: Analysis) -> list[Finding]:
    """Data wait above data_wait_share of the epoch: the loader cannot keep up."""
    out = []
    for phase in analysis.perf.phases:
        share = analysis.fig(f"{phase}.data_wait_share")
        if share is None or share <= analysis.rule_limits.data_wait_share:
            continue
        wait = analysis.fig(f"{phase}.stage.data_wait.median_s")
        compute = analysis.fig(f"{phase}.stage.compute.median_s")
        evidence = [
            f"data wait is {fmt.pct(share)} of the {phase} epoch "
            f"(limit {fmt.pct(analysis.rule_limits.data_wait_share)})",
            f"median batch: data wait {fmt.ms(wait)} vs compute {fmt.ms(compute)}",
        ]
        advice = [_worker_advice(analysis, phase)]
        fetches = [c for c in (e.stage_count("data_wait") for e in steady(analysis.epochs(phase))) if c]
        workers = int(analysis.config.get("num_workers") or 0)
        spread = stage_spread(analysis, phase, "data_wait")
        stage_advice = True
        if spread and spread.slowest_share >= 0.5:
            # measured: one batch per epoch holds most of the wait (count, total and max are known)
            evidence.append(
                f"the slowest batch of an epoch waits {fmt.sec(spread.slowest_s)}, "
                f"{fmt.pct(spread.slowest_share)} of the epoch's data wait; without it data wait would be "
                f"{fmt.pct(spread.rest_epoch_share)} of the epoch ({spread.batches} batches per epoch)"
            )
            lead, samples_matter = one_batch_advice(analysis, phase, spread)
            rest_fed = spread.rest_epoch_share <= analysis.rule_limits.data_wait_share
            if rest_fed:
                advice = [lead]  # the rest of the epoch is fed: the worker count is not the problem
            else:
                advice.insert(0, lead)
            stage_advice = samples_matter or not rest_fed
        elif fetches and max(fetches) <= 2 * max(workers, 1):
            n = max(fetches)
            evidence.append(f"only {n} batch{'es' if n != 1 else ''} per {phase} epoch")
            advice.insert(
                0,
                "with this few batches most of the wait is the epoch's first batch, which prefetching cannot "
                "hide: confirm on a longer run before changing the loader",
            )
        heaviest = heaviest_worker_stage(analysis, phase)
        if heaviest:
            stage, mean = heaviest
            evidence.append(f"heaviest data-loading stage: {stage}, {fmt.ms(mean)} per sample")
            # no per-stage advice where the samples' cost does not explain the wait
            if stage_advice and stage == "targets":
                advice.append("target maps dominate: " + targets_advice(analysis, phase))
            elif stage_advice:
                advice.append(WORKER_ADVICE.get(stage, f"reduce the {stage} stage's cost"))
        if analysis.config.get("cache_enabled") is False and not (heaviest and heaviest[0] == "targets"):
            advice.append("the target cache is off (data.cache.enabled=false): enable it for validation")
        out.append(
            Finding(
                "data_wait",
                f"{phase.capitalize()} is input-bound: {fmt.pct(share)} of the epoch waits for data",
                share,
                evidence,
                fmt.sentence("; ".join(advice)),
                {"data_wait_share": share, "workers": float(analysis.config.get("num_workers") or 0)},
            )
        )
    return out


def worker_targets(analysis: Analysis) -> list[Finding]:
    """Target-map generation above worker_targets_share of per-sample worker time."""
    out = []
    for phase in analysis.perf.phases:
        share = analysis.fig(f"{phase}.worker.targets.share")
        if share is None or share <= analysis.rule_limits.worker_targets_share:
            continue
        mean = analysis.fig(f"{phase}.worker.targets.mean_s")
        wait = analysis.fig(f"{phase}.data_wait_share") or 0.0
        cache = analysis.config.get("cache_enabled")
        advice = targets_advice(analysis, phase)
        out.append(
            Finding(
                "worker_targets",
                f"Target maps dominate {phase} worker time ({fmt.pct(share)} per sample)",
                share * max(wait, 0.02),
                [
                    f"targets take {fmt.ms(mean)} per sample, {fmt.pct(share)} of the worker's "
                    "per-sample time",
                    f"data wait in {phase}: {fmt.pct(wait)} of the epoch (what the workers fail to hide)",
                    f"target formula: {analysis.config.get('target_formula', 'unknown')}, cache "
                    f"enabled: {cache}",
                ],
                fmt.sentence(advice),
                {"targets_share": share},
            )
        )
    return out


def cache_hit_rate(analysis: Analysis) -> list[Finding]:
    """Target-cache hit rate below cache_hit_rate after the first epoch."""
    out = []
    for phase in analysis.perf.phases:
        later = [e for e in analysis.epochs(phase)[1:] if e.cache_hit_rate is not None]
        if not later:
            continue
        rate = sum(e.cache_hit_rate or 0.0 for e in later) / len(later)
        if rate >= analysis.rule_limits.cache_hit_rate:
            continue
        per_epoch = ", ".join(f"epoch {e.epoch}: {fmt.pct(e.cache_hit_rate)}" for e in analysis.epochs(phase))
        if phase == "train" and analysis.config.get("augment"):
            advice = (
                "training augmentation changes every sample's polygons, so cached targets never repeat: "
                "cache validation only (data.cache.train=false) or turn augmentation off for cached runs"
            )
        else:
            advice = (
                "the cache forgets between epochs: raise data.cache.max_bytes / memory_items, keep "
                "persistent_workers=true, and check that data.cache.dir is writable and shared by the workers"
            )
        share = analysis.fig(f"{phase}.worker.targets.share") or 0.0
        out.append(
            Finding(
                "cache_hit_rate",
                f"Target cache hit rate stays low in {phase} after epoch 1 ({fmt.pct(rate)})",
                (1 - rate) * max(share, 0.05) * 0.5,
                [
                    f"hit rate per epoch: {per_epoch}",
                    f"limit after the first epoch: {fmt.pct(analysis.rule_limits.cache_hit_rate)}",
                ],
                fmt.sentence(advice),
                {"hit_rate_after_first_epoch": rate},
            )
        )
    return out


def cache_slow_hits(analysis: Analysis) -> list[Finding]:
    """A cache hit costing more than cache_hit_cost_ratio of computing the targets (a miss)."""
    out = []
    for phase in analysis.perf.phases:
        hit, miss = analysis.fig(f"{phase}.cache.hit_cost_s"), analysis.fig(f"{phase}.cache.miss_cost_s")
        if hit is None or not miss or hit <= analysis.rule_limits.cache_hit_cost_ratio * miss:
            continue
        share = analysis.fig(f"{phase}.worker.targets.share") or 0.0
        out.append(
            Finding(
                "cache_slow_hits",
                f"Target cache hits in {phase} cost {hit / miss:.0%} of computing the targets",
                max(share, 0.02) * max(analysis.fig(f"{phase}.data_wait_share") or 0.0, 0.02),
                [
                    f"{phase}: a hit costs {fmt.ms(hit)} per sample, a miss (computing) {fmt.ms(miss)} "
                    f"(limit {fmt.pct(analysis.rule_limits.cache_hit_cost_ratio)} of a miss)",
                    f"estimated net time saved over the run: {fmt.sec(analysis.fig('cache.time_saved_s'))}",
                ],
                "The cache does not pay here: targets are cheap to compute (small images, "
                "data.targets.formula=db) "
                "or reads are slow; keep hits in memory (data.cache.memory_items) or turn the cache off.",
                {"hit_cost_s": hit, "miss_cost_s": miss},
            )
        )
    return out
