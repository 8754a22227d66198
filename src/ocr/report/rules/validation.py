"""Validation rules: post-processing/metric share, validation slower than training."""

from __future__ import annotations

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.finding import Finding

METRIC_STAGES = ("metric_update", "metric_compute")


def validation_postprocess(analysis: Analysis) -> list[Finding]:
    """Post-processing + metric above postprocess_share of the validation epoch."""
    post = analysis.fig("validate.stage.postprocess.share") or 0.0
    metric = sum(analysis.fig(f"validate.stage.{s}.share") or 0.0 for s in METRIC_STAGES)
    compute = analysis.fig("validate.stage.compute.share")
    if post + metric <= analysis.rule_limits.postprocess_share:
        return []
    evidence = [
        f"post-processing {fmt.pct(post)}, metric {fmt.pct(metric)} (update + compute) of the "
        f"validation epoch; forward pass {fmt.pct(compute)}",
        f"median per batch: postprocess {fmt.ms(analysis.fig('validate.stage.postprocess.median_s'))}, "
        f"metric_update {fmt.ms(analysis.fig('validate.stage.metric_update.median_s'))}, "
        f"compute {fmt.ms(analysis.fig('validate.stage.compute.median_s'))}",
    ]
    if post >= metric:
        title = f"Post-processing dominates validation ({fmt.pct(post)} of the epoch)"
        advice = (
            "DB post-processing scores every contour on the CPU: an untrained or low-threshold map yields "
            "thousands of candidates, so cap model.postprocess.max_candidates, raise thresh/box_thresh, "
            "or run post-processing in a worker pool"
        )
    else:
        title = f"Metric computation dominates validation ({fmt.pct(metric)} of the epoch)"
        advice = (
            "CLEval matching is expensive per box: validate less often (trainer.check_val_every_n_epoch), "
            "use the IoU metric during training and CLEval for the final evaluation"
        )
    return [
        Finding(
            "validation_postprocess",
            title,
            post + metric,
            evidence,
            advice + ".",
            {"postprocess_share": post, "metric_share": metric},
        )
    ]


def val_slower_than_train(analysis: Analysis) -> list[Finding]:
    """Validation time per sample above training's (validation has no backward pass)."""
    ratio = analysis.fig("val_vs_train_ratio")
    if ratio is None or ratio <= analysis.rule_limits.val_train_ratio:
        return []
    val = analysis.fig("validate.time_per_sample_s")
    train = analysis.fig("train.time_per_sample_s")
    stages = analysis.stage_figures("validate", "stage", "share")
    top = sorted(stages, key=lambda s: -stages[s])[:3]
    evidence = [
        f"validation {fmt.ms(val)} per sample vs training {fmt.ms(train)} (ratio {ratio:.2f}, "
        f"limit {analysis.rule_limits.val_train_ratio:.2f})",
        "largest validation stages: " + ", ".join(f"{s} {fmt.pct(stages[s])}" for s in top),
    ]
    return [
        Finding(
            "val_slower_than_train",
            f"Validation costs more per sample than training ({ratio:.2f}x)",
            min(1.0, (ratio - 1.0) / ratio),
            evidence,
            "A forward pass without backward should cost less than a training step: work on "
            f"{top[0] if top else 'the largest stage'} "
            "first; a larger data.loader.val_batch_size amortises per-batch overheads.",
            {"val_vs_train_ratio": ratio},
        )
    ]
