"""Benchmark of the DB targets: numpy reference vs the numba fast path, on real receipts.

Run: ``ocr bench targets --data /work/shared/datasets/sroie/val --size 1024``.
Single-threaded on purpose (numba kernels are serial; cv2 is pinned to one thread), timings are
per image, the median over ``repeats`` after an untimed warm-up that compiles/loads the kernels.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocr.errors import SampleError
from ocr.targets.db_targets import make_db_targets
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.reference import make_db_targets_reference

Item = tuple[tuple[int, int], list[np.ndarray], list[bool]]
# Hook for a target cache: called with one item, it should look the targets up (a hit).
CacheLookup = Callable[[tuple[int, int], list[np.ndarray], list[bool]], object]


def load_sroie_items(root: str | Path, size: int) -> list[Item]:
    """A SROIE split as bench items scaled to longest side ``size``: the reader's clean polygons.

    Only image headers are read (PIL opens lazily); receipts without a gt file are left out.
    """
    from ocr.data.datasets.sroie import SROIEDataset

    dataset = SROIEDataset(root)
    items: list[Item] = []
    for index, image_path in enumerate(dataset.image_paths):
        with Image.open(image_path) as im:
            width, height = im.size
        try:
            annotations = dataset.annotations(index, (height, width))
        except SampleError:
            continue
        scale = size / max(width, height)
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
        polygons = [(polygon * scale).astype(np.float32) for polygon in annotations.polygons]
        items.append((shape, polygons, list(annotations.ignore)))
    return items


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays (NaN and -0.0 included), not merely ``==``: the one identity check."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def same_targets(a: DBTargets, b: DBTargets) -> bool:
    """Bit-identical target maps with the same ignore count."""
    return a.ignored_count == b.ignored_count and all(
        same_bits(x, y) for x, y in zip(a.maps(), b.maps(), strict=True)
    )


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def bench_targets(
    items: Sequence[Item],
    repeats: int = 3,
    params: DBTargetParams | None = None,
    cache_lookup: CacheLookup | None = None,
    reuse_buffers: bool = True,
) -> dict[str, float | int]:
    """Time reference / fast "db" / fast "exact" per image and check fast "db" is bit-identical.

    Milliseconds are the mean over images of each image's median. ``reuse_buffers`` times the fast
    path as a collate function runs it (one ``out`` reused per image size). ``cache_lookup``, when
    given, is timed the same way and reported as ``cache_hit_ms``.
    """
    base = params or DBTargetParams()
    db, exact = _with_formula(base, "db"), _with_formula(base, "exact")
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        if items:  # warm-up: numba compile / cache load, first-touch allocations
            shape, polys, ign = items[0]
            make_db_targets(polys, ign, shape, db)
            make_db_targets(polys, ign, shape, exact)
        ref_ms: list[float] = []
        db_ms: list[float] = []
        exact_ms: list[float] = []
        cache_ms: list[float] = []
        identical = 0
        buffers: dict[tuple[int, int], DBTargets] = {}
        for shape, polys, ign in items:
            ref = make_db_targets_reference(polys, ign, shape, db)
            out_db = buffers.get(shape) if reuse_buffers else None
            fast = make_db_targets(polys, ign, shape, db, out=out_db)
            identical += same_targets(ref, fast)
            if reuse_buffers:
                buffers[shape] = fast

            out = buffers.get(shape) if reuse_buffers else None
            ref_ms.append(_median_ms(partial(make_db_targets_reference, polys, ign, shape, db), repeats))
            db_ms.append(_median_ms(partial(make_db_targets, polys, ign, shape, db, out=out), repeats))
            exact_ms.append(_median_ms(partial(make_db_targets, polys, ign, shape, exact, out=out), repeats))
            if cache_lookup is not None:
                cache_ms.append(_median_ms(partial(cache_lookup, shape, polys, ign), repeats))
    finally:
        cv2.setNumThreads(previous_threads)

    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else float("nan")

    result: dict[str, float | int] = {
        "images": len(items),
        "reference_ms": mean(ref_ms),
        "fast_db_ms": mean(db_ms),
        "fast_exact_ms": mean(exact_ms),
        "speedup_db": mean(ref_ms) / mean(db_ms) if db_ms else float("nan"),
        "speedup_exact": mean(ref_ms) / mean(exact_ms) if exact_ms else float("nan"),
        "db_identical_images": identical,
    }
    if cache_lookup is not None:
        result["cache_hit_ms"] = mean(cache_ms)
    return result


def _with_formula(params: DBTargetParams, formula: str) -> DBTargetParams:
    return DBTargetParams(
        shrink_ratio=params.shrink_ratio,
        thresh_min=params.thresh_min,
        thresh_max=params.thresh_max,
        min_text_size=params.min_text_size,
        formula=formula,  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def cache_hit_lookup(
    items: Sequence[Item], params: DBTargetParams | None = None
) -> Iterator[tuple[CacheLookup, Callable[[], int]]]:
    """``bench_targets``' ``cache_lookup`` hook: a real :class:`PolygonCache` hit from disk.

    Every item is stored first by one cache; the timed lookups go through a second one with no
    in-process LRU (``max_size=0``), i.e. the path a fresh DataLoader worker or another rank takes:
    key, file read, header + crc check, decode into a reused buffer (as the collate does). The
    second callable counts the items whose hit is bit-identical to a fresh computation.
    """
    from ocr.targets.cache import PolygonCache

    params = params or DBTargetParams()
    root = tempfile.mkdtemp(prefix="ocr-bench-targets-cache-")
    try:
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
    finally:
        shutil.rmtree(root, ignore_errors=True)
