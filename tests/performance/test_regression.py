"""Performance regression suite: the real pipeline, checks that fail for the right reason.

Everything is measured on the project's own code (DB targets, PolygonCache, DBCollateFN, a real
Lightning Trainer with the profiler, post-processing and CLEval) on built-in synthetic receipts,
through :mod:`ocr.bench.baseline` (the same code ``ocr bench --save-baseline`` runs). Thresholds
live in ``baselines/thresholds.yaml``; the session prints a table of every check and writes it to
``tests/performance/last_run.json``.

* ``test_gate_*``: deterministic counters (hit rate, maps computed, bit-identity, byte budget).
* ``test_speed_*``: ratios measured in the same run (interleaved A/B, medians); a failure is
  measured once more before it counts.
* ``test_memory_*``: peak RSS of a validation epoch against its budget.
* ``test_baseline``: with ``--baseline PATH``, the YAML's figures against a saved baseline.
* ``test_injected_slowdown_is_caught``: ``OCR_PERF_INJECT_SLOWDOWN=1`` must make the gates fail.

Run: ``pytest -m performance tests/performance [--baseline PATH] [--ci]`` (``make perf``: the committed
baseline).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ocr.perf.inject import injected_stages
from ocr.targets.db_targets import SLOWDOWN_ENV, slowdown_injected
from tests.performance._measure import (
    HERE,
    LAST_RUN_ENV,
    THRESHOLDS,
    Check,
    Session,
    _Skip,
    group_of,
    load_thresholds,
)

REPO_ROOT = HERE.parents[1]


# -- hard gates: deterministic counters -------------------------------------------------------------
def test_gate_fast_targets_bit_identical_to_reference(perf: Session) -> None:
    n = perf.figure("bench.targets.images")
    perf.check(
        "fast targets bit-identical to reference (db)",
        "bench.targets.db_identical_share",
        ">=",
        "gates.identical_share_min",
        lambda: f"{perf.figures['bench.targets.db_identical_share'] * n:.0f} of {n:.0f} receipts identical.",
    )


def test_gate_cache_hits_bit_identical_to_recomputation(perf: Session) -> None:
    perf.check(
        "cached maps bit-identical to recomputation",
        "bench.cache.identical_share",
        ">=",
        "gates.identical_share_min",
        lambda: "Share of post-warm-up samples whose 4 maps equal an uncached collate's, bit for bit.",
    )


def test_gate_cache_hit_rate_after_warmup(perf: Session) -> None:
    def explain() -> str:
        lookups = perf.figures["bench.cache.lookups_after_warmup"]
        hits = perf.figures["bench.cache.hit_rate_after_warmup"] * lookups
        return f"{hits:.0f} of {lookups:.0f} target lookups hit after the warm-up epoch."

    perf.check(
        "cache hit rate after warm-up (collate)",
        "bench.cache.hit_rate_after_warmup",
        ">=",
        "gates.cache_hit_rate_min",
        explain,
    )


def test_gate_cache_maps_computed_after_warmup(perf: Session) -> None:
    perf.check(
        "maps computed per epoch after warm-up (collate)",
        "bench.cache.maps_computed_after_warmup",
        "<=",
        "gates.maps_computed_after_warmup_max",
        lambda: (
            f"Worst epoch after the warm-up; {perf.figures['bench.cache.samples_per_epoch']:.0f} "
            "samples per epoch (targets_computed counter)."
        ),
    )


def test_gate_cache_byte_budget(perf: Session) -> None:
    perf.check(
        "cache bytes on disk / byte budget",
        "bench.cache.budget_used_share",
        "<=",
        "gates.budget_used_share_max",
        lambda: (
            f"Budget {perf.figures['bench.cache.budget_bytes']:.0f} B for entries totalling "
            f"{perf.figures['bench.cache.entry_bytes']:.0f} B."
        ),
    )
    perf.check(
        "entries kept under the budget are exact",
        "bench.cache.budget_survivors_identical_share",
        ">=",
        "gates.identical_share_min",
        lambda: f"{perf.figures['bench.cache.budget_survivor_hits']:.0f} entries survived the trimming.",
    )


def test_gate_validation_cache_hit_rate(perf: Session) -> None:
    perf.check(
        "validation cache hit rate after warm-up (Trainer)",
        "validate.cache.hit_rate",
        ">=",
        "gates.cache_hit_rate_min",
        lambda: "The report's steady-state validate.cache.hit_rate of a real fit (perf_summary.json).",
    )


def test_gate_validation_maps_computed_after_warmup(perf: Session) -> None:
    perf.check(
        "maps computed per validation epoch after warm-up (Trainer)",
        "bench.validate.maps_computed_after_warmup",
        "<=",
        "gates.maps_computed_after_warmup_max",
        lambda: (
            f"Worst of {perf.figures['bench.validate.epochs_after_warmup']:.0f} validation epochs "
            "after the first (targets_computed in perf_summary.json)."
        ),
    )


def test_speed_no_stall_at_epoch_boundaries(perf: Session) -> None:
    def explain() -> str:
        f = perf.figures
        return (
            f"Worst later epoch {1e3 * f['bench.train.first_batch_wait_s_later_max']:.1f} ms to its first "
            f"training batch; epoch 1 {1e3 * f['bench.train.first_batch_wait_s_epoch1']:.1f} ms "
            f"(ratio {f['bench.train.first_batch_wait_vs_epoch1']:.3g}). The workers should have "
            "prepared it while validation ran."
        )

    perf.check(
        "first-batch wait, later epochs / one batch of worker time",
        "bench.train.first_batch_wait_vs_batch_cost",
        "<=",
        "speed.first_batch_wait_vs_batch_cost_max",
        explain,
        confirm=True,
    )


# -- relative speed, same run ------------------------------------------------------------------------
def test_speed_fast_vs_reference_targets(perf: Session) -> None:
    def explain() -> str:
        f = perf.figures
        return (
            f"Fast {f['bench.targets.fast_ms_per_image']:.2f} ms vs reference "
            f"{f['bench.targets.reference_ms_per_image']:.2f} ms per receipt; worst A/B pair "
            f"{f['bench.targets.fast_vs_reference_ratio_min']:.2f}x."
        )

    perf.check(
        "fast vs reference targets speed ratio",
        "bench.targets.fast_vs_reference_ratio",
        ">=",
        "speed.fast_vs_reference_ratio_min",
        explain,
        confirm=True,
    )


def test_speed_profiler_hook_time_per_step(perf: Session) -> None:
    perf.check(
        "profiler hook time, % of a training step",
        "bench.overhead.hooks_pct_of_step",
        "<=",
        "speed.profiler_hooks_pct_of_step_max",
        lambda: (
            f"{perf.figures['bench.overhead.hooks_ms_per_step']:.3f} ms of hooks per "
            f"{perf.figures['bench.overhead.step_ms']:.1f} ms step."
        ),
        confirm=True,
    )


def test_speed_profiler_step_overhead(perf: Session) -> None:
    perf.check(
        "profiler step-time overhead, % (A/B)",
        "bench.overhead.step_pct",
        "<=",
        "speed.profiler_step_overhead_pct_max",
        lambda: "Median over ABBA repeats of (step with profiler / step without - 1).",
        confirm=True,
    )


def test_speed_validation_vs_training_per_sample(perf: Session) -> None:
    def explain() -> str:
        f = perf.figures
        return (
            f"Validation {1e3 * f['validate.time_per_sample_s']:.1f} ms vs training "
            f"{1e3 * f['train.time_per_sample_s']:.1f} ms per sample (steady epochs)."
        )

    perf.check(
        "validation / training time per sample",
        "val_vs_train_ratio",
        "<=",
        "speed.val_vs_train_ratio_max",
        explain,
        confirm=True,
    )


# Validation's per-image stages (OCR_PERF_INJECT_SLOWDOWN=postprocess|cleval|forward bites each).
STAGE_CHECKS = {
    "postprocess": (
        "test_speed_postprocess_vs_reference",
        "post-processing / reference post-processing (CPU)",
        "bench.evalwork.postprocess_vs_reference",
        "speed.postprocess_vs_reference_max",
    ),
    "cleval": (
        "test_speed_cleval_vs_official",
        "CLEval update / official whole-image update (CPU)",
        "bench.evalwork.cleval_vs_official",
        "speed.cleval_vs_official_max",
    ),
    "forward": (
        "test_speed_forward_vs_encoder",
        "DBNet forward / encoder alone (CPU)",
        "bench.evalwork.forward_vs_encoder",
        "speed.forward_vs_encoder_max",
    ),
}


def _stage_check(perf: Session, stage: str) -> None:
    _, name, figure, key = STAGE_CHECKS[stage]
    perf.check(
        name,
        figure,
        "<=",
        key,
        lambda: (
            f"Median of interleaved pairs on {perf.figures['bench.evalwork.images']:.0f} synthetic receipts."
        ),
        confirm=True,
    )


def test_speed_postprocess_vs_reference(perf: Session) -> None:
    _stage_check(perf, "postprocess")


def test_speed_cleval_vs_official(perf: Session) -> None:
    _stage_check(perf, "cleval")


def test_speed_forward_vs_encoder(perf: Session) -> None:
    _stage_check(perf, "forward")


# -- memory ---------------------------------------------------------------------------------------------
def test_memory_validation_peak_rss(perf: Session) -> None:
    perf.check(
        "validation peak RSS, main process (MB)",
        "validate.memory.rss_peak_mb",
        "<=",
        "memory.validate_rss_peak_mb_max",
    )


def test_memory_validation_workers_peak_rss(perf: Session) -> None:
    # PSS, not summed RSS: forked children share most pages with the parent, and summed RSS counts
    # them once per process, so it grew with every added process (the evaluator pool) without any
    # memory being used (see ocr.perf.system.memory_snapshot).
    perf.check(
        "validation peak PSS, child processes (MB)",
        "validate.memory.workers_pss_peak_mb",
        "<=",
        "memory.validate_workers_pss_peak_mb_max",
    )


# -- against a saved baseline -----------------------------------------------------------------------
def _baseline_params() -> list[Any]:
    config = load_thresholds()["baseline"]
    params = []
    for absolute, section in ((False, "figures"), (True, "absolute")):
        for figure, spec in (config.get(section) or {}).items():
            kind = "absolute" if absolute else "ratio"
            params.append(pytest.param(figure, spec, absolute, id=f"{kind}:{figure}"))
    return params


@pytest.mark.parametrize(("figure", "spec", "absolute"), _baseline_params())
def test_baseline(perf: Session, figure: str, spec: dict[str, Any], absolute: bool) -> None:
    if perf.baseline_path is None:
        pytest.skip("no --baseline given")
    try:
        perf.compare(figure, spec, absolute)
    except _Skip as why:
        pytest.skip(str(why))


# -- the suite bites ---------------------------------------------------------------------------------
# The gates the injected slowdown must trip, and two exactness gates it must not (a slower path is
# still an exact one): the failure is about speed and caching, for the right reason.
MUST_FAIL = {
    "test_gate_cache_hit_rate_after_warmup": "cache hit rate after warm-up (collate)",
    "test_gate_cache_maps_computed_after_warmup": "maps computed per epoch after warm-up (collate)",
    "test_speed_fast_vs_reference_targets": "fast vs reference targets speed ratio",
    "test_speed_no_stall_at_epoch_boundaries": "first-batch wait, later epochs / one batch of worker time",
}
MUST_PASS = (
    "test_gate_fast_targets_bit_identical_to_reference",
    "test_gate_cache_hits_bit_identical_to_recomputation",
)


def _run_injected(
    tmp_path: Path, ci: bool, select: str, extra: list[str], value: str = "1"
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update({SLOWDOWN_ENV: value, LAST_RUN_ENV: str(tmp_path / "last_run.json"), "PYTHONUNBUFFERED": "1"})
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(HERE),
        "-k",
        select,
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=--strict-markers",
        "-rf",
        "--tb=line",
        "-q",
        *extra,
        *(["--ci"] if ci else []),
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    return proc, time.perf_counter() - started


def _summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if re.search(r"\d+ (failed|passed)", line)]
    return lines[-1].strip("= ") if lines else "(no pytest summary line)"


# The CLEval injection doubles the evaluation but not the quad conversion and state updates around
# it, so the doubled ratio (0.128-0.150) sits too close to the 0.13 gate for a 2-core CI run:
# that case runs in the full suite (make test-all) until the injection doubles the whole update.
@pytest.mark.parametrize(
    "stage",
    [pytest.param(s, marks=pytest.mark.perf_full) if s == "cleval" else s for s in sorted(STAGE_CHECKS)],
)
def test_injected_stage_slowdown_is_caught(perf: Session, tmp_path: Path, stage: str) -> None:
    """``OCR_PERF_INJECT_SLOWDOWN=<stage>`` doubles one stage: its check fails, the other two pass."""
    if injected_stages():
        pytest.skip(f"{SLOWDOWN_ENV} is already set: this test starts the injected run itself")
    tests = [STAGE_CHECKS[s][0] for s in sorted(STAGE_CHECKS)]
    proc, seconds = _run_injected(tmp_path, perf.ci, " or ".join(tests), [], value=stage)
    output = proc.stdout + proc.stderr
    print(f"\n--- {SLOWDOWN_ENV}={stage}, child pytest: {_summary_line(output)} ({seconds:.0f} s wall) ---")
    failing = STAGE_CHECKS[stage][0]
    assert f"FAILED tests/performance/test_regression.py::{failing}" in output, output[-3000:]
    assert f"PERF CHECK FAILED: {STAGE_CHECKS[stage][1]}:" in output, output[-3000:]
    for other in tests:
        if other != failing:
            assert f"FAILED tests/performance/test_regression.py::{other}" not in output, output[-3000:]
    assert "1 failed, 2 passed" in output, _summary_line(output)


def test_injected_slowdown_is_caught(perf: Session, tmp_path: Path) -> None:
    """With ``OCR_PERF_INJECT_SLOWDOWN=1`` the gates fail, each naming its check; exactness still holds."""
    if slowdown_injected():
        pytest.skip(f"{SLOWDOWN_ENV} is already set: this test starts the injected run itself")
    proc, seconds = _run_injected(tmp_path, perf.ci, " or ".join([*MUST_FAIL, *MUST_PASS]), [])
    output = proc.stdout + proc.stderr
    # One line per failure: pytest's "E   AssertionError: PERF CHECK FAILED: ..." lines.
    failures = [line for line in output.splitlines() if line.startswith("E ") and "PERF CHECK FAILED" in line]
    excerpt = "\n".join(failures) or output[-3000:]
    print(f"\n--- injected slowdown, child pytest: {_summary_line(output)} ({seconds:.0f} s wall) ---")
    print(excerpt)
    assert proc.returncode == 1, (
        f"expected the injected run to fail its gates (exit 1), got {proc.returncode}:\n{output[-4000:]}"
    )
    for test, check in MUST_FAIL.items():
        assert f"FAILED tests/performance/test_regression.py::{test}" in output, (
            f"{test} did not fail:\n{output[-4000:]}"
        )
        assert any(f"PERF CHECK FAILED: {check}:" in line for line in failures), (
            f"no readable message for {check!r}"
        )
    for test in MUST_PASS:
        assert f"FAILED tests/performance/test_regression.py::{test}" not in output, (
            f"{test} failed under injection"
        )
    assert f"{len(MUST_FAIL)} failed, {len(MUST_PASS)} passed" in output, _summary_line(output)
    record = json.loads((tmp_path / "last_run.json").read_text())
    assert record["slowdown_injected"] is True
    failed = {c["name"] for c in record["checks"] if c["passed"] is False}
    assert failed == set(MUST_FAIL.values()), failed
    perf.checks.append(
        Check(
            "injected slowdown: gates that fail",
            "-",
            "(subprocess)",
            ">=",
            float(len(MUST_FAIL)),
            float(len(failed)),
            True,
            f"{_summary_line(output)} ({seconds:.0f} s wall)",
        )
    )


@pytest.mark.perf_full
def test_injected_slowdown_fails_the_whole_suite(perf: Session, tmp_path: Path) -> None:
    """The whole suite under the slowdown, against the committed baseline: every cache/speed check trips."""
    if slowdown_injected():
        pytest.skip(f"{SLOWDOWN_ENV} is already set")
    baseline = HERE / "baselines" / "baseline.json"
    proc, seconds = _run_injected(
        tmp_path, perf.ci, "not injected and not save_baseline", ["--baseline", str(baseline)]
    )
    output = proc.stdout + proc.stderr
    print(f"\n--- whole suite, injected, child pytest: {_summary_line(output)} ({seconds:.0f} s wall) ---")
    print("\n".join(line for line in output.splitlines() if line.startswith("E ") and "PERF " in line))
    assert proc.returncode == 1, output[-4000:]
    for test in (
        *MUST_FAIL,
        "test_gate_validation_cache_hit_rate",
        "test_gate_validation_maps_computed_after_warmup",
        "test_baseline[ratio:bench.targets.fast_vs_reference_ratio]",
        "test_baseline[ratio:validate.cache.hit_rate]",
    ):
        assert f"FAILED tests/performance/test_regression.py::{test}" in output, f"{test} did not fail"
    assert "PERF REGRESSION vs baseline: bench.targets.fast_vs_reference_ratio" in output


# -- the suite's own contract ---------------------------------------------------------------------------
def test_thresholds_yaml_says_why_for_every_number() -> None:
    """Every number in thresholds.yaml has a comment on its line or right above it."""
    lines = THRESHOLDS.read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        body = line.split("#", 1)[0]
        if not re.search(r":\s*[-\d.]+\s*$|\{.*\}", body) or body.strip().endswith("{}"):
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            missing.append(f"line {i + 1}: {line.strip()}")
    assert not missing, "thresholds without a reason:\n" + "\n".join(missing)
    config = load_thresholds()
    for figure in [*config["baseline"]["figures"], *config["baseline"]["absolute"]]:
        assert group_of(figure) in ("targets", "cache", "overhead", "trainer")


@pytest.mark.perf_full
def test_save_baseline_cli_round_trip(tmp_path: Path) -> None:
    """``ocr bench --save-baseline`` writes an ocr.report/1 JSON that the suite and ``ocr report`` read."""
    from tests.helpers import run_cli

    out = tmp_path / "baseline.json"
    quick = ["target_repeats=3", "overhead_repeats=1", "overhead_steps=4", "trainer_epochs=2"]
    proc = run_cli(
        ["bench", "--save-baseline", str(out), *(a for q in quick for a in ("--set", q))], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["schema"] == "ocr.report/1"
    assert document["run"]["hardware"]["cpu_count"]
    assert document["run"]["suite"]["settings"]["target_repeats"] == 3
    config = load_thresholds()["baseline"]
    for figure in [*config["figures"], *config["absolute"]]:
        assert figure in document["figures"], figure
    report = run_cli(["report", str(out), "--no-plots", "--output", str(tmp_path / "r.md")], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    bad = run_cli(["bench", "--save-baseline", str(out), "--set", "nope=1"], cwd=tmp_path)
    assert bad.returncode == 2 and "nope=1" in bad.stderr


def test_baseline_comparison_message_and_hardware_rule(tmp_path: Path) -> None:
    """The message shows baseline, current, allowed and excess; absolute figures need equal hardware."""
    document = {
        "schema": "ocr.report/1",
        "run": {"hardware": {"cpu": "Some Other CPU", "cpu_count": 64, "cpu_affinity": 64}},
        "figures": {"bench.targets.fast_vs_reference_ratio": 8.0, "bench.targets.fast_ms_per_image": 1.0},
    }
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(document))
    session = Session(load_thresholds(), ci=False, baseline=path, workdir=tmp_path)
    session.figures.update(
        {"bench.targets.fast_vs_reference_ratio": 4.0, "bench.targets.fast_ms_per_image": 9.0}
    )
    session.measured.add("targets")  # figures given: nothing is measured
    slack = (
        load_thresholds()["baseline"]["regression_pct"] + load_thresholds()["baseline"]["noise_pct"]["local"]
    )
    allowed = 8.0 * (1 - slack / 100)
    with pytest.raises(AssertionError) as failure:
        session.compare("bench.targets.fast_vs_reference_ratio", {"better": "higher"}, absolute=False)
    message = str(failure.value)
    assert f"baseline 8, current 4, allowed >= {allowed:.4g}" in message, message
    assert f"excess beyond the allowance: {100 * (allowed - 4.0) / 8.0:.1f}% of the baseline" in message, (
        message
    )
    assert "machine-independent" in message
    with pytest.raises(_Skip, match="compared only on the baseline's hardware"):
        session.compare("bench.targets.fast_ms_per_image", {"better": "lower"}, absolute=True)
    skipped = session.checks[-1]
    assert skipped.passed is None and "'Some Other CPU', 64 CPUs" in skipped.detail
