"""``DBCollateFN``: builds the DB targets for each sample and stacks the batch.

It runs inside the DataLoader workers, so target generation (and its cache lookups) is parallel
to the training step, and the time it takes is measured here and carried back with the batch.

Skip markers (unusable samples, see ``ReceiptDataset.__getitem__``) are dropped here and counted as
``skipped_samples`` + ``skipped_<reason>``; problems a reader fixed or dropped per polygon
(``meta["issues"]``) are counted too. ``perf["issues"]`` keeps where the first few occurred.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ocr.data.datasets.base import is_skipped
from ocr.targets.cache import warm_up_kernels
from ocr.targets.db_targets import DBTargets, make_db_targets
from ocr.targets.params import DBTargetParams


class TargetCache(Protocol):
    """The part of :class:`ocr.targets.cache.PolygonCache` the collate function needs."""

    def lookup(
        self,
        polygons: Sequence[np.ndarray],
        ignore: Sequence[bool],
        shape: tuple[int, int],
        params: DBTargetParams,
        out: DBTargets | None = None,
    ) -> tuple[Any, DBTargets | None]: ...

    def store(self, key: Any, targets: DBTargets) -> None: ...


def stack_images(images: list[Any]) -> tuple[torch.Tensor, list[float]]:
    """``torch.stack`` of CHW images, and the seconds spent writing deferred ones.

    Images are uint8 (normalised later, on the device: ``TransformConfig.normalize_on_device``) or
    float32 (normalised on the CPU); a batch holds one dtype. A deferred image (``write_into(array)``:
    a whole-sample cache hit, see ``ocr.targets.sample_cache.CachedImage``) is copied straight into
    its batch slot.
    """
    seconds = [0.0] * len(images)
    if not images:
        return torch.zeros(0, 3, 1, 1), seconds
    first = images[0]
    shape = (len(images), *first.shape)
    # numpy asks for huge pages (madvise): a fresh batch faults in ~2x faster than with torch.empty
    out = torch.from_numpy(np.empty(shape, _NUMPY_DTYPES[first.dtype]))
    for i, image in enumerate(images):
        if tuple(image.shape) != tuple(out.shape[1:]):
            raise RuntimeError(f"batch images differ in size: {tuple(image.shape)}, {tuple(first.shape)}")
        if image.dtype != out.dtype:
            raise RuntimeError(f"batch images differ in dtype: {image.dtype}, {out.dtype}")
        if isinstance(image, torch.Tensor):
            out[i].copy_(image)
        else:
            t0 = time.perf_counter()
            image.write_into(out[i].numpy())
            seconds[i] = time.perf_counter() - t0
    return out, seconds


_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.float32: np.float32}


ISSUE_EXAMPLES = 5  # locations kept per counter and batch, for the data-quality warning


def count_issues(markers: list[dict[str, Any]], samples: list[dict[str, Any]]) -> dict[str, list[str]]:
    """counter -> locations, for skipped samples and for the readers' per-polygon fixes and drops."""
    issues: dict[str, list[str]] = {"skipped_samples": [m["skipped"]["where"] for m in markers]}
    for marker in markers:
        issues.setdefault(f"skipped_{marker['skipped']['reason']}", []).append(marker["skipped"]["where"])
    for sample in samples:
        for counter, where in (sample["meta"].get("issues") or {}).items():
            issues.setdefault(counter, []).extend(where)
    return issues


TARGET_MAPS = ("prob_maps", "prob_masks", "thresh_maps", "thresh_masks")
EVAL_MAPS = ("prob_maps", "prob_masks")  # the evaluation loss needs no threshold branch
BINARY_MAPS = frozenset({"prob_maps", "prob_masks", "thresh_masks"})


