"""Output a person can read: log records and warnings on stderr, each on its own line above the
progress bar; Lightning's tips, its duplicate handler and known third-party deprecations gone."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from tqdm import tqdm

from ocr.console import ConsoleHandler, configure_console
from tests.helpers import compose_config


def test_a_warning_during_a_progress_bar_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    logger = logging.getLogger("ocr.test_console")
    logger.propagate = False
    handler = ConsoleHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s] - %(message)s"))
    logger.addHandler(handler)
    try:
        with tqdm(total=4, file=sys.stderr, ascii=True, mininterval=0, desc="epoch") as bar:
            bar.update(2)
            logger.warning("data quality (train, epoch 0): skipped_samples=1 [a.jpg]")
            bar.update(2)
    finally:
        logger.removeHandler(handler)
    lines = [part for line in stderr.getvalue().split("\n") for part in line.split("\r")]
    assert "[WARNING] - data quality (train, epoch 0): skipped_samples=1 [a.jpg]" in lines
    assert any(line.startswith("epoch: 100%") for line in lines), "the bar is redrawn below"


def test_lightning_noise_is_removed_and_our_warnings_kept(caplog: pytest.LogCaptureFixture) -> None:
    import lightning  # noqa: F401  (adds Lightning's own console handler)

    configure_console()
    assert not [h for h in logging.getLogger("lightning").handlers if type(h) is logging.StreamHandler]
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO):
        rank_zero.info("💡 Tip: For seamless cloud logging, try installing [litlogger]")
        rank_zero.info("GPU available: False, used: False")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["GPU available: False, used: False"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        configure_console()  # after simplefilter: its ignore rule comes first
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", DeprecationWarning, stacklevel=1
        )
        warnings.warn(
            "`training_step` returned `None`. If this was on purpose, ignore this warning...", stacklevel=1
        )
        warnings.warn("ours: 3 receipts have no gt file", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["ours: 3 receipts have no gt file"]


def test_tasks_log_through_the_console_handler_and_answer_user_errors(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path)
    assert cfg.hydra.job_logging.handlers.console["class"] == "ocr.console.ConsoleHandler"
    assert cfg.hydra.callbacks.user_errors._target_ == "ocr.tasks.hydra_callbacks.HydraUserErrors"


def test_lightning_imported_before_hydra_logging_still_logs_through_it() -> None:
    """``ocr predict`` imports Lightning at module import, before Hydra sets up logging: Lightning
    then adds raw stderr handlers and stops propagating. The job-start callback undoes that, so
    its records get our format, our handler (above the bar) and the run's log file."""
    code = (
        "import io, logging\n"
        "import lightning  # no root handler yet: lightning.pytorch/.fabric print raw, propagate=False\n"
        "stream = io.StringIO()\n"
        "root = logging.getLogger()\n"
        "handler = logging.StreamHandler(stream)\n"
        "handler.setFormatter(logging.Formatter('[%(name)s] %(message)s'))\n"
        "root.addHandler(handler)  # what Hydra's configure_log does\n"
        "from ocr.tasks.hydra_callbacks import HydraUserErrors\n"
        "HydraUserErrors().on_job_start(config=None)\n"
        "logging.getLogger('lightning.fabric.utilities.seed').info('Seed set to 42')\n"
        "print(repr(stream.getvalue()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == repr("[lightning.fabric.utilities.seed] Seed set to 42\n")
    assert "Seed set to 42" not in out.stderr, "printed once, by our handler only"
