"""``ocr report``: performance reports from runs, whatever logged them.

Layout: ``sources/`` read a run into one long table (:class:`RunData`); ``perf`` rebuilds per-epoch
records; ``figures`` computes the flat headline figures; ``rules/`` find bottlenecks; ``sections``
and ``plots/`` render Markdown and PNGs; ``export`` and ``compare`` write JSON/CSV and comparisons.
"""

from ocr.report.context import Analysis
from ocr.report.errors import ReportError
from ocr.report.report import analyze, write_report
from ocr.report.run import RunData
from ocr.report.sources import load_run

__all__ = ["Analysis", "ReportError", "RunData", "analyze", "load_run", "write_report"]
