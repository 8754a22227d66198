"""Bottleneck rules. Importing this package registers every rule module."""

from ocr.report.rules import data, memory, timing, validation  # noqa: F401
from ocr.report.rules.registry import Finding, list_rules, no_bottleneck, register_rule, run_rules

__all__ = ["Finding", "list_rules", "no_bottleneck", "register_rule", "run_rules"]
