"""``ocr bench targets``: the DB targets' fast path against the numpy reference.

Run: ``ocr bench targets --data ../shared/datasets/sroie/val --size 1024``.

:func:`time_targets` is the one fast-vs-reference timer: this command runs it on real receipts
(with the fast "exact" formula and a :class:`~ocr.targets.cache.PolygonCache` disk hit as extra
arms) and the performance suite (:func:`ocr.bench.baseline.measure_targets`) on its synthetic
ones. Each repeat runs one pass over all images per arm, the arms' order reversed every other
repeat, so drift and load on a shared machine hit every arm of a repeat alike; a speed-up is the
median of the per-repeat ratios. Single-threaded on purpose: the numba kernels are serial and cv2
is pinned to one thread, as in a DataLoader worker.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocr.bench.common import alternate, pinned_threads, timed
from ocr.bench.identity import same_targets
from ocr.bench.split_args import add_split_arguments, checked_split, read_split
from ocr.errors import UserInputError
from ocr.targets.db_targets import make_db_targets
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.reference import make_db_targets_reference

Item = tuple[tuple[int, int], list[np.ndarray], list[bool]]
# Hook for a target cache: called with one item, it should look the targets up (a hit).
CacheLookup = Callable[[tuple[int, int], list[np.ndarray], list[bool]], object]

REFERENCE, FAST_DB, FAST_EXACT, CACHE_HIT = "reference", "fast_db", "fast_exact", "cache_hit"


@dataclass(frozen=True)
class TargetsTiming:
    """What :func:`time_targets` measured.

    ``passes_s``: arm -> seconds of each repeat's pass over all images. ``ratios``: arm -> the
    reference pass over that arm's pass, one per repeat (every arm but the reference).
    """

    images: int
    db_identical: int  # images whose fast "db" maps are bit-identical to the reference's
    passes_s: dict[str, list[float]]
    ratios: dict[str, list[float]]

    def ms_per_image(self, arm: str) -> float:
        return 1e3 * statistics.median(self.passes_s[arm]) / self.images

    def speedup(self, arm: str) -> float:
        return statistics.median(self.ratios[arm])


def time_targets(
    items: Sequence[Item],
    repeats: int,
    exact: bool = False,
    cache_lookup: CacheLookup | None = None,
) -> TargetsTiming:
    """Fast "db" targets vs the reference (bit-identity per image, interleaved passes).

    ``exact`` adds the fast "exact" formula as an arm, ``cache_lookup`` a cache hit per image. The
    fast arms reuse one ``out`` buffer per image size, as the collate function does.
    """
    if not items:
        raise ValueError("time_targets needs at least one item")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    db, exact_params = DBTargetParams(formula="db"), DBTargetParams(formula="exact")
    with pinned_threads(cv2=1):
        buffers: dict[tuple[int, int], DBTargets] = {}
        identical = 0
        for shape, polygons, ignore in items:  # also the warm-up: numba load, first-touch buffers
            ref = make_db_targets_reference(polygons, ignore, shape, db)
            fast = make_db_targets(polygons, ignore, shape, db, out=buffers.get(shape))
            buffers[shape] = fast
            identical += same_targets(ref, fast)

        def reference_pass() -> None:
            for shape, polygons, ignore in items:
                make_db_targets_reference(polygons, ignore, shape, db)

        def fast_pass(formula_params: DBTargetParams) -> Callable[[], None]:
            def run() -> None:
                for shape, polygons, ignore in items:
                    make_db_targets(polygons, ignore, shape, formula_params, out=buffers[shape])

            return run

        arms: dict[str, Callable[[], None]] = {REFERENCE: reference_pass, FAST_DB: fast_pass(db)}
        if exact:
            arms[FAST_EXACT] = fast_pass(exact_params)
            arms[FAST_EXACT]()  # warm-up: the "exact" kernel's load
        if cache_lookup is not None:
            lookup = cache_lookup

            def cache_pass() -> None:
                for shape, polygons, ignore in items:
                    lookup(shape, polygons, ignore)

            arms[CACHE_HIT] = cache_pass
            cache_pass()  # warm-up: the page cache, first-touch buffers
        passes = alternate({name: timed(arm) for name, arm in arms.items()}, repeats)
    ratios = {
        name: [ref_s / arm_s for ref_s, arm_s in zip(passes[REFERENCE], passes[name], strict=True)]
        for name in passes
        if name != REFERENCE
    }
    return TargetsTiming(len(items), identical, passes, ratios)


def load_sroie_items(root: str | Path, size: int) -> list[Item]:
    """A SROIE split as bench items scaled to longest side ``size``: the reader's clean polygons.

    Receipts without a gt file are left out.
    """
    items: list[Item] = []
    for _, (height, width), ann in read_split(root, skip_errors=True):
        scale = size / max(width, height)
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
        polygons = [(polygon * scale).astype(np.float32) for polygon in ann.polygons]
        items.append((shape, polygons, list(ann.ignore)))
    return items


@contextlib.contextmanager
def cache_hit_lookup(items: Sequence[Item]) -> Iterator[tuple[CacheLookup, Callable[[], int]]]:
    """``time_targets``' ``cache_lookup`` hook: a real :class:`PolygonCache` hit from disk.

    Every item is stored first by one cache; the timed lookups go through a second one with no
    in-process LRU (``max_size=0``), i.e. the path a fresh DataLoader worker or another rank takes:
    key, file read, header + crc check, decode into a reused buffer (as the collate does). The
    second callable counts the items whose hit is bit-identical to a fresh computation.
    """
    from ocr.targets.cache import PolygonCache

    params = DBTargetParams()
    with tempfile.TemporaryDirectory(prefix="ocr-bench-targets-cache-", ignore_cleanup_errors=True) as root:
        writer = PolygonCache(max_size=0, cache_dir=root, max_bytes=8 * 1024**3)
        for shape, polygons, ignore in items:
            key = writer._generate_key(polygons, shape, params, ignore)
            writer.set(key, make_db_targets(polygons, ignore, shape, params))
        reader = PolygonCache(max_size=0, cache_dir=root, max_bytes=8 * 1024**3)
        buffers: dict[tuple[int, int], DBTargets] = {}

        def lookup(shape: tuple[int, int], polygons: list[np.ndarray], ignore: list[bool]) -> object:
            out = buffers.setdefault(shape, DBTargets.empty(shape))
            hit = reader.get(reader._generate_key(polygons, shape, params, ignore), out=out)
            if hit is None:
                raise RuntimeError("cache bench: expected a hit")
            return hit

        def identical() -> int:
            count = 0
            for shape, polygons, ignore in items:
                hit = reader.get(reader._generate_key(polygons, shape, params, ignore))
                fresh = make_db_targets(polygons, ignore, shape, params)
                count += hit is not None and same_targets(hit, fresh)
            return count

        yield lookup, identical


add_arguments = add_split_arguments


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = checked_split(args)
    items = load_sroie_items(root, args.size)
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise UserInputError(f"--data {root}: no images with a gt file")
    with cache_hit_lookup(items) as (lookup, check):
        timing = time_targets(items, args.repeats, exact=True, cache_lookup=lookup)
        cache_identical = check()
    return {
        "size": args.size,
        "images": timing.images,
        "repeats": args.repeats,
        "reference_ms": timing.ms_per_image(REFERENCE),
        "fast_db_ms": timing.ms_per_image(FAST_DB),
        "fast_exact_ms": timing.ms_per_image(FAST_EXACT),
        "cache_hit_ms": timing.ms_per_image(CACHE_HIT),
        "speedup_db": timing.speedup(FAST_DB),
        "speedup_exact": timing.speedup(FAST_EXACT),
        "db_identical_images": timing.db_identical,
        "cache_identical_images": cache_identical,
    }
