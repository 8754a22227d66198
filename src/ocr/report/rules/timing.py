"""Timing-quality rules: per-stage variance, time not attributed to any stage."""

from __future__ import annotations

import statistics

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.figures import steady
from ocr.report.finding import Finding
from ocr.report.rules.waits import STALL_S, one_batch_advice, stage_spread

VARIANCE_CAUSES = {
    "compute": "the step time varies: warm-up (cudnn autotuning, first-batch allocations), varying input "
    "shapes, or garbage collection; fixed input sizes and trainer.benchmark=true on GPU help",
    "h2d": "host-to-device copies vary: enable data.loader.pin_memory=true on GPU",
    "postprocess": "the number of candidate boxes varies per image: cap model.postprocess.max_candidates",
    "metric_update": "the metric's cost grows with the boxes per image: see the post-processing thresholds",
    "checkpoint": "checkpoint writes hit the disk intermittently: save less often or to faster storage",
    "hooks": "a LightningModule hook does periodic work (logging, image dumps): move it off the step",
    "callbacks": "a callback does periodic work on some batches: check the callbacks' per-batch hooks",
}


READY_S = 0.001  # a median data wait below this: the median batch was ready when asked for

# Stages timed once per batch with comparable calls. hooks/callbacks/profiler pool many different
# hooks (their p95/median says nothing) and metric_compute runs once per epoch.
VARIANCE_STAGES = frozenset({"data_wait", "h2d", "compute", "postprocess", "metric_update"})


def variance(analysis: Analysis) -> list[Finding]:
    """A stage whose p95 exceeds variance_ratio times its median (and takes a real share)."""
    limits = analysis.rule_limits
    out = []
    for phase in analysis.perf.phases:
        for stage, share in analysis.stage_figures(phase, "stage", "share").items():
            if share < limits.variance_min_share or stage not in VARIANCE_STAGES:
                continue
            median = analysis.fig(f"{phase}.stage.{stage}.median_s")
            p95 = analysis.fig(f"{phase}.stage.{stage}.p95_s")
            if not median or not p95 or p95 <= limits.variance_ratio * median:
                continue
            if stage == "data_wait":
                out.append(_data_wait_stalls(analysis, phase, share, median, p95))
                continue
            ratio = p95 / median
            out.append(
                Finding(
                    "variance",
                    f"{stage} varies a lot in {phase}: p95 is {ratio:.1f}x the median",
                    share * (1 - 1 / ratio),
                    [
                        f"{phase} {stage}: median {fmt.ms(median)}, p95 {fmt.ms(p95)}, p99 "
                        f"{fmt.ms(analysis.fig(f'{phase}.stage.{stage}.p99_s'))} "
                        f"(limit {limits.variance_ratio:.1f}x)",
                        f"{stage} takes {fmt.pct(share)} of the {phase} epoch",
                    ],
                    fmt.sentence(_variance_cause(analysis, stage)),
                    {"p95_over_median": ratio, "share": share},
                )
            )
    return out


def _variance_cause(analysis: Analysis, stage: str) -> str:
    if stage == "h2d" and analysis.hparam("data.loader.pin_memory") is True:
        return (
            "host-to-device copies vary although data.loader.pin_memory is already on: look at what the "
            "copy competes with (the pinning thread and the workers for CPU and memory bandwidth) and at "
            "batches that change size"
        )
    return VARIANCE_CAUSES.get(stage, f"find what makes some {stage} calls slow")


