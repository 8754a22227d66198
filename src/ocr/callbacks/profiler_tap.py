"""The tap the profiler callback puts in front of the trainer's own Lightning profiler.

Timing the DataLoader fetch through Lightning's own profiler actions times the fetch itself,
not the gap between hooks (which would also hold the host-to-device copy).
"""

from __future__ import annotations

from lightning.pytorch.profilers import Profiler

from ocr.perf.clock import StageClock


class TapProfiler(Profiler):
    """Forwards every call to the trainer's own profiler and feeds the stage clock on the way."""

    def __init__(self, inner: Profiler, clock: StageClock) -> None:
        super().__init__()
        self.inner = inner
        self.clock = clock

    def start(self, action_name: str) -> None:
        self.clock.start(action_name)
        self.inner.start(action_name)

    def stop(self, action_name: str) -> None:
        self.inner.stop(action_name)
        self.clock.stop(action_name)

    def summary(self) -> str:
        return self.inner.summary()

    def describe(self) -> None:
        self.inner.describe()

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        self.inner.setup(stage, local_rank, log_dir)

    def teardown(self, stage: str | None) -> None:
        self.inner.teardown(stage)
