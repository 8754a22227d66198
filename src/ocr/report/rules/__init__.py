"""Bottleneck rules: small functions ``rule(analysis) -> [Finding]``.

Each rule reads the analysis (figures, per-epoch perf, config, rule limits) and returns findings
with their evidence (the numbers) and a concrete recommendation. Findings are ranked by
``impact``, roughly the share of the epoch at stake; when no rule fires, one "no bottleneck found"
finding says so, with the numbers that were checked. A new rule is a function in one of the rule
modules plus one entry in :data:`RULES`; its name is the function's name, its doc the docstring's
first line.
"""

from __future__ import annotations

from collections.abc import Callable

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.finding import Finding
from ocr.report.rules import data, memory, timing, validation

Rule = Callable[[Analysis], list[Finding]]


RULES: tuple[Rule, ...] = (
    data.data_wait,
    data.worker_targets,
    data.cache_hit_rate,
    data.cache_slow_hits,
    memory.memory_growth,
    timing.variance,
    timing.low_attribution,
    validation.validation_postprocess,
    validation.val_slower_than_train,
)


def rule_doc(rule: Rule) -> str:
    """The rule's one-line description (``--list-rules``): its docstring's first line."""
    return (rule.__doc__ or "").strip().split("\n")[0]


def no_bottleneck(analysis: Analysis) -> Finding:
    limits = analysis.rule_limits
    evidence = [
        f"{phase}: data wait {fmt.pct(analysis.fig(f'{phase}.data_wait_share'))} "
        f"(limit {fmt.pct(limits.data_wait_share)}), named stages cover "
        f"{fmt.pct(analysis.fig(f'{phase}.attributed_share'))} (minimum {fmt.pct(limits.attributed_share)})"
        for phase in analysis.perf.phases
    ]
    ratio = analysis.fig("val_vs_train_ratio")
    if ratio is not None:
        evidence.append(
            f"validation/training time per sample: {ratio:.2f} (limit {limits.val_train_ratio:.2f})"
        )
    return Finding(
        "none",
        "No bottleneck found",
        0.0,
        evidence,
        "Nothing crosses the rule limits; the step is compute-bound as it should be. Lower the limits "
        "(--rule-limit NAME=VALUE) to look for smaller gains.",
    )


def run_rules(analysis: Analysis) -> list[Finding]:
    """Every rule's findings, ranked by impact; "no bottleneck" if none fires."""
    if not analysis.has_perf:
        return []
    findings = [f for rule in RULES for f in rule(analysis)]
    findings.sort(key=lambda f: -f.impact)
    return findings or [no_bottleneck(analysis)]


__all__ = ["RULES", "Finding", "no_bottleneck", "rule_doc", "run_rules"]
