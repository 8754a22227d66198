"""Timing-quality rules: per-stage variance, time not attributed to any stage."""

from __future__ import annotations

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.rules.registry import Finding, register_rule

VARIANCE_CAUSES = {
    "data_wait": "the workers fall behind intermittently: outlier samples (many polygons, large "
    "images) or too few "
    "workers to absorb them; raise data.loader.num_workers or look for slow "
    "samples",
    "compute": "the step time varies: warm-up (cudnn autotuning, first-batch allocations), "
    "varying input shapes, "
    "or garbage collection; fixed input sizes and trainer.benchmark=true on GPU help",
    "h2d": "host-to-device copies vary: enable data.loader.pin_memory=true on GPU",
    "postprocess": "the number of candidate boxes varies per image: cap model.postprocess.max_candidates",
    "metric_update": "the metric's cost grows with the boxes per image: see the post-processing thresholds",
    "checkpoint": "checkpoint writes hit the disk intermittently: save less often or to faster storage",
    "hooks": "a LightningModule hook does periodic work (logging, image dumps): move it off the step",
    "callbacks": "a callback does periodic work on some batches: check the callbacks' per-batch hooks",
}


# Stages timed once per batch with comparable calls. hooks/callbacks/profiler pool many different
# hooks (their p95/median says nothing) and metric_compute runs once per epoch.
VARIANCE_STAGES = frozenset({"data_wait", "h2d", "compute", "postprocess", "metric_update"})


@register_rule("variance")
def variance(analysis: Analysis) -> list[Finding]:
    """A stage whose p95 exceeds the threshold times its median (and takes a real share)."""
    th = analysis.thresholds
    out = []
    for phase in analysis.perf.phases:
        for key, share in analysis.figures.items():
            if (
                not (key.startswith(f"{phase}.stage.") and key.endswith(".share"))
                or share < th.variance_min_share
            ):
                continue
            stage = key.split(".")[2]
            if stage not in VARIANCE_STAGES:
                continue
            median = analysis.fig(f"{phase}.stage.{stage}.median_s")
            p95 = analysis.fig(f"{phase}.stage.{stage}.p95_s")
            if not median or not p95 or p95 <= th.variance_ratio * median:
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
                        f"(threshold {th.variance_ratio:.1f}x)",
                        f"{stage} takes {fmt.pct(share)} of the {phase} epoch",
                    ],
                    VARIANCE_CAUSES.get(stage, f"find what makes some {stage} calls slow") + ".",
                    {"p95_over_median": ratio, "share": share},
                )
            )
    return out


@register_rule("low_attribution")
def low_attribution(analysis: Analysis) -> list[Finding]:
    """Named stages cover less than the threshold share of the epoch."""
    out = []
    for phase in analysis.perf.phases:
        covered = analysis.fig(f"{phase}.attributed_share")
        if covered is None or covered >= analysis.thresholds.attributed_share:
            continue
        out.append(
            Finding(
                "low_attribution",
                f"{fmt.pct(1 - covered)} of the {phase} epoch is not attributed to any stage",
                1 - covered,
                [
                    f"named stages cover {fmt.pct(covered)} of the {phase} epoch "
                    "(minimum "
                    f"{fmt.pct(analysis.thresholds.attributed_share)})"
                ],
                "The missing time is outside the timed stages: logging, progress bar, "
                "optimizer/scheduler hooks, "
                "garbage collection or worker start-up at epoch start "
                "(persistent_workers=false). Run once with "
                "trainer.profiler=simple to name the missing actions.",
                {"attributed_share": covered},
            )
        )
    return out