def _data_wait_stalls(analysis: Analysis, phase: str, share: float, median: float, p95: float) -> Finding:
    """Data wait whose p95 is far above its median: a few stalls, ranked by their share of the epoch.

    The ratio says little here (a ready batch "waits" microseconds, so any stall is a huge multiple
    of it); what matters is how much of the epoch the stalls take: the wait above the median,
    (total - batches x median) / wall, per steady epoch, median over the epochs.
    """
    p99 = analysis.fig(f"{phase}.stage.data_wait.p99_s")
    spread = stage_spread(analysis, phase, "data_wait")
    above = [
        (e.stages["data_wait"]["total"] - (e.stage_count("data_wait") or 0) * median) / e.wall_s
        for e in steady(analysis.epochs(phase))
        if e.wall_s and "total" in e.stages.get("data_wait", {}) and e.stage_count("data_wait")
    ]
    stall_share = max(0.0, statistics.median(above)) if above else share
    ready = median < READY_S
    evidence = [
        f"{phase} data wait per batch: median {fmt.ms(median)}"
        + (" (the batch was ready)" if ready else "")
        + f", p95 {fmt.ms(p95)}, p99 {fmt.ms(p99)}"
        + (f", slowest {fmt.sec(spread.slowest_s)}" if spread else "")
        + " (steady-epoch medians)",
    ]
    if spread:
        evidence.append(
            f"the slowest batch of an epoch holds {fmt.pct(spread.slowest_share)} of the epoch's data wait; "
            f"the other {spread.batches - 1} batches wait {fmt.ms(spread.rest_s)} together "
            f"({fmt.pct(spread.rest_epoch_share)} of the epoch)"
        )
        if spread.over_at_least is not None:
            evidence.append(
                f"at least {spread.over_at_least} of {spread.batches} batches per epoch "
                f"{'waits' if spread.over_at_least == 1 else 'wait'} more than "
                f"{fmt.ms(STALL_S)} (a lower bound from the percentiles)"
            )
    evidence.append(
        f"data wait takes {fmt.pct(share)} of the {phase} epoch; the waits above the median batch's take "
        f"{fmt.pct(stall_share)} (the finding's rank)"
    )
    advice = (
        "The median batch does not wait at all: the workers keep up, and the wait concentrates in a few "
        "stalls per epoch"
        if ready
        else f"The wait is uneven: the median batch waits {fmt.ms(median)}, one in twenty over {fmt.ms(p95)}"
    )
    if spread and spread.slowest_share >= 0.5:
        if share > analysis.rule_limits.data_wait_share:  # the data_wait finding says what to change
            advice += (
                f"; one batch per epoch holds {fmt.pct(spread.slowest_share)} of it (see the data_wait "
                "finding for this phase)."
            )
        else:
            advice += ". " + fmt.sentence(one_batch_advice(analysis, phase, spread)[0])
    else:
        advice += (
            ": the workers fall behind now and then: outlier samples (many polygons, large images) or too "
            "few workers to absorb them; look for slow samples or raise data.loader.num_workers."
        )
    return Finding(
        "variance",
        f"{phase.capitalize()} data wait comes in stalls: {fmt.pct(stall_share)} of the epoch, while the "
        f"median batch waits {fmt.ms(median)}",
        stall_share,
        evidence,
        advice,
        {
            "p95_over_median": p95 / median,
            "share": share,
            "stall_share": stall_share,
            **({"slowest_batch_share_of_wait": spread.slowest_share} if spread else {}),
        },
    )


def low_attribution(analysis: Analysis) -> list[Finding]:
    """Named stages cover less than attributed_share of the epoch."""
    out = []
    for phase in analysis.perf.phases:
        covered = analysis.fig(f"{phase}.attributed_share")
        if covered is None or covered >= analysis.rule_limits.attributed_share:
            continue
        out.append(
            Finding(
                "low_attribution",
                f"{fmt.pct(1 - covered)} of the {phase} epoch is not attributed to any stage",
                1 - covered,
                [
                    f"named stages cover {fmt.pct(covered)} of the {phase} epoch "
                    f"(minimum {fmt.pct(analysis.rule_limits.attributed_share)})"
                ],
                "The missing time is outside the timed stages: logging, progress bar, optimizer/scheduler "
                "hooks, garbage collection or worker start-up at epoch start (persistent_workers=false). "
                "Run once with trainer.profiler=simple to name the missing actions.",
                {"attributed_share": covered},
            )
        )
    return out
