"""The hook a model uses to mark its own stages (post-processing, metric update).

Models hold a :class:`NullStageTimer` by default: a shared no-op, so an unprofiled run pays one
attribute lookup and an empty context manager per stage, nothing more.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol


class StageTimer(Protocol):
    def __call__(self, stage: str) -> AbstractContextManager[object]: ...


_NULL = nullcontext()


class NullStageTimer:
    def __call__(self, stage: str) -> AbstractContextManager[object]:
        return _NULL
