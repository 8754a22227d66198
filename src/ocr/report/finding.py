"""A bottleneck finding: what a rule found, its evidence (the numbers) and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
