"""Build one run's report: analysis, plots beside the Markdown file, rendered sections."""

from __future__ import annotations

from pathlib import Path

from ocr.report.context import Analysis
from ocr.report.plots.single import draw_all
from ocr.report.rule_limits import RuleLimits
from ocr.report.rules import run_rules
from ocr.report.run import RunData
from ocr.report.sections import SectionInput, render


def plots_dir(output: Path) -> Path:
    """PNGs go to ``<stem>_plots/`` beside the Markdown file, linked relatively."""
    return output.parent / f"{output.stem}_plots"


def analyze(run: RunData, rule_limits: RuleLimits | None = None) -> Analysis:
    analysis = Analysis.build(run, rule_limits)
    analysis.findings = run_rules(analysis)
    return analysis


def write_report(analysis: Analysis, output: Path, plots: bool = True) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    drawn = draw_all(analysis, plots_dir(output)) if plots else {}
    output.write_text(render(SectionInput(analysis, drawn, output.parent)))
    return output
