"""``ocr bench eval-work``: the non-model CPU work of validation per image, reference vs fast path.

The workload is a "perfect model" on a real split: each receipt's probability map is its GT
shrink map (the training target, at the network's input size) under a 3x3 box blur, so the
post-processing and metric work is what a good model causes. One thread (OpenCV and torch pinned
to 1), everything in-process. Per repeat each arm processes every image once; the arms alternate
(ABAB, the order flipped every pair) so load on a shared machine hits both; the figures are the
medians over repeats, in CPU ms per image (the thread's CPU time: what the work costs a core,
robust to waiting for a core on a busy machine):

* ``reference``: :func:`ocr.postprocess.reference.reference_quads` (one box at a time), the
  official ``CLEvalMetric.update`` on the whole image (``split_groups=False``) and the IoU metric
  preparing its GT on every update: what validation did before the exact work was made cheaper.
* ``fast``: :class:`~ocr.postprocess.DBPostProcessor` and :class:`~ocr.metrics.DetectionMetrics`
  with its GT cache warm (every epoch after the first); ``fast_cold`` is the first epoch (the GT
  prepared on the way).

Both arms must give the same detections (bit for bit), the same summed CLEval states and the same
IoU counts; the command prints them and fails (exit 1) if they differ.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocr.bench.common import alternate, pinned_threads
from ocr.bench.identity import same_bits
from ocr.bench.split_args import add_split_arguments, checked_split, read_split

STAGES = ("postprocess", "cleval", "iou")
# CPU time of this thread: the work is single-threaded, and on a shared machine the wall clock
# also counts the time the thread waited for a core (figures: docs/eval_exact.md), the CPU time not.
_clock = time.thread_time
CLEVAL_STATES = (
    "det_num_char_gt",
    "det_num_char_det",
    "det_gran_score_recall",
    "det_num_char_tp_recall",
    "det_gran_score_precision",
    "det_num_char_tp_precision",
    "det_num_char_fp",
    "num_splitted",
    "num_merged",
    "num_char_overlapped",
)


@dataclass
class Item:
    """One receipt: its perfect-model map, the letterbox meta and the GT in original pixels."""

    name: str
    prob_map: np.ndarray
    meta: dict[str, Any]
    polygons: list[np.ndarray]
    texts: list[str]
    ignore: list[bool]


def perfect_map(polygons: list[np.ndarray], ignore: list[bool], scale: float, size: int) -> np.ndarray:
    """The GT shrink map of a ``size`` x ``size`` letterboxed input, 3x3 box blur: a perfect model."""
    from ocr.targets.db_targets import make_db_targets

    scaled = [np.asarray(p, dtype=np.float32) * np.float32(scale) for p in polygons]
    targets = make_db_targets(scaled, ignore, (size, size))
    return cv2.blur(targets.prob_map, (3, 3))


def load_items(root: Path, size: int, limit: int = 0) -> list[Item]:
    """A SROIE-layout split as perfect-model items (annotations cleaned as the training reader does)."""
    items = []
    for name, (height, width), ann in itertools.islice(read_split(root), limit if limit > 0 else None):
        scale = size / max(height, width)
        items.append(
            Item(
                name,
                perfect_map(ann.polygons, ann.ignore, scale, size),
                {"orig_size": (height, width), "scale": scale},
                ann.polygons,
                ann.texts,
                ann.ignore,
            )
        )
    return items


Pass = dict[str, float]


def timed_pass(
    items: list[Item], postprocess: Callable[..., Any], cleval: Any, iou: Any, gt_cache: Any = None
) -> tuple[Pass, list[Any]]:
    """Seconds per stage for one pass over ``items``, and its detections. With ``gt_cache`` the
    metrics get each image's prepared GT from it (timed as ``gt_lookup``), else they prepare it."""
    times = dict.fromkeys(STAGES if gt_cache is None else (*STAGES, "gt_lookup"), 0.0)
    detections = []
    for it in items:
        t0 = _clock()
        polys, scores = postprocess(it.prob_map, it.meta)
        t1 = _clock()
        gt = None if gt_cache is None else gt_cache.get(it.polygons, it.texts, it.ignore)
        t2 = _clock()
        cleval.update(polys, it.polygons, it.texts, it.ignore, gt=gt)
        t3 = _clock()
        iou.update(polys, it.polygons, it.ignore, gt=gt)
        t4 = _clock()
        times["postprocess"] += t1 - t0
        if gt_cache is not None:
            times["gt_lookup"] += t2 - t1
        times["cleval"] += t3 - t2
        times["iou"] += t4 - t3
        detections.append((polys, scores))
    return times, detections


