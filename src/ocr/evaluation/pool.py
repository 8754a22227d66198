"""A persistent pool of evaluator processes fed through shared-memory map slots.

The main process copies each encoded probability map into a free slot (one copy; from the device
straight into shared memory on CUDA) and queues a small message with the image's GT and meta to
the evaluator with the fewest images in flight. A fixed number of slots bounds the images in
flight, so memory stays flat on any dataset size: with every slot busy, :meth:`submit` waits for
one to come back.

Validation (``mode="metrics"``): each evaluator post-processes and updates its own
``DetectionMetrics``; :meth:`drain` waits for the images in flight and :meth:`collect` returns the
states summed over the evaluators, which the caller adds into its torchmetrics states (every
state is a count or an integer-valued sum, so the order of the additions changes no bit).

Prediction (``mode="predict"``): :meth:`submit` returns one sequence number per image, in input
order; :meth:`ready` yields ``(seq, polygons, scores)`` in that same order for every leading image
already evaluated (without blocking), :meth:`results_in_order` blocks until every submitted image
has come back, still in input order.

Failures never hang the caller: an evaluator that raises, dies or makes no progress for
``timeout_s`` ends the pool with an :class:`EvaluatorError` naming the image.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import threading
import time
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, is_dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np
import psutil
import torch

from ocr.evaluation.handoff import NUMPY_DTYPES, TORCH_DTYPES, pack_polygons
from ocr.evaluation.worker import FAULT_ENV, worker_main
from ocr.perf.schema import EVALUATOR_STAGES
from ocr.perf.stage_timer import NullStageTimer

_POLL_S = 0.2
_META_KEYS = ("name", "orig_size", "scale", "gt_polygons", "gt_texts", "gt_ignore")


def _plain(value: Any) -> Any:
    """``value`` with every torch tensor as a numpy array, for the task queue.

    A CPU tensor pickled into a multiprocessing queue goes through torch's shared-memory file
    path (one file descriptor and segment per tensor): tens of ms per image for a meta of GT
    polygons, many times the evaluation itself. A DataLoader's default_convert makes such tensors.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, list | tuple):
        if not any(isinstance(v, torch.Tensor | list | tuple | dict) for v in value):
            return value  # the usual case (a list of numpy polygons, of str, of bool): as it is
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class EvaluatorError(RuntimeError):
    """An evaluator failed; the message names the image and the way out."""


@dataclass
class _Task:
    worker: int
    slot: int
    name: str


@dataclass
class PoolReport:
    """One epoch of the pool: summed states and where the evaluators' time went (seconds)."""

    states: dict[str, dict[str, int | float]]
    images: int
    workers: int
    wall_s: float
    stages: dict[str, float] = field(default_factory=dict)
    slot_wait_s: float = 0.0  # the main process blocked on a full ring of slots

    @property
    def busy_s(self) -> float:
        return sum(self.stages.values())

    @property
    def busy_share(self) -> float:
        """Share of the evaluators' capacity (workers x epoch wall time) spent working."""
        return self.busy_s / (self.workers * self.wall_s) if self.workers and self.wall_s > 0 else 0.0


def _context() -> Any:
    # forkserver: evaluators fork from a small server that preloaded (and warmed) the evaluation
    # stack, so they start in milliseconds, never inherit CUDA or the trainer's threads, and
    # Lightning's own fork-based DataLoader workers are unaffected.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["ocr.evaluation.preload"])
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - not Linux


def _shutdown(procs: list[Any], tasks: list[Any], results: Any, segments: list[Any]) -> None:
    for q in tasks:
        with contextlib.suppress(Exception):  # a broken queue: the process is terminated below
            q.put_nowait(None)
    deadline = time.monotonic() + 5.0
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(2.0)
        if proc.is_alive():  # pragma: no cover - ignores SIGTERM
            proc.kill()
            proc.join(2.0)
    for q in [*tasks, results]:
        if q is not None:
            q.cancel_join_thread()
            q.close()
    for segment in segments:
        if segment is not None:
            segment.close()
            segment.unlink()
    segments.clear()


