"""Limits of the bottleneck rules, overridable from the command line or a YAML/JSON file.

Called "rule limits" (``--rule-limit NAME=VALUE``, ``--rule-limits-file FILE``) so that
"thresholds" keeps one meaning in the project: the regression suite's
``tests/performance/baselines/thresholds.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from ocr.report.errors import ReportError
from ocr.schema import from_dotlist


@dataclass(frozen=True)
class RuleLimits:
    data_wait_share: float = 0.20  # data wait above this share of the epoch -> input-bound
    postprocess_share: float = 0.30  # post-processing + metric above this share of validation
    variance_ratio: float = 1.5  # p95 above this many medians -> a variance source
    variance_min_share: float = 0.05  # ...for stages that take at least this share of the epoch
    val_train_ratio: float = 1.0  # validation time per sample above this many training's
    attributed_share: float = 0.80  # named stages must cover at least this share of the epoch
    cache_hit_rate: float = 0.50  # hit rate after the first epoch must reach this
    cache_hit_cost_ratio: float = 0.50  # a hit must cost less than this share of a miss
    worker_targets_share: float = 0.50  # targets above this share of per-sample worker time
    memory_growth: float = 0.25  # RSS growing by more than this fraction from epoch to epoch

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def load_rule_limits(path: str | None, assignments: list[str] | None = None) -> RuleLimits:
    """The defaults, then ``path``'s mapping (``--rule-limits-file``), then ``NAME=VALUE`` assignments.

    The file's entries go through the same typed check as the command line's (as ``NAME=VALUE``
    items), so an unknown name or a non-number fails naming the file, the entry and the names."""
    limits = RuleLimits()
    if path:
        try:
            text = Path(path).read_text()
            data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ReportError(
                f"{path}: unreadable rule limits file ({exc}); write a YAML/JSON mapping of name: value"
            ) from exc
        if not isinstance(data, dict):
            raise ReportError(
                f"{path}: a rule limits file must be a mapping of name: value (see ocr report --list-rules)"
            )
        items = [f"{name}={value}" for name, value in data.items()]
        limits = from_dotlist(RuleLimits, items, path, limits, ReportError, "rule limit")
    return from_dotlist(RuleLimits, assignments or [], "--rule-limit", limits, ReportError, "rule limit")
