"""The suite's plumbing: thresholds.yaml, lazily measured figure groups, recorded checks, baselines.

Measurements come from :mod:`ocr.bench.baseline` (the same code ``ocr bench --save-baseline``
runs), once per session and group. Every check is recorded (name, threshold, figure, verdict) so
that the session can print one table and write ``tests/performance/last_run.json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ocr.bench.baseline import GROUPS, SuiteSettings, TrainerRun, measure_trainer_isolated
from ocr.bench.baseline import measure as measure_group
from ocr.perf.inject import injected_stages
from ocr.perf.system import hardware_info
from ocr.schema import from_dotlist
from ocr.targets.db_targets import SLOWDOWN_ENV, slowdown_injected

HERE = Path(__file__).resolve().parent
THRESHOLDS = HERE / "baselines" / "thresholds.yaml"
BASELINE = HERE / "baselines" / "baseline.json"
LAST_RUN_ENV = "OCR_PERF_LAST_RUN"  # where last_run.json goes (the injected-slowdown child moves it)
HARDWARE_KEYS = ("cpu", "cpu_count", "cpu_affinity", "gpu")

# Which group measures a figure (by prefix; the report's own figures come from the Trainer run).
_GROUP_OF = (
    ("bench.targets.", "targets"),
    ("bench.cache.", "cache"),
    ("bench.overhead.", "overhead"),
    ("bench.evalwork.", "evalwork"),
    ("bench.validate.", "trainer"),
    ("bench.train.", "trainer"),
)


def group_of(figure: str) -> str:
    return next((g for prefix, g in _GROUP_OF if figure.startswith(prefix)), "trainer")


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    for section in ("measure", "gates", "speed", "memory", "baseline"):
        if section not in data:
            raise ValueError(f"{path}: section {section!r} missing")
    return data


def settings_for(thresholds: dict[str, Any], ci: bool) -> SuiteSettings:
    values = dict(thresholds["measure"].get("local") or {})
    if ci:
        values.update(thresholds["measure"].get("ci") or {})
    items = [f"{name}={value}" for name, value in values.items()]
    return from_dotlist(SuiteSettings, items, f"{THRESHOLDS.name} measure", error=ValueError)


def threshold(thresholds: dict[str, Any], key: str) -> float:
    """``section.name`` from thresholds.yaml; a missing key is an error, never a default."""
    section, name = key.split(".", 1)
    try:
        return float(thresholds[section][name])
    except KeyError:
        raise KeyError(f"thresholds.yaml has no {key!r}: every threshold lives there") from None


def injected_note() -> str:
    if slowdown_injected():
        return f" [{SLOWDOWN_ENV}=1 is set: fast targets and the cache are bypassed on purpose]"
    stages = sorted(injected_stages())
    return f" [{SLOWDOWN_ENV}={','.join(stages)}: that work is doubled on purpose]" if stages else ""


# -- checks -----------------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    threshold_key: str
    figure: str
    op: str  # ">=", "<=" or "within" (baseline)
    threshold: float | None
    measured: float | None
    passed: bool | None  # None: skipped
    detail: str = ""
    attempts: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _holds(value: float, op: str, limit: float) -> bool:
    if math.isnan(value):
        return False
    return value >= limit if op == ">=" else value <= limit


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0 or 0.01 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3g}"


class Session:
    """Per pytest session: settings, lazily measured groups, and every recorded check."""

    def __init__(self, thresholds: dict[str, Any], ci: bool, baseline: Path | None, workdir: Path) -> None:
        self.thresholds = thresholds
        self.ci = ci
        self.settings = settings_for(thresholds, ci)
        self.baseline_path = baseline
        self.workdir = workdir
        self.figures: dict[str, float] = {}
        self.measured: set[str] = set()
        self.trainer_run: TrainerRun | None = None
        self.checks: list[Check] = []
        self._baseline: dict[str, Any] | None = None

    # -- measurements ---------------------------------------------------------------------------
    def group(self, name: str, fresh: bool = False) -> dict[str, float]:
        """The figures of one group, measured on first use (``fresh``: measure again)."""
        if name not in GROUPS:
            raise ValueError(f"unknown group {name!r}")
        if fresh or name not in self.measured:
            if name == "trainer":
                run_dir = self.workdir / "trainer"
                shutil.rmtree(run_dir, ignore_errors=True)
                self.trainer_run = measure_trainer_isolated(self.settings, run_dir)
                figures = self.trainer_run.figures
            else:
                figures = measure_group(name, self.settings, self.workdir)
            self.figures.update(figures)
            self.measured.add(name)
        return self.figures

    def figure(self, name: str, fresh: bool = False) -> float:
        figures = self.group(group_of(name), fresh)
        if name not in figures:
            raise AssertionError(
                f"figure {name!r} was not measured (group {group_of(name)!r} has {sorted(figures)})"
            )
        return figures[name]

    # -- checks ---------------------------------------------------------------------------------
    def check(
        self,
        name: str,
        figure: str,
        op: str,
        threshold_key: str,
        explain: Callable[[], str] | None = None,
        confirm: bool = False,
    ) -> None:
        """Record and assert ``figure op threshold``; ``confirm``: a failure is measured once more."""
        limit = threshold(self.thresholds, threshold_key)
        value = self.figure(figure)
        attempts = [value]
        reruns = int(self.thresholds["speed"].get("confirm_reruns", 0)) if confirm else 0
        while not _holds(value, op, limit) and reruns > 0:
            reruns -= 1
            value = self.figure(figure, fresh=True)
            attempts.append(value)
        passed = _holds(value, op, limit)
        detail = explain() if explain else ""
        self.checks.append(Check(name, threshold_key, figure, op, limit, value, passed, detail, attempts))
        if not passed:
            tried = ""
            if len(attempts) > 1:
                tried = f" (measured {len(attempts)} times: {', '.join(_fmt(a) for a in attempts)})"
            raise AssertionError(
                f"PERF CHECK FAILED: {name}: measured {_fmt(value)}, required {op} {_fmt(limit)} "
                f"[{figure}; thresholds.yaml {threshold_key}]{tried}. {detail}{injected_note()}".rstrip()
            )

    def skip(self, name: str, figure: str, reason: str) -> None:
        self.checks.append(
            Check(name, "baseline", figure, "within", None, self.figures.get(figure), None, reason)
        )

    # -- baseline -------------------------------------------------------------------------------
    def baseline(self) -> dict[str, Any]:
        if self._baseline is None:
            assert self.baseline_path is not None
            document = json.loads(self.baseline_path.read_text())
            if document.get("schema") != "ocr.report/1" or "figures" not in document:
                raise AssertionError(
                    f"{self.baseline_path}: not a baseline (expected an ocr.report/1 JSON export with "
                    "`figures`, as written by `ocr bench --save-baseline PATH`)"
                )
            self._baseline = document
        return self._baseline

    def hardware_match(self) -> tuple[bool, str]:
        """Whether absolute figures are comparable here, and the two machines in words."""
        theirs = (self.baseline().get("run") or {}).get("hardware") or {}
        ours = hardware_info()

        def words(hw: dict[str, Any]) -> str:
            gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ""
            return f"{hw.get('cpu')!r}, {hw.get('cpu_count')} CPUs (affinity {hw.get('cpu_affinity')}){gpu}"

        same = all(theirs.get(k) == ours.get(k) for k in HARDWARE_KEYS)
        return same, f"baseline hardware: {words(theirs)}; this machine: {words(ours)}"

    def compare(self, figure: str, spec: dict[str, Any], absolute: bool) -> None:
        """Current value within (regression + noise) of the baseline's, in the ``better`` direction."""
        name = f"baseline: {figure}"
        base_doc = self.baseline()
        if absolute:
            same, machines = self.hardware_match()
            if not same:
                self.skip(name, figure, f"absolute figure not compared: hardware differs ({machines})")
                raise _Skip(
                    f"{figure}: absolute figure compared only on the baseline's hardware ({machines})"
                )
            why = f"absolute figure, compared because the hardware matches ({machines})"
        else:
            why = "machine-independent figure (ratio or counter), compared on any machine"
        if figure not in base_doc["figures"]:
            raise AssertionError(
                f"baseline {self.baseline_path} has no figure {figure!r}: refresh it with "
                f"`ocr bench --save-baseline {self.baseline_path}`"
            )
        base = float(base_doc["figures"][figure])
        config = self.thresholds["baseline"]
        regression = float(config["regression_pct"])
        noise = float(spec.get("noise_pct", config["noise_pct"]["ci" if self.ci else "local"]))
        slack = (regression + noise) / 100.0
        better = spec["better"]
        value = self.figure(figure)
        if better == "higher":
            allowed, op = base * (1.0 - slack), ">="
            excess = (allowed - value) / abs(base) if base else 0.0
        else:
            allowed, op = base * (1.0 + slack), "<="
            excess = (value - allowed) / abs(base) if base else (value - allowed)
        passed = _holds(value, op, allowed)
        detail = f"{regression:g}% regression + {noise:g}% noise; {why}"
        self.checks.append(Check(name, "baseline.regression_pct", figure, op, allowed, value, passed, detail))
        if not passed:
            excess_text = (
                f"{100 * excess:.1f}% of the baseline" if base else f"{_fmt(excess)} (baseline is 0)"
            )
            raise AssertionError(
                f"PERF REGRESSION vs baseline: {figure} ({better} is better): baseline {_fmt(base)}, "
                f"current {_fmt(value)}, allowed {op} {_fmt(allowed)} ({detail}); "
                f"excess beyond the allowance: {excess_text}.{injected_note()}"
            )

    # -- the record -----------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        return {
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "ci": self.ci,
            "slowdown_injected": slowdown_injected(),
            "baseline": str(self.baseline_path) if self.baseline_path else None,
            "hardware": hardware_info(),
            "settings": asdict(self.settings),
            "checks": [c.row() for c in self.checks],
            "figures": dict(sorted(self.figures.items())),
        }

    def table(self) -> list[str]:
        lines = [f"{'check':<58} {'threshold':>14} {'measured':>11}  verdict", "-" * 94]
        for c in self.checks:
            limit = "-" if c.threshold is None else f"{c.op} {_fmt(c.threshold)}"
            verdict = "skipped" if c.passed is None else "ok" if c.passed else "FAILED"
            lines.append(f"{c.name[:58]:<58} {limit:>14} {_fmt(c.measured):>11}  {verdict}")
        return lines


class _Skip(Exception):
    """Raised by :meth:`Session.compare` to ask the test to skip (pytest is imported by the caller)."""


def last_run_path() -> Path:
    return Path(os.environ.get(LAST_RUN_ENV) or HERE / "last_run.json")


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ocr-perf-suite-"))
