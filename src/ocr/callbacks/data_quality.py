"""``DataQualityCallback``: per-epoch counts of skipped samples and fixed/dropped polygons.

The counts are made in the DataLoader workers (``DBCollateFN`` puts them in ``batch["perf"]``), so
they are summed here from the batches on the main process, then across DDP ranks, and:

* logged as ``data/<phase>/<counter>`` through every configured logger (``skipped_samples`` always,
  other counters when non-zero), phases ``train``, ``val``, ``test``, ``predict``;
* reported as one WARNING line per epoch with the non-zero counts and the first few places
  (file, ``file:line`` or ``image#word``) where each occurred.

An epoch in which every sample was skipped stops the run with a :class:`UserInputError`: the
whole input is unusable, and going on would train (or report metrics) on nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import lightning as L

from ocr.callbacks.phases import PhaseCallback, gather_objects
from ocr.errors import UserInputError

log = logging.getLogger(__name__)

SKIPPED = "skipped_samples"
LOG_NAMES = {"validate": "val"}  # logged as data/val/..., like val/hmean


class _Tally:
    """One phase's counts for the current epoch, plus the first few locations per counter."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.samples = 0

    def add(self, counts: dict[str, int], examples: dict[str, list[str]], samples: int, limit: int) -> None:
        self.counts.update({k: int(v) for k, v in counts.items() if v})
        self.samples += samples
        for name, where in examples.items():
            kept = self.examples.setdefault(name, [])
            kept.extend(w for w in where if w not in kept)
            del kept[limit:]


class DataQualityCallback(PhaseCallback):
    """Sum, log and warn about the data problems found in each epoch.

    Args:
        examples: how many offending places to name per counter in the warning.
        fail_on_empty_epoch: raise when an epoch had batches but every sample was skipped.
    """

    def __init__(self, examples: int = 3, fail_on_empty_epoch: bool = True) -> None:
        self.examples = examples
        self.fail_on_empty_epoch = fail_on_empty_epoch
        self.tallies: dict[str, _Tally] = {}
        self.history: list[dict[str, Any]] = []

    # -- batches ------------------------------------------------------------------------------
    def _on_batch(self, phase: str, batch: Any) -> None:
        perf = batch.get("perf") if isinstance(batch, dict) else None
        if not perf:
            return
        counters = perf.get("counters", {})
        examples = perf.get("issues", {})
        names = {SKIPPED, *examples}
        counts = {name: int(counters.get(name, len(examples.get(name, ())))) for name in names}
        tally = self.tallies.setdefault(phase, _Tally())
        tally.add(counts, examples, int(counters.get("samples", 0)), self.examples)

    # -- epochs -------------------------------------------------------------------------------
    def phase_start(self, trainer: L.Trainer, phase: str) -> None:
        self.tallies.pop(LOG_NAMES.get(phase, phase), None)

    def phase_batch(self, trainer: L.Trainer, phase: str, batch: Any) -> None:
        self._on_batch(LOG_NAMES.get(phase, phase), batch)

    def phase_end(self, trainer: L.Trainer, phase: str) -> None:
        self._finish(trainer, LOG_NAMES.get(phase, phase))

    def _gather(self, trainer: L.Trainer, tally: _Tally) -> _Tally:
        """Sum over DDP ranks (every rank calls this at the same epoch end)."""
        parts = gather_objects(trainer, (dict(tally.counts), tally.examples, tally.samples))
        if len(parts) == 1:
            return tally
        total = _Tally()
        for counts, examples, samples in parts:
            total.add(counts, examples, samples, self.examples)
        return total

    def _finish(self, trainer: L.Trainer, phase: str) -> None:
        tally = self._gather(trainer, self.tallies.pop(phase) if phase in self.tallies else _Tally())
        epoch = int(trainer.current_epoch)
        counts = {
            SKIPPED: tally.counts.get(SKIPPED, 0),
            **{k: v for k, v in sorted(tally.counts.items()) if v},
        }
        self.history.append({"phase": phase, "epoch": epoch, "samples": tally.samples, "counts": counts})
        if trainer.is_global_zero:
            metrics = {f"data/{phase}/{name}": float(value) for name, value in counts.items()}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            problems = {k: v for k, v in counts.items() if v}
            if problems:
                log.warning("data quality (%s, epoch %d): %s", phase, epoch, self.describe(problems, tally))
        skipped = counts[SKIPPED]
        if self.fail_on_empty_epoch and skipped and tally.samples == 0:
            reasons = {k: v for k, v in counts.items() if k.startswith("skipped_") and k != SKIPPED}
            why = self.describe(reasons, tally)
            raise UserInputError(
                f"every {phase} sample was skipped as unusable ({skipped} samples: {why}); "
                f"fix or replace the {phase} data"
            )

    def describe(self, counts: dict[str, int], tally: _Tally) -> str:
        """``name=N [where, where, ...]`` for each counter, on one line."""
        parts = []
        for name, value in counts.items():
            where = tally.examples.get(name, [])
            more = ", ..." if value > len(where) and where else ""
            parts.append(f"{name}={value}" + (f" [{', '.join(sorted(where))}{more}]" if where else ""))
        return "; ".join(parts)


__all__ = ["DataQualityCallback"]
