"""Bottleneck rules on constructed summaries: each fires on its pattern, and only then."""

from __future__ import annotations

import pytest

from ocr.report.errors import ReportError
from ocr.report.rule_limits import RuleLimits, load_rule_limits
from ocr.report.rules import RULES, rule_doc
from tests.unit.test_report_builders import analyze, epoch, healthy_epochs, summary


def rules_fired(doc: dict, limits: RuleLimits | None = None) -> dict[str, list]:
    out: dict[str, list] = {}
    for finding in analyze(doc, limits).findings:
        out.setdefault(finding.rule, []).append(finding)
    return out


def test_healthy_run_has_no_bottleneck() -> None:
    fired = rules_fired(summary(healthy_epochs()))
    assert list(fired) == ["none"]
    finding = fired["none"][0]
    assert finding.title == "No bottleneck found"
    assert any("data wait 5.0%" in line for line in finding.evidence)


def test_data_wait_recommends_workers_from_core_count() -> None:
    doc = summary(
        healthy_epochs(train={"shares": {"data_wait": 0.4, "compute": 0.55}}), cpu_count=8, num_workers=2
    )
    finding = rules_fired(doc)["data_wait"][0]
    assert "train" in finding.title.lower() and "40.0%" in finding.title
    assert "Raise data.loader.num_workers from 2 to 7" in finding.recommendation
    assert "8 cores" in finding.recommendation
    assert finding.numbers["data_wait_share"] == pytest.approx(0.4)


def test_data_wait_with_all_cores_used_points_at_sample_cost_and_cache() -> None:
    doc = summary(
        healthy_epochs(
            train={
                "shares": {"data_wait": 0.5, "compute": 0.45},
                "worker": {"decode": 0.002, "transform": 0.002, "targets": 0.02, "collate": 0.001},
            }
        ),
        cpu_count=2,
        num_workers=2,
    )
    text = rules_fired(doc)["data_wait"][0].recommendation
    assert "already cover the machine's 2 cores" in text
    assert "data.cache.enabled=true" in text


def test_data_wait_on_a_few_batches_blames_the_first_batch() -> None:
    doc = summary(healthy_epochs(validate={"shares": {"data_wait": 0.4, "compute": 0.5}, "batches": 1}))
    finding = rules_fired(doc)["data_wait"][0]
    assert "only 1 batch per validate epoch" in finding.evidence
    assert finding.recommendation.startswith(
        "With this few batches most of the wait is the epoch's first batch"
    )


def test_postprocess_dominating_validation() -> None:
    shares = {"data_wait": 0.02, "compute": 0.3, "postprocess": 0.55, "metric_update": 0.1}
    finding = rules_fired(summary(healthy_epochs(validate={"shares": shares})))["validation_postprocess"][0]
    assert finding.title.startswith("Post-processing dominates validation")
    assert "max_candidates" in finding.recommendation


def test_metric_dominating_validation() -> None:
    shares = {
        "data_wait": 0.02,
        "compute": 0.3,
        "postprocess": 0.05,
        "metric_update": 0.4,
        "metric_compute": 0.2,
    }
    finding = rules_fired(summary(healthy_epochs(validate={"shares": shares})))["validation_postprocess"][0]
    assert finding.title.startswith("Metric computation dominates validation")
    assert "check_val_every_n_epoch" in finding.recommendation


def test_variance_source() -> None:
    doc = summary(healthy_epochs(train={"p95_over_median": {"compute": 3.0}}))
    finding = rules_fired(doc)["variance"][0]
    assert "compute" in finding.title and "3.0x" in finding.title
    assert any("p95" in line for line in finding.evidence)
    # a noisy stage below the minimum share is not reported
    quiet = summary(
        healthy_epochs(
            train={"shares": {"data_wait": 0.01, "compute": 0.95}, "p95_over_median": {"data_wait": 5.0}}
        )
    )
    assert "variance" not in rules_fired(quiet)


def test_validation_slower_than_training() -> None:
    doc = summary(healthy_epochs(validate={"wall": 20.0, "samples": 50}))
    finding = rules_fired(doc)["val_slower_than_train"][0]
    assert finding.numbers["val_vs_train_ratio"] == pytest.approx(4.0)
    assert "val_batch_size" in finding.recommendation


def test_low_attribution() -> None:
    doc = summary(healthy_epochs(train={"shares": {"data_wait": 0.05, "compute": 0.55}}))
    finding = rules_fired(doc)["low_attribution"][0]
    assert finding.title.startswith("40.0% of the train epoch")
    assert "trainer.profiler=simple" in finding.recommendation


