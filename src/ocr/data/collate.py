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
from typing import Literal

import numpy as np
import torch

from ocr.data.sample import (
    Batch,
    BatchPerf,
    DeferredImage,
    Item,
    MapName,
    Sample,
    SkipMarker,
    as_tensor,
)
from ocr.targets.cache import MAP_NAMES, PolygonCache, warm_up_kernels
from ocr.targets.db_targets import DBTargets, make_db_targets
from ocr.targets.params import DBTargetParams


def stack_images(images: Sequence[torch.Tensor | DeferredImage]) -> tuple[torch.Tensor, list[float]]:
    """``torch.stack`` of uint8 CHW images, and the seconds spent writing deferred ones.

    Images are normalised later, on the device. A :class:`~ocr.data.sample.DeferredImage` (a
    whole-sample cache hit) is written straight into its batch slot.
    """
    seconds = [0.0] * len(images)
    if not images:
        return torch.zeros(0, 3, 1, 1), seconds
    first = images[0]
    shape = (len(images), *first.shape)
    # numpy asks for huge pages (madvise): a fresh batch faults in faster than torch.empty's (docs/cache.md)
    out = torch.from_numpy(np.empty(shape, np.uint8))
    for i, image in enumerate(images):
        if tuple(image.shape) != tuple(out.shape[1:]):
            raise RuntimeError(f"batch images differ in size: {tuple(image.shape)}, {tuple(first.shape)}")
        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8:
                raise RuntimeError(
                    f"batch images must be uint8 (normalised on the device), got {image.dtype}"
                )
            out[i].copy_(image)
        else:  # a deferred image is uint8 by construction (its write_into checks the slot)
            t0 = time.perf_counter()
            image.write_into(out[i].numpy())
            seconds[i] = time.perf_counter() - t0
    return out, seconds


