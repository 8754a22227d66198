"""Run sources. Importing this package registers every source module."""

from ocr.report.sources import report_json, run_dir, tensorboard, wandb_offline, wandb_online  # noqa: F401
from ocr.report.sources.registry import (
    Source,
    detect_source,
    get_source,
    list_sources,
    load_run,
    register_source,
)

__all__ = ["Source", "detect_source", "get_source", "list_sources", "load_run", "register_source"]