def test_cache_hit_rate_low_after_first_epoch() -> None:
    epochs = []
    for i, rate in enumerate([0.0, 0.1, 0.2]):
        epochs += [epoch("train", i), epoch("validate", i, wall=2.0, samples=50, hit_rate=rate)]
    finding = rules_fired(summary(epochs, cache_enabled=True))["cache_hit_rate"][0]
    assert "validate" in finding.title and "15.0%" in finding.title
    assert "max_bytes" in finding.recommendation
    good = []
    for i, rate in enumerate([0.0, 1.0, 1.0]):
        good += [epoch("train", i), epoch("validate", i, wall=2.0, samples=50, hit_rate=rate)]
    assert "cache_hit_rate" not in rules_fired(summary(good, cache_enabled=True))


def test_cache_hits_slower_than_computing() -> None:
    epochs = []
    for i, (rate, targets) in enumerate([(0.0, 0.002), (1.0, 0.003), (1.0, 0.003)]):
        worker = {"decode": 0.01, "transform": 0.005, "targets": targets, "collate": 0.001}
        epochs += [
            epoch("train", i),
            epoch("validate", i, wall=2.0, samples=50, hit_rate=rate, worker=worker),
        ]
    analysis = analyze(summary(epochs, cache_enabled=True))
    finding = next(f for f in analysis.findings if f.rule == "cache_slow_hits")
    assert "cost 150% of computing" in finding.title
    assert analysis.figures["cache.time_saved_s"] == pytest.approx(
        100 * (0.002 - 0.003)
    )  # negative: not clamped


def test_worker_targets_dominating() -> None:
    worker = {"decode": 0.002, "transform": 0.002, "targets": 0.03, "collate": 0.001}
    finding = rules_fired(summary(healthy_epochs(train={"worker": worker})))["worker_targets"][0]
    assert "Target maps dominate train" in finding.title
    assert "data.cache.enabled=true" in finding.recommendation


def test_memory_growth() -> None:
    epochs = [epoch("train", i, rss=1000.0 * (1 + 0.1 * i)) for i in range(6)]
    finding = rules_fired(summary(epochs))["memory_growth"][0]
    # a fitted rise of 4 x 100 MB over 1100 MB at epoch 1
    assert finding.title == "Memory of the main process keeps growing: +36.4% over epochs 1-5"
    assert finding.evidence[0] == "RSS 1100 MB -> 1500 MB, epoch 1 -> 5"
    assert "left out: epoch 0 (warm-up)" in finding.evidence
    # too few epochs after the warm-up to call a trend
    short = [epoch("train", i, rss=1000.0 * (1 + 0.5 * i)) for i in range(3)]
    assert "memory_growth" not in rules_fired(summary(short))


def test_findings_are_ranked_by_impact() -> None:
    doc = summary(
        healthy_epochs(
            train={"shares": {"data_wait": 0.45, "compute": 0.3}, "p95_over_median": {"compute": 2.0}}
        )
    )
    findings = analyze(doc).findings
    assert [f.rule for f in findings][:2] == ["data_wait", "low_attribution"]
    assert [f.impact for f in findings] == sorted((f.impact for f in findings), reverse=True)


def test_rule_limits_are_configurable(tmp_path) -> None:
    doc = summary(healthy_epochs(train={"shares": {"data_wait": 0.3, "compute": 0.65}}))
    assert "data_wait" in rules_fired(doc)
    assert "data_wait" not in rules_fired(doc, RuleLimits(data_wait_share=0.5))
    path = tmp_path / "limits.yaml"
    path.write_text("data_wait_share: 0.5\n")
    assert load_rule_limits(str(path), ["variance_ratio=2"]) == RuleLimits(
        data_wait_share=0.5, variance_ratio=2.0
    )
    with pytest.raises(ReportError, match="unknown rule limit"):
        load_rule_limits(None, ["nope=1"])


def test_every_rule_is_registered_with_a_doc() -> None:
    names = {r.__name__ for r in RULES}
    assert {
        "data_wait",
        "validation_postprocess",
        "variance",
        "val_slower_than_train",
        "low_attribution",
        "cache_hit_rate",
        "worker_targets",
        "memory_growth",
    } <= names
    assert all(rule_doc(r) for r in RULES)


def test_h2d_variance_does_not_prescribe_pin_memory_when_it_is_on() -> None:
    doc = summary(
        healthy_epochs(train={"shares": {"h2d": 0.1, "compute": 0.85}, "p95_over_median": {"h2d": 2.0}})
    )
    assert "enable data.loader.pin_memory=true" in rules_fired(doc)["variance"][0].recommendation
    doc["run"]["hparams"] = {"data": {"loader": {"pin_memory": True}}}  # as the profiler records it
    text = rules_fired(doc)["variance"][0].recommendation
    assert "pin_memory is already on" in text and "enable data.loader.pin_memory" not in text