def pad_to_common_size(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """Zero-pad CHW tensors at the bottom/right to the largest height and width among them.

    Padding only there keeps the letterbox mapping (original = input / scale) valid for each image.
    """
    if len({tuple(im.shape[-2:]) for im in images}) <= 1:
        return images
    h = max(int(im.shape[-2]) for im in images)
    w = max(int(im.shape[-1]) for im in images)
    padded = []
    for im in images:
        out = torch.zeros((*im.shape[:-2], h, w), dtype=im.dtype)
        out[..., : im.shape[-2], : im.shape[-1]] = im
        padded.append(out)
    return padded


_CACHE_STAGES: tuple[Literal["sample_identity", "sample_cache", "decoded_cache"], ...] = (
    "sample_identity",
    "sample_cache",
    "decoded_cache",
)
ISSUE_EXAMPLES = 5  # locations kept per counter and batch, for the data-quality warning


def count_issues(markers: list[SkipMarker], samples: list[Sample]) -> dict[str, list[str]]:
    """counter -> locations, for skipped samples and for the readers' per-polygon fixes and drops."""
    issues: dict[str, list[str]] = {"skipped_samples": [m["skipped"]["where"] for m in markers]}
    for marker in markers:
        issues.setdefault(f"skipped_{marker['skipped']['reason']}", []).append(marker["skipped"]["where"])
    for sample in samples:
        for counter, where in (sample["meta"].get("issues") or {}).items():
            issues.setdefault(counter, []).extend(where)
    return issues


TARGET_MAPS: tuple[MapName, ...] = ("prob_maps", "prob_masks", "thresh_maps", "thresh_masks")
EVAL_MAPS: tuple[MapName, ...] = ("prob_maps", "prob_masks")  # the evaluation loss needs no threshold branch
BINARY_MAPS = frozenset({"prob_maps", "prob_masks", "thresh_masks"})
# batch key -> DBTargets field (the cache's map names), both in DBTargets.maps() order
_MAP_FIELD: dict[MapName, str] = dict(zip(TARGET_MAPS, MAP_NAMES, strict=True))


class DBCollateFN:
    """Collate for DBNet: images, the target maps, and per-sample metadata.

    ``use_cache`` must only be true when the transform is deterministic: keys are taken from the
    transformed polygons, and random augmentation would make every key new (and every insert waste).

    ``maps`` names the maps the batch carries (all four for training, the probability map and its
    mask for evaluation). The three binary maps travel as uint8 (exact: they hold only 0 and 1),
    a quarter of the bytes a worker copies to shared memory and the trainer copies to the device;
    the loss casts them back to float. Images travel as uint8 too, and
    ``ReceiptDataModule.on_after_batch_transfer`` normalises them on the device.

    Counters: ``target_cache_*`` (this collate's map lookups), ``sample_cache_*`` (brought by the
    samples of a :class:`~ocr.data.sample_cache.CachedSampleDataset`), ``targets_computed``.
    """

    def __init__(
        self,
        params: DBTargetParams | None = None,
        with_targets: bool = True,
        cache: PolygonCache | None = None,
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

    def __call__(self, items: Sequence[Item | None]) -> Batch:
        start = time.perf_counter()
        markers: list[SkipMarker] = []
        samples: list[Sample] = []
        for item in items:
            if item is None:
                continue
            if "skipped" in item:
                markers.append(item)
            else:
                samples.append(item)
        inside: list[float] = []
        raw_images: list[torch.Tensor | DeferredImage] = [s["image"] for s in samples]
        if not self.with_targets:  # predict: images padded to a multiple (not a square) differ in size
            raw_images = list(pad_to_common_size([as_tensor(im) for im in raw_images]))
        images, placed = stack_images(raw_images)
        perf: BatchPerf = {"times": {}, "counters": {}, "issues": {}, "worker_pid": os.getpid()}
        batch: Batch = {
            "images": images,
            "polygons": [s["polygons"] for s in samples],
            "ignore": [s["ignore"] for s in samples],
            "meta": [s["meta"] for s in samples],
            "index": [s.get("index", -1) for s in samples],
            "skipped_index": [m["index"] for m in markers],
            "perf": perf,
        }
        # Worker-side measurements travel with the batch: per-sample stage times and counters.
        times: dict[str, list[float]] = {
            "decode": [s["perf"].get("decode", 0.0) for s in samples],
            # (+ writing deferred images into their batch slots, done while stacking)
            "transform": [s["perf"].get("transform", 0.0) + placed[i] for i, s in enumerate(samples)],
        }
        # the sample and decoded-image caches' key and read/store time
        for stage in _CACHE_STAGES:
            if any(stage in s["perf"] for s in samples):
                times[stage] = [s["perf"].get(stage, 0.0) for s in samples]
        counters = {"samples": len(samples), "ignored_polygons": 0, "targets_computed": 0}
        for sample in [*samples, *markers]:  # per-sample counters, e.g. sample_cache_hits
            for name, value in (sample["perf"].get("counters") or {}).items():
                counters[name] = counters.get(name, 0) + int(value)
        issues = count_issues(markers, samples)
        counters.update({name: len(where) for name, where in issues.items()})
        if self.with_targets:
            inside = self._add_targets(samples, images.shape[-2:], batch, counters)
            times["targets"] = inside
            if self.use_cache and self.cache is not None:
                counters.update(self.cache.drain())
        # "collate" is the stacking overhead alone; target time is its own stage.
        times["collate"] = [time.perf_counter() - start - sum(inside) - sum(placed)]
        perf["times"] = times
        perf["counters"] = counters
        perf["issues"] = {name: where[:ISSUE_EXAMPLES] for name, where in issues.items() if where}
        return batch

    def _work_buffers(self, shape: tuple[int, int]) -> DBTargets:
        """Per-process float32 scratch maps, reused sample after sample (their content is copied out)."""
        if self._work is None or not self._work.fits(shape):
            self._work = DBTargets.empty(shape)
        return self._work

    def _add_targets(
        self, samples: list[Sample], hw: torch.Size, batch: Batch, counters: dict[str, int]
    ) -> list[float]:
        h, w = int(hw[0]), int(hw[1])
        n = len(samples)
        durations: list[float] = []
        maps = {k: np.empty((n, h, w), np.uint8 if k in BINARY_MAPS else np.float32) for k in self.maps}
        work = self._work_buffers((h, w))
        for i, sample in enumerate(samples):
            t0 = time.perf_counter()
            targets: DBTargets | None = None
            key: str | None = None
            # The batch slot of each map the batch carries, scratch for the others.
            dest = [maps[n][i] if n in maps else a for n, a in zip(TARGET_MAPS, work.maps(), strict=True)]
            # Computing writes the float32 threshold map straight into its batch slot; the rest into scratch.
            out = DBTargets(work.prob_map, work.prob_mask, dest[2], work.thresh_mask)
            if self.use_cache and self.cache is not None:
                # A hit decodes only the maps the batch carries, straight into its (uint8) slots.
                key = self.cache._generate_key(sample["polygons"], (h, w), self.params, sample["ignore"])
                slots = DBTargets(dest[0], dest[1], dest[2], dest[3])
                targets = self.cache.get(key, slots, maps=[_MAP_FIELD[n] for n in maps])
            if targets is None:
                targets = make_db_targets(sample["polygons"], sample["ignore"], (h, w), self.params, out=out)
                counters["targets_computed"] += 1
                if key is not None and self.cache is not None:
                    self.cache.set(key, targets)
            counters["ignored_polygons"] += targets.ignored_count
            computed = dict(zip(TARGET_MAPS, targets.maps(), strict=True))
            for name, array in maps.items():
                if not np.shares_memory(computed[name], array[i]):
                    array[i] = computed[name]  # float32 0/1 -> uint8 for the binary maps
            durations.append(time.perf_counter() - t0)
        for name, array in maps.items():
            batch[name] = torch.from_numpy(array)
        return durations
