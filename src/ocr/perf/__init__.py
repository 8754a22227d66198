"""Performance measurement without Lightning: the ``perf_summary.json`` schema (``schema``), the
keys logged from it (``keys``), the stage clock (``clock``), per-epoch aggregation and rank
merging (``aggregate``, ``stats``), the document and its file (``summary``), run information and
memory readings (``system``). The Lightning side is :mod:`ocr.callbacks.performance_profiler`."""
