"""Fixtures of the performance suite and its end-of-session table (``last_run.json``).

``--baseline`` and ``--ci`` are registered by the root ``tests/conftest.py``: options added in a
test module or a nested conftest loaded late are not registered in time, and pytest would stop on
"unrecognized arguments" (the failure this suite replaces).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.performance._measure import (
    BASELINE,
    Session,
    last_run_path,
    load_thresholds,
    new_workdir,
)

_SESSION: list[Session] = []


@pytest.fixture(scope="session")
def perf(request: pytest.FixtureRequest) -> Iterator[Session]:
    """The session's measurements and recorded checks."""
    option = request.config.getoption("--baseline")
    baseline = Path(option) if option else None
    if baseline is not None and not baseline.is_file():
        raise pytest.UsageError(f"--baseline {baseline}: no such file (the committed one is {BASELINE})")
    workdir = new_workdir()
    session = Session(load_thresholds(), bool(request.config.getoption("--ci")), baseline, workdir)
    _SESSION.append(session)
    yield session
    _write_report(session)
    shutil.rmtree(workdir, ignore_errors=True)


def _write_report(session: Session) -> None:
    """last_run.json (checks + figures), and the current run as a report JSON beside it."""
    if not session.checks:
        return
    path = last_run_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(session.document(), indent=1, default=str))
    if session.trainer_run is not None:
        from ocr.bench.baseline import write_baseline

        report = path.with_name(f"{path.stem}_report.json")
        run = session.trainer_run
        measured = sorted(session.measured)
        write_baseline(
            report, run.run_dir, session.figures, session.settings, measured, "perf-suite current run"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _SESSION or not _SESSION[-1].checks:
        return
    session = _SESSION[-1]
    terminalreporter.section("performance suite: checks, thresholds, measured figures")
    for line in session.table():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {last_run_path()})")