class DBCollateFN:
    """Collate for DBNet: images, the target maps, and per-sample metadata.

    ``use_cache`` must only be true when the transform is deterministic: keys are taken from the
    transformed polygons, and random augmentation would make every key new (and every insert waste).

    ``maps`` names the maps the batch carries (all four for training, the probability map and its
    mask for evaluation). The three binary maps travel as uint8 (exact: they hold only 0 and 1),
    a quarter of the bytes a worker copies to shared memory and the trainer copies to the device;
    the loss casts them back to float. Images travel as uint8 too (``normalize_on_device``), and
    ``ReceiptDataModule.on_after_batch_transfer`` normalises them on the device.
    """

    def __init__(
        self,
        params: DBTargetParams | None = None,
        with_targets: bool = True,
        cache: TargetCache | None = None,
        use_cache: bool = False,
        maps: Sequence[str] = TARGET_MAPS,
    ) -> None:
        unknown = set(maps) - set(TARGET_MAPS)
        if unknown:
            raise ValueError(f"unknown target maps {sorted(unknown)}; choose from {TARGET_MAPS}")
        self.params = params or DBTargetParams()
        self.with_targets = with_targets
        self.cache = cache
        self.use_cache = use_cache and cache is not None
        self.maps = tuple(m for m in TARGET_MAPS if m in maps)
        self._work: DBTargets | None = None
        if with_targets:  # load the numba kernels here, before the DataLoader forks its workers
            warm_up_kernels()

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        start = time.perf_counter()
        markers = [s for s in samples if is_skipped(s)]
        samples = [s for s in samples if s is not None and not is_skipped(s)]
        inside: list[float] = []
        images, placed = stack_images([s["image"] for s in samples])
        batch: dict[str, Any] = {
            "images": images,
            "polygons": [s["polygons"] for s in samples],
            "ignore": [s["ignore"] for s in samples],
            "meta": [s["meta"] for s in samples],
            "index": [s.get("index", -1) for s in samples],
        }
        # Worker-side measurements travel with the batch: per-sample stage times and counters.
        times: dict[str, list[float]] = {
            "decode": [s["perf"].get("decode", 0.0) for s in samples],
            # (+ writing deferred images into their batch slots, done while stacking)
            "transform": [s["perf"].get("transform", 0.0) + placed[i] for i, s in enumerate(samples)],
        }
        for cache in ("sample_cache", "decoded_cache"):  # the sample / decoded-image caches' read+store time
            if any(cache in s["perf"] for s in samples):
                times[cache] = [s["perf"].get(cache, 0.0) for s in samples]
        counters = {"samples": len(samples), "cache_hits": 0, "cache_misses": 0, "ignored_polygons": 0}
        counters["targets_computed"] = 0
        for sample in samples:  # per-sample counters, e.g. sample_cache_hits
            for name, value in (sample["perf"].get("counters") or {}).items():
                counters[name] = counters.get(name, 0) + int(value)
        issues = count_issues(markers, samples)
        counters.update({name: len(where) for name, where in issues.items()})
        if self.with_targets:
            inside = self._add_targets(samples, images.shape[-2:], batch, counters)
            # + what the whole-sample cache spent on this sample's maps before the collate
            times["targets"] = [
                t + s["perf"].get("targets", 0.0) for t, s in zip(inside, samples, strict=True)
            ]
        # "collate" is the stacking overhead alone; target time is its own stage.
        times["collate"] = [time.perf_counter() - start - sum(inside) - sum(placed)]
        batch["perf"] = {
            "times": times,
            "counters": counters,
            "issues": {name: where[:ISSUE_EXAMPLES] for name, where in issues.items() if where},
            "worker_pid": os.getpid(),
        }
        return batch

    def _work_buffers(self, shape: tuple[int, int]) -> DBTargets:
        """Per-process float32 scratch maps, reused sample after sample (their content is copied out)."""
        if self._work is None or not self._work.fits(shape):
            self._work = DBTargets.empty(shape)
        return self._work

    def _add_targets(
        self, samples: list[dict[str, Any]], hw: torch.Size, batch: dict[str, Any], counters: dict[str, int]
    ) -> list[float]:
        h, w = int(hw[0]), int(hw[1])
        n = len(samples)
        durations: list[float] = []
        maps = {k: np.empty((n, h, w), np.uint8 if k in BINARY_MAPS else np.float32) for k in self.maps}
        work = self._work_buffers((h, w))
        for i, sample in enumerate(samples):
            t0 = time.perf_counter()
            provided = sample.get("eval_maps")
            if provided is not None and all(name in provided for name in maps):
                # the whole-sample cache brought this sample's maps (and counted them)
                for name, array in maps.items():
                    if hasattr(provided, "write_into"):
                        provided.write_into(name, array[i])  # still bit-packed: unpack into the slot
                    else:
                        array[i] = provided[name]
                counters["ignored_polygons"] += provided["ignored"]
                durations.append(time.perf_counter() - t0)
                continue
            targets: DBTargets | None = None
            key: Any = None
            # The float32 threshold map is written straight into its batch slot; the rest into scratch.
            out = DBTargets(
                work.prob_map,
                work.prob_mask,
                maps["thresh_maps"][i] if "thresh_maps" in maps else work.thresh_map,
                work.thresh_mask,
            )
            if self.use_cache and self.cache is not None:  # a hit is decoded straight into ``out``
                key, targets = self.cache.lookup(
                    sample["polygons"], sample["ignore"], (h, w), self.params, out=out
                )
                counters["cache_hits" if targets is not None else "cache_misses"] += 1
            if targets is None:
                targets = make_db_targets(sample["polygons"], sample["ignore"], (h, w), self.params, out=out)
                counters["targets_computed"] += 1
                if key is not None and self.cache is not None:
                    self.cache.store(key, targets)
            counters["ignored_polygons"] += targets.ignored_count
            computed = {
                "prob_maps": targets.prob_map,
                "prob_masks": targets.prob_mask,
                "thresh_maps": targets.thresh_map,
                "thresh_masks": targets.thresh_mask,
            }
            for name, array in maps.items():
                if not np.shares_memory(computed[name], array[i]):
                    array[i] = computed[name]  # float32 0/1 -> uint8 for the binary maps
            durations.append(time.perf_counter() - t0)
        for name, array in maps.items():
            batch[name] = torch.from_numpy(array)
        return durations
