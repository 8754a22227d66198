"""Base class every reader derives from: list records, load one :class:`TextSample`.

A data config selects its reader by class (``data.reader._target_``, see ``configs/data``); the
data module builds one per split with that split's root and arguments.

``__getitem__`` measures decode and transform time inside the worker and returns it with the
sample, so the profiler can attribute worker time without any cross-process channel.

A sample whose input is unusable (``SampleError``, an undecodable image, an unreadable file) comes
back as a skip marker (:func:`skip_marker`) instead of an exception, so one bad file never kills
an epoch: ``DBCollateFN`` drops the marker and counts ``skipped_<reason>``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

from torch.utils.data import Dataset

from ocr.data.datasets.listing import ListingIssue
from ocr.data.image_io import DEFAULT_MAX_PIXELS, ImageReadError
from ocr.data.sample import Item, Sample, SkipMarker, TextSample
from ocr.errors import SampleError

log = logging.getLogger(__name__)


def skip_marker(index: int, reason: str, where: str, message: str, seconds: float = 0.0) -> SkipMarker:
    return {
        "skipped": {"reason": reason, "where": where, "message": message},
        "index": index,
        "perf": {"decode": seconds},
    }


class ReceiptDataset(Dataset[Item]):
    """A split of receipts. Subclasses implement ``__len__``, ``load`` and ``identity``."""

    #: False for readers that make their own data (synthetic): they need no ``data.root``.
    needs_root: ClassVar[bool] = True
    #: Pixel budget of one decoded image (``data.max_image_pixels``; the data module sets it).
    max_image_pixels: int | None = DEFAULT_MAX_PIXELS

    def __init__(self) -> None:
        self.transform: Callable[[TextSample], Sample] | None = None
        #: Files the listing could not use; indices ``[samples, samples + len)`` (see ``listing``).
        self.listing_issues: list[ListingIssue] = []

    def listed_issue(self, index: int, samples: int | None = None) -> ListingIssue | None:
        """The listing issue at ``index`` when it is past the real samples (they come first), else None.

        ``samples``: how many real samples there are; by default ``len(self)`` less the issues, which
        holds for a reader whose ``__len__`` counts both (as the built-in ones do).
        """
        if samples is None:
            samples = len(self) - len(self.listing_issues)
        return self.listing_issues[index - samples] if index >= samples else None

    def raise_listed(self, index: int) -> None:
        """What ``load`` does first: a listing entry raises its issue's :class:`SampleError`."""
        issue = self.listed_issue(index)
        if issue is not None:
            raise issue.error()

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> TextSample:  # pragma: no cover - abstract
        """Decode one sample. Raise ``SampleError`` on unusable input; ``__getitem__`` skips it."""
        raise NotImplementedError

    def identity(self, index: int) -> tuple[Any, ...]:
        """What makes this sample's raw content unique (path, size, mtime...), for cache keys."""
        return (type(self).__name__, index)

    def describe(self, index: int) -> str:
        """A short name for reports: the first file named by ``identity``, else ``Class[index]``."""
        try:
            files = [p for p in self.identity(index) if isinstance(p, str) and os.sep in p]
        except OSError:  # identity may stat a file that is gone
            files = []
        return os.path.basename(files[0]) if files else f"{type(self).__name__}[{index}]"

    def prepare(self) -> None:
        """One-time work before loading (e.g. generating synthetic data); runs on one process per node."""

    def __getitem__(self, index: int) -> Item:
        if self.transform is None:
            raise RuntimeError(f"{type(self).__name__} has no transform; the data module sets one")
        start = time.perf_counter()
        try:
            sample = self.load(index)
        except (SampleError, ImageReadError, OSError) as exc:  # OSError: e.g. a file removed mid-run
            return self._skip(index, exc, time.perf_counter() - start)
        decoded = time.perf_counter()
        out = self.transform(sample)
        out["perf"]["decode"] = decoded - start
        out["index"] = index
        return out

    def _skip(self, index: int, exc: Exception, seconds: float) -> SkipMarker:
        if isinstance(exc, SampleError):
            reason, where = exc.reason, exc.where
        else:
            reason = exc.reason if isinstance(exc, ImageReadError) else "unreadable_file"
            where = self.describe(index)
        log.debug("skipping sample %d (%s): %s", index, reason, exc)
        return skip_marker(index, reason, where, str(exc), seconds)