def reference_pass(items: list[Item]) -> tuple[Pass, list[Any], Any, Any]:
    """One reference pass with fresh metrics: its seconds per stage, detections and metrics."""
    from ocr.metrics import CLEvalDetectionMetric, IoUDetectionMetric
    from ocr.postprocess import DBPostProcessor
    from ocr.postprocess.reference import reference_quads

    cleval, iou = CLEvalDetectionMetric(split_groups=False), IoUDetectionMetric(gt_cache_size=0)
    times, detections = timed_pass(items, partial(reference_quads, DBPostProcessor()), cleval, iou)
    return times, detections, cleval, iou


def fast_pass(items: list[Item], metrics: Any) -> tuple[Pass, list[Any]]:
    """Seconds per stage for one pass of the fast path through ``metrics`` (its cache as it is)."""
    from ocr.postprocess import DBPostProcessor

    post = DBPostProcessor()
    metrics.reset()
    return timed_pass(items, post, metrics.cleval, metrics.iou, metrics.gt_cache)


def same_detections(a: list[Any], b: list[Any]) -> bool:
    """Same scores, and every detection's polygon bit-identical."""
    for (pa, sa), (pb, sb) in zip(a, b, strict=True):
        if sa != sb or len(pa) != len(pb):
            return False
        if not all(same_bits(np.asarray(x), np.asarray(y)) for x, y in zip(pa, pb, strict=True)):
            return False
    return True


def states(cleval: Any, iou: Any) -> dict[str, float]:
    out = {name: float(getattr(cleval, name)) for name in CLEVAL_STATES}
    for name in ("num_gt", "num_det", "num_matched", "num_images"):
        out[f"iou_{name}"] = float(getattr(iou, name))
    return out


def bench_eval_work(items: list[Item], repeats: int = 5) -> dict[str, Any]:
    """Reference vs fast, per stage, ms per image (medians over interleaved repeats) + exactness."""
    from ocr.metrics import DetectionMetrics

    n = len(items)
    with pinned_threads(torch=1, cv2=1):
        # warm-up (numba compiles cleval's matching functions on first use), then the first epoch
        # of a fresh metric (its GT cache fills), then the interleaved repeats
        _, ref_dets, ref_cleval, ref_iou = reference_pass(items)
        ref_states = states(ref_cleval, ref_iou)
        metrics = DetectionMetrics()
        cold, fast_dets = fast_pass(items, metrics)
        fast_states = states(metrics.cleval, metrics.iou)
        runs = alternate(
            {"reference": lambda: reference_pass(items)[0], "fast": lambda: fast_pass(items, metrics)[0]},
            repeats,
        )
        ref_runs, fast_runs = runs["reference"], runs["fast"]
        warm_states = states(metrics.cleval, metrics.iou)

    for times in (cold, *ref_runs, *fast_runs):
        times["total"] = sum(times.values())

    def ms_per_image(runs: list[Pass]) -> dict[str, float]:
        """Each stage's median over ``runs`` (the total's too), in ms per image."""
        return {stage: 1e3 * statistics.median(run[stage] for run in runs) / n for stage in runs[0]}

    reference, fast = ms_per_image(ref_runs), ms_per_image(fast_runs)
    identical = {
        "detections": same_detections(ref_dets, fast_dets),
        "states_cold": fast_states == ref_states,
        "states_warm": warm_states == ref_states,
    }
    return {
        "images": n,
        "repeats": repeats,
        "reference_ms": reference,
        "fast_ms": fast,
        "fast_cold_ms": ms_per_image([cold]),
        "speedup": {s: reference[s] / fast[s] for s in (*STAGES, "total")},
        "identical": identical,
        "states": ref_states,
    }


add_arguments = add_split_arguments


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = checked_split(args)
    items = load_items(root, args.size, args.limit)
    result = {"size": args.size, **bench_eval_work(items, args.repeats)}
    ref, fast, cold = result["reference_ms"], result["fast_ms"], result["fast_cold_ms"]
    print(f"{'ms per image':<14}{'reference':>11}{'fast':>9}{'fast, 1st epoch':>17}{'speed-up':>10}")
    for stage in (*STAGES, "gt_lookup", "total"):
        r = ref.get(stage, 0.0)
        speedup = f"{r / fast[stage]:.2f}x" if stage in ref else "-"
        print(f"{stage:<14}{r:>11.2f}{fast[stage]:>9.2f}{cold.get(stage, 0.0):>17.2f}{speedup:>10}")
    print(f"identical to the reference: {result['identical']}")
    if not all(result["identical"].values()):
        print(f"ocr bench eval-work: the fast path differs: {result['identical']}", file=sys.stderr)
        print(json.dumps(result), flush=True)
        raise SystemExit(1)
    return result
