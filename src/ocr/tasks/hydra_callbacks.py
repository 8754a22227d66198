"""Hydra callbacks of the ``ocr`` tasks (registered in ``configs/hydra/default.yaml``)."""

from __future__ import annotations

from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback

from ocr.console import configure_console
from ocr.user_errors import config_user_error, exit_user_error, find_user_error


class HydraUserErrors(Callback):
    """Answer a task's user error (``ocr: error: ...``, exit 2) at the job's end, before Hydra
    writes its "Error executing job with overrides" line and re-raises; and quiet the libraries'
    console noise once Hydra has set up logging (a task that imported Lightning before that kept
    Lightning's own raw stderr handler)."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        configure_console()

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        failure = job_return._return_value
        error = find_user_error(failure) or config_user_error(failure)
        if error is not None:
            exit_user_error(error)


__all__ = ["HydraUserErrors"]
