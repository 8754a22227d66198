"""The evaluator process: decode a map from its shared-memory slot, post-process, update metrics.

Each evaluator keeps its own :class:`~ocr.metrics.detection.DetectionMetrics` (sum states) for the
epoch and sends them only when asked (``flush``). Messages in (one queue per evaluator)::

    ("begin", handoff, postprocess_params, metric_params, mode)   mode: "metrics" | "predict"
    ("image", seq, slot_name, shape, meta)                          meta: name, orig_size, scale, gt_*
    ("flush",)                                                      -> ("states", id, states, times, n)
    ("forget", slot_name)                                           a slot was re-allocated
    None                                                            exit

Messages out (one queue shared by all): ``("ready", id, pid)``, ``("done", id, seq)``,
``("pred", id, seq, polygons, scores)``, ``("error", id, seq, message)`` and ``("states", ...)``.
"""

from __future__ import annotations

import functools
import os
import queue
import time
import traceback
from collections import defaultdict
from multiprocessing import shared_memory
from typing import Any

import numpy as np
import psutil

from ocr.evaluation.handoff import NUMPY_DTYPES, decode_map, unpack_polygons

# Tests only: "crash:NAME", "hang:NAME" or "raise:NAME", read by the pool when it starts (a
# forkserver child would see the server's environment, not the caller's).
FAULT_ENV = "OCR_EVALUATOR_INJECT_FAULT"
_OWNER_CHECK_S = 1.0  # how often an idle evaluator checks that the process that owns it lives


@functools.cache  # once per process
def warm_up() -> None:
    """Import the evaluation stack and compile cleval's and the post-processing's numba kernels once.

    Run in the forkserver (it is preloaded), so every forked evaluator starts warm instead of
    paying the imports and the JIT compilation itself.
    """
    import cv2
    import torch

    # Before any OpenCV/torch work: a process forked after their thread pools started can
    # deadlock on the pools' dead threads (see ocr.data.datamodule._worker_init).
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    from ocr.metrics.detection import DetectionMetrics

    quad = np.array([[0, 0], [20, 0], [20, 8], [0, 8]], dtype=np.float32)
    DetectionMetrics().update([quad], [quad, quad + 40], ["ab", "###"], [False, True])
    from ocr.postprocess.scoring import warm_up as warm_up_scoring

    warm_up_scoring()  # the post-processing's numba kernels


def states_of(metrics: Any) -> dict[str, dict[str, int | float]]:
    """Every summed state of the metric's children, as plain numbers."""
    out: dict[str, dict[str, int | float]] = {}
    for child_name in ("cleval", "iou"):
        child = getattr(metrics, child_name)
        out[child_name] = {name: getattr(child, name).item() for name in child._defaults}
    return out


def _fault(spec: str, name: str) -> str | None:
    kind, _, target = spec.partition(":")
    return kind if spec and target == name else None


def _attach(segments: dict[str, shared_memory.SharedMemory], name: str) -> shared_memory.SharedMemory:
    segment = segments.get(name)
    if segment is None:
        segment = segments[name] = shared_memory.SharedMemory(name=name)
    return segment


