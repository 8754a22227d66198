"""Memory rule: RSS that keeps growing from epoch to epoch (a leak, or a cache without a bound)."""

from __future__ import annotations

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.rules.registry import Finding, register_rule


@register_rule("memory_growth")
def memory_growth(analysis: Analysis) -> list[Finding]:
    """Main or worker RSS growing by more than the threshold between the second and last epochs."""
    out: list[Finding] = []
    epochs = analysis.epochs("train")
    if len(epochs) < 3:  # epoch 0 allocates everything; growth needs two later epochs
        return out
    for key, who in (("rss_mb", "main process"), ("workers_rss_mb", "DataLoader workers")):
        first, last = epochs[1].memory.get(key), epochs[-1].memory.get(key)
        if not first or last is None:
            continue
        growth = last / first - 1
        if growth <= analysis.thresholds.memory_growth:
            continue
        out.append(
            Finding(
                "memory_growth",
                f"{who} memory grows {fmt.pct(growth)} over training",
                min(0.5, growth / 4),
                [
                    f"{who} RSS {fmt.mb(first)} at epoch {epochs[1].epoch} -> "
                    f"{fmt.mb(last)} at epoch {epochs[-1].epoch}"
                ],
                "Memory that grows every epoch is a leak or an unbounded cache: check "
                "data.cache.memory_items, "
                "tensors kept across steps (detach logged values) and the workers' copy-on-write growth.",
                {"growth": growth},
            )
        )
    return out
