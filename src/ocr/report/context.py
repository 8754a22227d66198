"""The analysis context every rule and section reads: run, per-epoch perf, figures, rule limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocr.report.config import lookup
from ocr.report.epoch_perf import EpochPerf, PerfData, perf_data
from ocr.report.figures import compute_figures
from ocr.report.finding import Finding
from ocr.report.rule_limits import RuleLimits
from ocr.report.run import RunData


@dataclass
class Analysis:
    run: RunData
    perf: PerfData
    figures: dict[str, float]
    rule_limits: RuleLimits
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def build(cls, run: RunData, rule_limits: RuleLimits | None = None) -> Analysis:
        perf = perf_data(run)
        return cls(run, perf, compute_figures(run, perf), rule_limits or RuleLimits())

    def fig(self, key: str) -> float | None:
        return self.figures.get(key)

    def stage_figures(self, phase: str, kind: str, stat: str) -> dict[str, float]:
        """``{stage: value}`` of the ``<phase>.<kind>.<stage>.<stat>`` figures, in the figures' order
        (``kind``: ``stage`` for the main process, ``worker`` for the DataLoader workers)."""
        prefix, suffix = f"{phase}.{kind}.", f".{stat}"
        return {
            key[len(prefix) : -len(suffix)]: value
            for key, value in self.figures.items()
            if key.startswith(prefix) and key.endswith(suffix)
        }

    def epochs(self, phase: str) -> list[EpochPerf]:
        return self.perf.phase(phase)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.run.info.get("config") or {})

    def hparam(self, dotted: str) -> Any:
        """A hyper-parameter from the profiler summary's ``run.hparams`` (``data.loader.pin_memory``);
        None when the source does not record it."""
        return lookup(((self.run.summary or {}).get("run") or {}).get("hparams") or {}, dotted)

    @property
    def cpu_count(self) -> int | None:
        hardware = self.run.info.get("hardware") or {}
        counts = [c for c in (hardware.get("cpu_affinity"), hardware.get("cpu_count")) if c]
        return int(min(counts)) if counts else None

    @property
    def has_perf(self) -> bool:
        return bool(self.perf.epochs)
