"""Imported by the forkserver before it forks any evaluator: warms the evaluation stack once."""

from ocr.evaluation.worker import warm_up

warm_up()
