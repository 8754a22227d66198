"""Build one run's report: analysis, plots beside the Markdown file, rendered sections."""

from __future__ import annotations

import os
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
    drawn: dict[str, tuple[str | None, str]] = {}
    if plots:
        for name, (path, why) in draw_all(analysis, plots_dir(output)).items():
            drawn[name] = (Path(os.path.relpath(path, output.parent)).as_posix() if path else None, why)
    output.write_text(render(SectionInput(analysis, analysis.findings, drawn)))
    return output
