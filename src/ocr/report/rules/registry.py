"""Bottleneck rules (timm-style registry): small functions ``rule(analysis) -> [Finding]``.

Each rule reads the analysis (figures, per-epoch perf, config, thresholds) and returns findings
with their evidence (the numbers) and a concrete recommendation. Findings are ranked by
``impact``, roughly the share of the epoch at stake; when no rule fires, one "no bottleneck found"
finding says so, with the numbers that were checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ocr.report import fmt
from ocr.report.context import Analysis


@dataclass
class Finding:
    rule: str
    title: str
    impact: float  # ~ share of the epoch at stake, for ranking
    evidence: list[str]
    recommendation: str
    numbers: dict[str, float] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        if self.rule == "none":
            return "info"
        return "high" if self.impact >= 0.25 else "medium" if self.impact >= 0.10 else "low"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity}


Rule = Callable[[Analysis], list[Finding]]


@dataclass(frozen=True)
class RuleEntry:
    name: str
    fn: Rule
    doc: str


_RULES: dict[str, RuleEntry] = {}


def register_rule(name: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        _RULES[name] = RuleEntry(name, fn, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "")
        return fn

    return wrap


def list_rules() -> list[RuleEntry]:
    return list(_RULES.values())


def no_bottleneck(analysis: Analysis) -> Finding:
    th = analysis.thresholds
    evidence = []
    for phase in analysis.perf.phases:
        share = analysis.fig(f"{phase}.data_wait_share")
        covered = analysis.fig(f"{phase}.attributed_share")
        evidence.append(
            f"{phase}: data wait {fmt.pct(share)} (limit {fmt.pct(th.data_wait_share)}), "
            f"named stages cover {fmt.pct(covered)} (minimum {fmt.pct(th.attributed_share)})"
        )
    ratio = analysis.fig("val_vs_train_ratio")
    if ratio is not None:
        evidence.append(f"validation/training time per sample: {ratio:.2f} (limit {th.val_train_ratio:.2f})")
    return Finding(
        "none",
        "No bottleneck found",
        0.0,
        evidence,
        "Nothing crosses the thresholds; the step is compute-bound as it should be. Lower the thresholds "
        "(--rule-threshold NAME=VALUE) to look for smaller gains.",
    )


def run_rules(analysis: Analysis, only: list[str] | None = None) -> list[Finding]:
    """Every registered rule (or ``only`` those), ranked by impact; "no bottleneck" if none fires."""
    if not analysis.has_perf:
        return []
    findings = [
        f for entry in _RULES.values() if only is None or entry.name in only for f in entry.fn(analysis)
    ]
    findings.sort(key=lambda f: -f.impact)
    return findings or [no_bottleneck(analysis)]