class EvaluatorPool:
    """``workers`` evaluator processes and ``slots`` shared-memory map slots (see the module doc)."""

    def __init__(self, workers: int, slots: int | None = None, timeout_s: float = 300.0) -> None:
        if workers < 1:
            raise ValueError(f"an evaluator pool needs at least 1 worker, got {workers}")
        self.workers = workers
        self.slots = slots or 4 * workers + 4
        self.timeout_s = timeout_s
        self.pids: list[int] = []
        self._procs: list[Any] = []
        self._tasks: list[Any] = []
        self._results: Any = None
        self._segments: list[shared_memory.SharedMemory | None] = []
        self._free: deque[int] = deque()
        self._inflight: dict[int, _Task] = {}
        self._outstanding: list[int] = []
        self._last_event: list[float] = []
        self._states: dict[int, tuple[Any, ...]] = {}
        self._preds: dict[int, tuple[list[np.ndarray], list[float]]] = {}
        self._seq = 0
        self._next_out = 0
        self._handoff = "float32"
        self._began = 0.0
        self._slot_wait = 0.0
        self._finalizer: Any = None
        self._ready: dict[int, int] = {}
        self._current: Any = None  # per evaluator: the seq it is evaluating now, or -1
        # The hand-off thread (submit_in_background): one batch may wait for it, so a caller that
        # gets ahead blocks, and memory stays flat.
        self._later: queue.Queue[tuple[torch.Tensor, Sequence[Mapping[str, Any]]] | None] = queue.Queue(1)
        self._later_thread: threading.Thread | None = None
        self._later_error: BaseException | None = None

    # -- life cycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._procs)

    def start(self) -> EvaluatorPool:
        if self.running:
            return self
        ctx = _context()
        self._results = ctx.Queue()
        self._segments = [None] * self.slots
        self._free = deque(range(self.slots))
        self._outstanding = [0] * self.workers
        self._last_event = [time.monotonic()] * self.workers
        self._current = ctx.Array("q", [-1] * self.workers, lock=False)
        me = psutil.Process()
        owner = (me.pid, me.create_time())
        for worker_id in range(self.workers):
            tasks = ctx.Queue()
            proc = ctx.Process(
                target=worker_main,
                args=(worker_id, tasks, self._results, os.environ.get(FAULT_ENV, ""), self._current, owner),
                name=f"ocr-evaluator-{worker_id}",
            )
            proc.daemon = True
            proc.start()
            self._tasks.append(tasks)
            self._procs.append(proc)
        self._finalizer = weakref.finalize(
            self, _shutdown, self._procs, self._tasks, self._results, self._segments
        )
        self._ready = {}
        return self

    def wait_ready(self) -> None:
        """Block until every evaluator has started (warm-up included); :meth:`begin` calls it.

        :meth:`start` does not wait, so the evaluators warm up while the trainer sets up.
        """
        deadline = time.monotonic() + max(self.timeout_s, 120.0)
        while len(self._ready) < self.workers:
            if self._results is None:
                raise EvaluatorError("the evaluator pool is closed")
            try:
                msg = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                self._check_alive(starting=True)
                if time.monotonic() > deadline:
                    self._fail("the evaluator processes did not start in time")
                continue
            if msg[0] == "ready":
                self._ready[msg[1]] = msg[2]
        self.pids = [self._ready[i] for i in range(self.workers)]

    def close(self) -> None:
        """Stop the evaluators and free the slots (idempotent; also runs when the pool is collected)."""
        self._stop_background()
        if self._finalizer is not None:
            self._finalizer()
        self._procs, self._tasks, self._results = [], [], None
        self._inflight.clear()

    def __enter__(self) -> EvaluatorPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- an epoch ---------------------------------------------------------------------------
    def begin(
        self,
        mode: str,
        postprocessor: Any,
        metric_params: Mapping[str, Any] | None = None,
        handoff: str = "float32",
    ) -> None:
        """Start an epoch: every evaluator gets the post-processing parameters and fresh metrics."""
        if mode not in ("metrics", "predict"):
            raise ValueError(f"mode must be 'metrics' or 'predict', got {mode!r}")
        self.wait_background()
        self.start()
        self.wait_ready()
        self.drain()
        if is_dataclass(postprocessor) and not isinstance(postprocessor, type):
            params = asdict(postprocessor)
        else:
            params = dict(postprocessor)
        self._handoff = handoff
        for q in self._tasks:
            q.put(("begin", handoff, params, dict(metric_params or {}), mode))
        self._seq = self._next_out = 0
        self._preds.clear()
        self._slot_wait = 0.0
        self._began = time.perf_counter()

    def submit(
        self,
        maps: torch.Tensor,
        metas: Sequence[Mapping[str, Any]],
        timer: Callable[[str], AbstractContextManager[object]] | None = None,
    ) -> list[int]:
        """Queue a (B, H, W) batch of encoded maps (any device) with its metas; returns the seqs.

        ``timer`` (a model's ``stage_timer``) times the copy into the slots as ``handoff`` and any
        wait for a free slot (every slot in flight: the evaluators are behind) as ``eval_wait``.
        """
        self.wait_background()  # (a no-op on the hand-off thread itself)
        timer = timer or NullStageTimer()
        if maps.ndim != 3 or maps.shape[0] != len(metas):
            raise ValueError(f"expected (B, H, W) maps for {len(metas)} metas, got {tuple(maps.shape)}")
        if maps.dtype != TORCH_DTYPES[self._handoff]:
            raise ValueError(f"maps are {maps.dtype}, the epoch was begun with {self._handoff}")
        shape = (int(maps.shape[1]), int(maps.shape[2]))
        dtype = NUMPY_DTYPES[self._handoff]
        nbytes = shape[0] * shape[1] * dtype.itemsize
        seqs = []
        for i, meta in enumerate(metas):
            with timer("eval_wait") if not self._free else nullcontext():
                slot = self._acquire_slot()
            with timer("handoff"):
                seqs.append(self._put(slot, maps[i], meta, shape, dtype, nbytes))
        self._poll(block=False)
        return seqs

    def submit_in_background(
        self,
        maps: torch.Tensor,
        metas: Sequence[Mapping[str, Any]],
        timer: Callable[[str], AbstractContextManager[object]] | None = None,
    ) -> None:
        """:meth:`submit` on the pool's hand-off thread, so the caller's next forward pass overlaps
        the copies into the slots (the device-to-host copy too, on CUDA).

        Batches are submitted in call order. Every other method first waits for the thread
        (:meth:`wait_background`), so only one thread at a time touches the pool's state, and an
        error the thread met (an evaluator that died, a shape that does not fit) is raised there or
        by the next call of this method. One batch may wait for the thread: a caller that gets
        further ahead blocks, timed as ``eval_wait``. ``maps`` must not be written to afterwards.
        """
        self._raise_background_error()
        if self._later_thread is None or not self._later_thread.is_alive():
            thread = threading.Thread(target=self._background_loop, name="ocr-handoff", daemon=True)
            self._later_thread = thread
            thread.start()
        timer = timer or NullStageTimer()
        with timer("eval_wait" if self._later.full() else "handoff"):
            self._later.put((maps, metas))

    def wait_background(self) -> None:
        """Block until the hand-off thread has submitted every batch given to it; raise its error."""
        if self._later_thread is not None and threading.current_thread() is not self._later_thread:
            self._later.join()
        self._raise_background_error()

    def _raise_background_error(self) -> None:
        error, self._later_error = self._later_error, None
        if error is not None:
            raise error

    def _background_loop(self) -> None:
        while True:
            item = self._later.get()
            try:
                if item is None:
                    return
                if self._later_error is None:  # after an error, the rest of the queue is dropped
                    self.submit(*item)
            except BaseException as exc:  # handed to the caller's thread
                self._later_error = exc
            finally:
                self._later.task_done()

    def _stop_background(self) -> None:
        thread = self._later_thread
        if thread is None or thread is threading.current_thread():
            return
        self._later_thread = None
        if thread.is_alive():
            self._later.put(None)
            thread.join()

    def _put(
        self,
        slot: int,
        encoded: torch.Tensor,
        meta: Mapping[str, Any],
        shape: tuple[int, int],
        dtype: Any,
        nbytes: int,
    ) -> int:
        """Copy one map into ``slot`` and queue it to the least busy evaluator."""
        segment = self._segment(slot, nbytes)
        view = np.ndarray(shape, dtype, buffer=segment.buf)
        torch.from_numpy(view).copy_(encoded)
        del view  # no view of the slot may outlive the copy
        worker = min(range(self.workers), key=self._outstanding.__getitem__)
        seq = self._seq
        self._seq += 1
        small = {k: _plain(meta[k]) for k in _META_KEYS if k in meta}
        if "gt_polygons" in small:
            small["gt_polygons"] = pack_polygons(small["gt_polygons"])
        if self._outstanding[worker] == 0:
            self._last_event[worker] = time.monotonic()
        self._outstanding[worker] += 1
        self._inflight[seq] = _Task(worker, slot, str(small.get("name", f"#{seq}")))
        self._tasks[worker].put(("image", seq, segment.name, shape, small))
        return seq

    def drain(self) -> None:
        """Wait until every submitted image has been evaluated."""
        self.wait_background()
        while self._inflight:
            self._poll(block=True)

    def collect(self) -> PoolReport:
        """Drain, then take (and reset) every evaluator's summed states and stage times."""
        self.drain()
        wall = time.perf_counter() - self._began
        self._states.clear()
        self._last_event = [time.monotonic()] * self.workers
        for q in self._tasks:
            q.put(("flush",))
        while len(self._states) < self.workers:
            self._poll(block=True, waiting_for_states=True)
        summed: defaultdict[str, Counter[str]] = defaultdict(Counter)
        stages = Counter(dict.fromkeys(EVALUATOR_STAGES, 0.0))
        images = 0
        for _, states, times, count in self._states.values():
            for child, values in states.items():
                summed[child].update(values)
            stages.update(times)
            images += count
        return PoolReport(
            states={child: dict(values) for child, values in summed.items()},
            images=images,
            workers=self.workers,
            wall_s=wall,
            stages=dict(stages),
            slot_wait_s=self._slot_wait,
        )

    def ready(self) -> Iterator[tuple[int, list[np.ndarray], list[float]]]:
        """Predict mode: ``(seq, polygons, scores)`` in input order, as far as they are done."""
        self.wait_background()
        self._poll(block=False)
        while self._next_out in self._preds:
            polygons, scores = self._preds.pop(self._next_out)
            yield self._next_out, polygons, scores
            self._next_out += 1

    def results_in_order(self) -> Iterator[tuple[int, list[np.ndarray], list[float]]]:
        """Predict mode: every submitted image's ``(seq, polygons, scores)``, in input order."""
        self.wait_background()
        while self._next_out < self._seq:
            if self._next_out not in self._preds:
                self._poll(block=True)
                continue
            yield from self.ready()

    # -- internals --------------------------------------------------------------------------
    def _segment(self, slot: int, nbytes: int) -> shared_memory.SharedMemory:
        segment = self._segments[slot]
        if segment is not None and segment.size >= nbytes:
            return segment
        if segment is not None:  # a larger map than before: this slot grows
            for q in self._tasks:
                q.put(("forget", segment.name))
            segment.close()
            segment.unlink()
        segment = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self._segments[slot] = segment
        return segment

    def _acquire_slot(self) -> int:
        if not self._free:
            start = time.perf_counter()
            while not self._free:
                self._poll(block=True)
            self._slot_wait += time.perf_counter() - start
        # LIFO: the most recently freed slot, whose pages are mapped and warm; a slot's first
        # write costs a page fault per 4 KiB, many times the copy itself.
        return self._free.pop()

    def _poll(self, block: bool, waiting_for_states: bool = False) -> None:
        """Handle every message waiting; with ``block``, wait (watching the evaluators) for one."""
        if self._results is None:
            raise EvaluatorError("the evaluator pool is closed")
        while True:
            try:
                msg = self._results.get(timeout=_POLL_S) if block else self._results.get_nowait()
            except queue.Empty:
                if not block:
                    return
                self._check_alive()
                self._check_progress(waiting_for_states)
                continue
            self._handle(msg)
            block = False

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind, worker = msg[0], msg[1]
        if kind in ("done", "pred", "error"):
            seq = msg[2]
            task = self._inflight.pop(seq)
            self._free.append(task.slot)
            self._outstanding[worker] -= 1
            self._last_event[worker] = time.monotonic()
            if kind == "pred":
                self._preds[seq] = (msg[3], msg[4])
            elif kind == "error":
                self._fail(f"evaluating image {task.name!r} failed in evaluator {worker}: {msg[3]}")
        elif kind == "states":
            self._states[worker] = msg[1:]

    def _check_alive(self, starting: bool = False) -> None:
        for worker, proc in enumerate(self._procs):
            if proc.is_alive():
                continue
            name = self._evaluating(worker)
            idle = "starting" if starting else "while idle"
            what = f"while evaluating image {name!r}" if name is not None else idle
            self._fail(f"evaluator {worker} (pid {proc.pid}) died {what} (exit code {proc.exitcode})")

    def _evaluating(self, worker: int) -> str | None:
        """The image ``worker`` is evaluating now (from shared memory), else its oldest in flight."""
        seq = int(self._current[worker]) if self._current is not None else -1
        task = self._inflight.get(seq)
        if task is not None and task.worker == worker:
            return task.name
        names = [t.name for t in self._inflight.values() if t.worker == worker]
        return names[0] if names else None

    def _check_progress(self, waiting_for_states: bool) -> None:
        now = time.monotonic()
        for worker in range(self.workers):
            if self._outstanding[worker] and now - self._last_event[worker] > self.timeout_s:
                self._fail(
                    f"evaluator {worker} made no progress for {self.timeout_s:g} s"
                    f" on image {self._evaluating(worker)!r}"
                )
        if waiting_for_states and now - max(self._last_event) > self.timeout_s:
            self._fail(f"the evaluators did not return their states within {self.timeout_s:g} s")

    def _fail(self, message: str) -> None:
        self.close()
        raise EvaluatorError(
            f"{message}. The evaluator pool was stopped; model.evaluator.workers=0 evaluates in-process."
        )
