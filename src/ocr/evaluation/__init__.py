"""Asynchronous evaluation: post-processing and the CLEval/IoU updates in a pool of processes.

See ``docs/evaluation.md`` for the design and the measured figures.
"""

from ocr.evaluation.config import EvaluatorConfig, default_workers
from ocr.evaluation.pool import EvaluatorError, EvaluatorPool

__all__ = ["EvaluatorConfig", "EvaluatorError", "EvaluatorPool", "default_workers"]
