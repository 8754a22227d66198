"""The records data travels in: :class:`TextSample` (what every reader produces, so transforms and
targets never care where data came from), :class:`Sample` or :class:`SkipMarker` (what a dataset
yields) and :class:`Batch` (what ``DBCollateFN`` makes of them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict, final

import numpy as np
import torch


@dataclass
class TextSample:
    """One image with its text-line polygons.

    ``image`` is HxWx3 uint8 RGB. ``polygons`` are float32 arrays of shape (N, 2), N >= 3, in the
    image's pixel coordinates. ``ignore`` marks "don't care" regions (e.g. the ``###`` transcript):
    they are masked out of the loss and the metric instead of being dropped.
    """

    image: np.ndarray
    polygons: list[np.ndarray]
    texts: list[str]
    ignore: list[bool]
    name: str
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.polygons) == len(self.texts) == len(self.ignore)):
            raise ValueError(
                f"{self.name}: polygons ({len(self.polygons)}), texts ({len(self.texts)}) and "
                f"ignore ({len(self.ignore)}) must have the same length"
            )


# -- what the datasets yield and the collate returns ---------------------------------------------
class SamplePerf(TypedDict, total=False):
    """Seconds a sample spent in each worker-side stage, and its counters (e.g. cache hits)."""

    decode: float
    transform: float
    sample_identity: float  # CachedSampleDataset: computing the key
    sample_cache: float  # CachedSampleDataset: reading or storing the entry
    decoded_cache: float  # DecodedImageDataset: reading or storing the entry
    counters: dict[str, int]


class DeferredImage(Protocol):
    """A uint8 CHW image written straight into its batch slot (a whole-sample cache hit,
    :class:`ocr.data.sample_cache.CachedImage`) instead of a tensor ``torch.stack`` would copy."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def write_into(self, out: np.ndarray) -> None: ...

    def tensor(self) -> torch.Tensor: ...


def as_tensor(image: torch.Tensor | DeferredImage) -> torch.Tensor:
    return image if isinstance(image, torch.Tensor) else image.tensor()


def image_hw(image: torch.Tensor | DeferredImage) -> tuple[int, int]:
    """(H, W) of a CHW image."""
    return int(image.shape[-2]), int(image.shape[-1])


@final
class Sample(TypedDict):
    """One transformed sample, as ``ReceiptDataset.__getitem__`` returns it to the collate."""

    image: torch.Tensor | DeferredImage  # uint8 CHW, normalised later on the device
    polygons: list[np.ndarray]  # in the transformed image's pixels
    ignore: list[bool]
    # name, orig_size, scale, input_size, gt_polygons/gt_texts/gt_ignore, the reader's own keys
    # (path, gt_path) and issues (counter -> locations of per-polygon fixes and drops)
    meta: dict[str, Any]
    perf: SamplePerf
    index: NotRequired[int]  # the dataset index, set by ``__getitem__``


class SkipReason(TypedDict):
    reason: str  # counted as skipped_<reason>
    where: str  # the file (or file:line) to name in the data-quality warning
    message: str


@final
class SkipMarker(TypedDict):
    """What ``__getitem__`` returns for an unusable sample: small, picklable, and never a tensor."""

    skipped: SkipReason
    index: int
    perf: SamplePerf


#: What a dataset yields; ``"skipped" in item`` tells the two apart (both are final, so mypy narrows).
Item = Sample | SkipMarker


MapName = Literal["prob_maps", "prob_masks", "thresh_maps", "thresh_masks"]


class BatchPerf(TypedDict):
    """Worker-side measurements carried back with the batch (read by the profiler and the
    data-quality callback): per-sample stage times, counters, and where the first issues were."""

    times: dict[str, list[float]]
    counters: dict[str, int]
    issues: dict[str, list[str]]
    worker_pid: int


class Batch(TypedDict):
    """What ``DBCollateFN`` returns. The target maps are (B, H, W): the float32 threshold map,
    the binary maps as uint8; training carries all four, evaluation the probability map and mask,
    predict none."""

    images: torch.Tensor  # (B, 3, H, W) uint8 until ``on_after_batch_transfer`` normalises it
    polygons: list[list[np.ndarray]]
    ignore: list[list[bool]]
    meta: list[dict[str, Any]]
    index: list[int]
    skipped_index: list[int]  # dataset indices of the unusable samples: predict writes a row each
    perf: BatchPerf
    prob_maps: NotRequired[torch.Tensor]
    prob_masks: NotRequired[torch.Tensor]
    thresh_maps: NotRequired[torch.Tensor]
    thresh_masks: NotRequired[torch.Tensor]