def owner_gone(owner: tuple[int, float] | None) -> bool:
    """Whether the process ``(pid, create_time)`` has exited (a zombie or a reused pid counts)."""
    if owner is None:
        return False
    try:
        proc = psutil.Process(owner[0])
        return proc.create_time() != owner[1] or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_main(
    worker_id: int,
    tasks: Any,
    results: Any,
    fault_spec: str = "",
    current: Any = None,
    owner: tuple[int, float] | None = None,
) -> None:
    """Serve ``tasks`` until ``None``; ``current[worker_id]`` holds the seq being evaluated.

    ``current`` is shared memory, written before each image and cleared after: if this process
    dies, the pool reads there which image killed it. The results queue cannot tell, because
    messages still in this process's feeder thread die with it.

    ``owner`` is the pool's process: a forkserver child is not its child, and the task queue
    never reaches end-of-file (this process holds both ends), so after a ``kill -9`` of the owner
    the evaluator would wait forever; it exits instead once the owner is gone.
    """
    warm_up()
    from ocr.metrics.detection import DetectionMetrics
    from ocr.postprocess.db_postprocess import DBPostProcessor

    segments: dict[str, shared_memory.SharedMemory] = {}
    metrics = DetectionMetrics()
    post = DBPostProcessor()
    handoff, mode = "float32", "metrics"
    times: dict[str, float] = defaultdict(float)
    images = 0
    results.put(("ready", worker_id, os.getpid()))
    try:
        while True:
            try:
                msg = tasks.get(timeout=_OWNER_CHECK_S)
            except queue.Empty:
                if owner_gone(owner):
                    break
                continue
            if msg is None:
                break
            op = msg[0]
            if op == "image":
                _, seq, slot_name, shape, meta = msg
                if "gt_polygons" in meta:
                    meta["gt_polygons"] = unpack_polygons(meta["gt_polygons"])
                if current is not None:
                    current[worker_id] = seq
                try:
                    fault = _fault(fault_spec, str(meta.get("name")))
                    if fault == "crash":
                        os._exit(3)
                    if fault == "hang":
                        time.sleep(3600)
                    if fault == "raise":
                        raise RuntimeError("injected evaluator fault")
                    t0 = time.perf_counter()
                    buf = _attach(segments, slot_name).buf
                    raw = np.ndarray(shape, NUMPY_DTYPES[handoff], buffer=buf)
                    prob = decode_map(raw, handoff)
                    t1 = time.perf_counter()
                    polygons, scores = post(prob, meta)
                    del raw, prob  # no view of the slot may outlive the task
                    t2 = time.perf_counter()
                    times["decode"] += t1 - t0
                    times["postprocess"] += t2 - t1
                    if mode == "predict":
                        results.put(("pred", worker_id, seq, polygons, scores))
                    else:
                        gt_polys, gt_ignore = meta["gt_polygons"], meta["gt_ignore"]
                        # the content-keyed GT cache, as DetectionMetrics.update uses it (timed
                        # apart per metric here, so the two updates are called one by one)
                        gt = metrics.gt_cache.get(gt_polys, meta["gt_texts"], gt_ignore)
                        metrics.cleval.update(polygons, gt_polys, meta["gt_texts"], gt_ignore, gt=gt)
                        t3 = time.perf_counter()
                        metrics.iou.update(polygons, gt_polys, gt_ignore, gt=gt)
                        t4 = time.perf_counter()
                        times["cleval"] += t3 - t2
                        times["iou"] += t4 - t3
                        results.put(("done", worker_id, seq))
                    images += 1
                except Exception as exc:  # reported with the image name by the pool
                    detail = traceback.format_exc(limit=4)
                    results.put(("error", worker_id, seq, f"{type(exc).__name__}: {exc}\n{detail}"))
                if current is not None:
                    current[worker_id] = -1
            elif op == "begin":
                _, handoff, post_params, metric_params, mode = msg
                post = DBPostProcessor(**post_params)
                gt_cache = metrics.gt_cache
                metrics = DetectionMetrics(**metric_params)
                # the GT is the same every epoch: keep its prepared geometry across epochs, as the
                # in-process path keeps its metrics object (the cache is keyed by GT content)
                if metrics.gt_cache.max_entries == gt_cache.max_entries:
                    metrics.gt_cache = gt_cache
            elif op == "flush":
                results.put(("states", worker_id, states_of(metrics), dict(times), images))
                metrics.reset()
                times = defaultdict(float)
                images = 0
            elif op == "forget":
                segment = segments.pop(msg[1], None)
                if segment is not None:
                    segment.close()
    finally:
        for segment in segments.values():
            segment.close()
