"""The children's PSS readings are paced so that they take at most ``pss_budget`` of the run."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ocr.callbacks.performance_profiler import PerformanceProfilerCallback
from ocr.perf.clock import EpochRecord


def _readings(callback: PerformanceProfilerCallback, phase: str, epochs: int) -> list[bool]:
    """Whether each of ``epochs`` back-to-back epoch ends read the children's PSS."""
    return [
        "workers_pss_mb" in callback._epoch_memory(EpochRecord(phase, epoch, time.perf_counter()))
        for epoch in range(epochs)
    ]


@pytest.fixture(scope="module")
def child() -> object:
    # a real child process: the readings walk its page tables
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_small_budget_reads_the_first_epoch_end_then_waits(child: object) -> None:
    callback = PerformanceProfilerCallback(summary_file=None, pss_budget=1e-6)
    assert _readings(callback, "validate", 3) == [True, False, False]


def test_the_whole_budget_reads_every_epoch_end_of_its_phases(child: object) -> None:
    callback = PerformanceProfilerCallback(summary_file=None, pss_budget=1.0)
    assert _readings(callback, "validate", 3) == [True, True, True]
    assert _readings(callback, "train", 2) == [False, False]  # not a pss phase


@pytest.mark.parametrize("budget", [0.0, -0.5, 1.5])
def test_a_budget_outside_0_to_1_is_refused(budget: float) -> None:
    with pytest.raises(ValueError, match="pss_budget"):
        PerformanceProfilerCallback(summary_file=None, pss_budget=budget)
