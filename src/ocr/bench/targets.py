"""Benchmark of the DB targets: numpy reference vs the numba fast path, on real receipts.

Run: ``python -m ocr.bench.targets /work/shared/datasets/sroie/val --size 1024``.
Single-threaded on purpose (numba kernels are serial; cv2 is pinned to one thread), timings are
per image, the median over ``repeats`` after an untimed warm-up that compiles/loads the kernels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocr.targets.db_targets import make_db_targets
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams
from ocr.targets.reference import make_db_targets_reference

Item = tuple[tuple[int, int], list[np.ndarray], list[bool]]
# Hook for a target cache: called with one item, it should look the targets up (a hit).
CacheLookup = Callable[[tuple[int, int], list[np.ndarray], list[bool]], object]


def load_sroie_items(root: str | Path, size: int) -> list[Item]:
    """SROIE-style ``root/images/*.jpg`` + ``root/gt/*.txt`` as bench items scaled to longest side ``size``.

    Only image headers are read (PIL opens lazily). Each gt line is ``x1,y1,...,x4,y4,transcript``
    where the transcript may contain commas; ``###`` transcripts are ignore regions.
    """
    root = Path(root)
    items: list[Item] = []
    for image_path in sorted((root / "images").glob("*.jpg")):
        gt_path = root / "gt" / f"{image_path.stem}.txt"
        if not gt_path.exists():
            continue
        with Image.open(image_path) as im:
            width, height = im.size
        scale = size / max(width, height)
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
        polygons: list[np.ndarray] = []
        ignore: list[bool] = []
        for line in gt_path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
            fields = line.strip().split(",", 8)
            if len(fields) < 8:
                continue
            try:
                coords = [int(float(v)) for v in fields[:8]]
            except ValueError:
                continue
            polygons.append((np.array(coords, dtype=np.float32).reshape(4, 2) * scale).astype(np.float32))
            ignore.append(len(fields) > 8 and fields[8].strip() == "###")
        items.append((shape, polygons, ignore))
    return items


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def _identical(a: DBTargets, b: DBTargets) -> bool:
    return a.ignored_count == b.ignored_count and all(
        np.array_equal(x, y) for x, y in zip(a.maps(), b.maps(), strict=True)
    )


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
            identical += _identical(ref, fast)
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("root", help="folder with images/*.jpg and gt/*.txt (SROIE layout)")
    parser.add_argument("--size", type=int, nargs="+", default=[640, 1024], help="longest image side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    args = parser.parse_args(argv)
    for size in args.size:
        items = load_sroie_items(args.root, size)
        if args.limit:
            items = items[: args.limit]
        print(json.dumps({"size": size, **bench_targets(items, repeats=args.repeats)}))


if __name__ == "__main__":
    main()
