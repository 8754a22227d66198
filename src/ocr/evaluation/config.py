"""``model.evaluator``: how many evaluator processes, and how probability maps travel to them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ocr.schema import EvaluatorKnobs, check_fields


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers(loader_workers: int, local_ranks: int = 1, cores: int | None = None) -> int:
    """The node's cores left after every rank's DataLoader workers, shared by the local ranks, >= 1."""
    cores = available_cores() if cores is None else cores
    ranks = max(1, local_ranks)
    return max(1, (cores - ranks * max(0, loader_workers)) // ranks)


@dataclass
class EvaluatorConfig(EvaluatorKnobs):
    """``workers``: evaluator processes per rank; ``None`` = :func:`default_workers`, ``0`` = the
    in-process path (the reference). ``handoff``: map encoding, ``auto`` = ``uint8`` on CUDA (the
    quantisation runs on the device and a quarter of the bytes cross PCIe) and ``float32`` on the
    CPU (a plain copy is cheaper there than quantising). ``slots``: shared-memory map slots, the
    bound on images in flight (``None``: 4 per worker + 4). ``timeout_s``: an evaluator that makes
    no progress this long is declared hung. ``copy_thread``: copy the maps into the slots on the
    pool's hand-off thread, behind the next forward pass; ``None`` = on CUDA only, where the main
    thread would otherwise wait for the device (on the CPU the forward pass keeps the cores busy,
    and the thread only competes with it and with the evaluators).

    The fields and their ranges are the schema's (:class:`ocr.schema.EvaluatorKnobs`); this class
    checks them when the module is built from Python, where no Hydra composition did.
    """

    def __post_init__(self) -> None:
        check_fields(self, "model.evaluator.")
