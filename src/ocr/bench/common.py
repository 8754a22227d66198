"""What the bench commands share: the Trainer they run, pinned thread counts, interleaved arms,
synthetic validation samples.

Nothing heavy is imported at module level: ``ocr bench targets`` uses this module and must not
pay for importing torch or Lightning.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import lightning as L

    from ocr.data.sample import Sample

K = TypeVar("K")
T = TypeVar("T")


def bench_trainer(callbacks: list[L.Callback], **overrides: Any) -> L.Trainer:
    """A quiet one-device CPU Trainer (no logger, progress bar, summary, checkpoints or sanity
    check): only the given callbacks observe the run. ``overrides`` are further Trainer arguments."""
    import lightning as L

    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "callbacks": callbacks,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**settings, **overrides})


def validation_samples(count: int, image_size: int, seed: int) -> list[Sample]:
    """Deterministic validation samples (synthetic receipts through the validation transform)."""
    from ocr.data.datasets.synthetic import SyntheticReceipts
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    dataset = SyntheticReceipts(num_samples=count, seed=seed)
    dataset.prepare()
    dataset.transform = ReceiptTransform(TransformConfig(image_size=image_size), train=False)
    samples = []
    for i in range(count):
        item = dataset[i]
        if "skipped" in item:
            raise RuntimeError(f"synthetic receipt {i} was skipped: {item['skipped']['message']}")
        samples.append(item)
    return samples


def chunks(items: list[T], size: int) -> list[list[T]]:
    """``items`` in consecutive slices of ``size`` (the last one shorter): batches, in order."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def call_with_args(fn: Callable[..., T], args: argparse.Namespace) -> T:
    """``fn`` called with the parsed options whose ``dest`` names one of its parameters."""
    parameters = inspect.signature(fn).parameters
    return fn(**{name: value for name, value in vars(args).items() if name in parameters})


@contextlib.contextmanager
def pinned_threads(torch: int = 0, cv2: int = 0) -> Iterator[None]:
    """torch's intra-op and OpenCV's thread counts set for the block, restored after (0: unchanged).

    One thread is how a DataLoader worker runs, and a single-threaded timing follows the CPU share
    on a busy machine where a thread pool would add scheduling noise.
    """
    with contextlib.ExitStack() as restore:
        if torch > 0:
            import torch as torch_module

            restore.callback(torch_module.set_num_threads, torch_module.get_num_threads())
            torch_module.set_num_threads(torch)
        if cv2 > 0:
            import cv2 as cv2_module

            restore.callback(cv2_module.setNumThreads, cv2_module.getNumThreads())
            cv2_module.setNumThreads(cv2)
        yield


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
    """``fn`` as an arm of :func:`alternate` whose result is its duration on ``clock``."""

    def run() -> float:
        start = clock()
        fn()
        return clock() - start

    return run


def alternate(arms: Mapping[K, Callable[[], T]], repeats: int) -> dict[K, list[T]]:
    """Every arm once per repeat, in the given order on even repeats and reversed on odd ones
    (ABBA), so drift and load on a shared machine hit all arms alike; each arm's results in order."""
    order = list(arms)
    results: dict[K, list[T]] = {name: [] for name in order}
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            results[name].append(arms[name]())
    return results
