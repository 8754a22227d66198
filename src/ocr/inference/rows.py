"""Predict rows in input order: each released once it and every earlier image are done.

The in-process path finishes a row in its own step; the evaluator pool finishes it some images
later. Either way the writer sees one stream, in dataset index order, unreadable images included
in their place, so the CSV does not depend on the path or the pool's timing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Row:
    """One image's row; ``unreadable`` rows are empty and named by the writer from ``index``."""

    index: int
    name: str | None = None
    path: str | None = None
    unreadable: bool = False
    done: bool = False
    polygons: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def finish(self, polygons: Sequence[np.ndarray], scores: Sequence[float]) -> None:
        self.polygons, self.scores, self.done = list(polygons), list(scores), True

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "path": self.path,
            "unreadable": self.unreadable,
            "polygons": self.polygons,
            "scores": self.scores,
        }


class OrderedRows:
    """A queue of rows in input order; ``waiting`` maps pool seqs to the rows they will finish."""

    def __init__(self) -> None:
        self._queue: deque[Row] = deque()
        self.waiting: dict[int, Row] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def add_batch(self, rows: Iterable[Row]) -> None:
        # Batches come in input order (a sequential sampler); within one, readable and unreadable
        # images are separated by the collate function, so put them back by dataset index.
        self._queue.extend(sorted(rows, key=lambda row: row.index))

    def finish(self, results: Iterable[tuple[int, Sequence[np.ndarray], Sequence[float]]]) -> None:
        """Pool results ``(seq, polygons, scores)`` for rows queued with those seqs."""
        for seq, polygons, scores in results:
            self.waiting.pop(seq).finish(polygons, scores)

    def release(self) -> list[dict[str, Any]]:
        """Every leading row that is done (unreadable rows are done from the start)."""
        out = []
        while self._queue and (self._queue[0].done or self._queue[0].unreadable):
            out.append(self._queue.popleft().as_dict())
        return out


__all__ = ["OrderedRows", "Row"]
