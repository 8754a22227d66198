"""Base class every reader derives from: list records, load one :class:`TextSample`.

``__getitem__`` measures decode and transform time inside the worker and returns it with the
sample, so the profiler can attribute worker time without any cross-process channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from torch.utils.data import Dataset

from ocr.data.sample import TextSample

DATASETS: dict[str, type[ReceiptDataset]] = {}

T = TypeVar("T", bound="type[ReceiptDataset]")


def register_dataset(name: str) -> Callable[[T], T]:
    def wrap(cls: T) -> T:
        if name in DATASETS:
            raise ValueError(f"dataset reader {name!r} is already registered by {DATASETS[name].__name__}")
        DATASETS[name] = cls
        return cls

    return wrap


def build_dataset(name: str, **kwargs: Any) -> ReceiptDataset:
    try:
        cls = DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown data reader {name!r}; choose one of: {known}") from None
    return cls(**kwargs)


class ReceiptDataset(Dataset[dict[str, Any]]):
    """A split of receipts. Subclasses implement ``__len__``, ``load`` and ``identity``."""

    def __init__(self) -> None:
        self.transform: Callable[[TextSample], dict[str, Any]] | None = None

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> TextSample:  # pragma: no cover - abstract
        """Decode one sample. Raise on unusable input; the caller decides whether to skip."""
        raise NotImplementedError

    def identity(self, index: int) -> tuple[Any, ...]:
        """What makes this sample's raw content unique (path, size, mtime...), for cache keys."""
        return (type(self).__name__, index)

    def prepare(self) -> None:
        """One-time work before loading (e.g. generating synthetic data); runs on one process per node."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.transform is None:
            raise RuntimeError(f"{type(self).__name__} has no transform; the data module sets one")
        start = time.perf_counter()
        sample = self.load(index)
        decoded = time.perf_counter()
        out = self.transform(sample)
        out["perf"]["decode"] = decoded - start
        out["index"] = index
        return out
