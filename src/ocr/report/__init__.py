"""``ocr report``: performance reports from runs, whatever logged them.

Layout: ``sources/`` read a run into one long table (:class:`ocr.report.run.RunData`);
``epoch_perf`` rebuilds per-epoch records (read back from ``ocr.perf``'s summary); ``figures``
computes the flat headline figures; ``rules/`` find bottlenecks (:class:`ocr.report.finding.Finding`);
``sections`` and ``plots/`` render Markdown and PNGs; ``export`` and ``compare`` write JSON/CSV and
comparisons. Import the module you need: this package imports nothing, so reading one run source
does not load matplotlib or every rule.
"""
