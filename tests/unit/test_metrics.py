"""Detection metrics: CLEval call convention, ICDAR15 IoU rules, and sum-then-divide reduction."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from cleval.torchmetric import CLEvalMetric
from torchmetrics import Metric

from ocr.metrics import CLEvalDetectionMetric, DetectionMetrics, IoUDetectionMetric
from ocr.metrics.iou_metric import to_geometry

Poly = np.ndarray


def rect(x0: float, y0: float, x1: float, y1: float) -> Poly:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


LINE_A = rect(10, 10, 210, 30)  # 10 characters
LINE_B = rect(10, 50, 110, 70)  # 5 characters
TEXT_A, TEXT_B = "abcdefghij", "klmno"


def values(out: dict[str, torch.Tensor], *keys: str) -> list[float]:
    return [float(out[k]) for k in keys]


# --------------------------------------------------------------------------- raw cleval facts
# These pin the behaviour of cleval 0.1.1 that the wrapper's call convention works around.


def test_raw_cleval_crashes_on_none_detection_letters() -> None:
    m = CLEvalMetric()
    quads = np.stack([LINE_A.reshape(8), LINE_B.reshape(8)])
    with pytest.raises(TypeError):
        m.update(quads, quads, det_letters=None, gt_letters=[TEXT_A, TEXT_B], gt_is_dcs=[False, False])


def test_raw_cleval_explicit_dc_flags_override_the_hash_text() -> None:
    """With gt_is_dcs given, "###" is NOT don't-care any more: it counts 3 characters."""
    quads = np.stack([LINE_A.reshape(8), LINE_B.reshape(8)])
    m = CLEvalMetric()
    m.update(quads, quads, det_letters=["", ""], gt_letters=[TEXT_A, "###"], gt_is_dcs=[False, False])
    assert int(m.det_num_char_gt) == 13


# --------------------------------------------------------------------------- CLEval wrapper


def cleval_run(*images: tuple[list[Poly], list[Poly], list[str], list[bool]]) -> dict[str, torch.Tensor]:
    m = CLEvalDetectionMetric()
    for img in images:
        m.update(*img)
    return m.compute()


def test_cleval_perfect_detection() -> None:
    out = cleval_run(([LINE_A, LINE_B], [LINE_A, LINE_B], [TEXT_A, TEXT_B], [False, False]))
    assert values(out, "precision", "recall", "hmean") == pytest.approx([1.0, 1.0, 1.0])
    assert int(out["num_char_gt"]) == 15


def test_cleval_one_of_two_lines_missed_gives_the_char_share() -> None:
    out = cleval_run(([LINE_A], [LINE_A, LINE_B], [TEXT_A, TEXT_B], [False, False]))
    p, r, h = values(out, "precision", "recall", "hmean")
    assert r == pytest.approx(10 / 15, abs=1e-6)
    assert p == pytest.approx(1.0)
    assert h == pytest.approx(2 * r / (1 + r), abs=1e-6)


def test_cleval_no_detections() -> None:
    out = cleval_run(([], [LINE_A, LINE_B], [TEXT_A, TEXT_B], [False, False]))
    assert values(out, "precision", "recall", "hmean") == [0.0, 0.0, 0.0]
    assert int(out["num_char_gt"]) == 15


def test_cleval_no_gt_detections_are_false_positives() -> None:
    out = cleval_run(([LINE_A], [], [], []))
    assert values(out, "precision", "recall", "hmean") == [0.0, 0.0, 0.0]
    assert int(out["num_char_fp"]) > 0


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_cleval_empty_image_and_empty_epoch() -> None:
    assert values(cleval_run(([], [], [], [])), "precision", "recall", "hmean") == [0.0, 0.0, 0.0]
    assert values(CLEvalDetectionMetric().compute(), "hmean") == [0.0]


@pytest.mark.parametrize(("text", "ignore"), [("###", False), ("TOTAL", True)])
def test_cleval_dont_care_by_text_or_flag(text: str, ignore: bool) -> None:
    """A detection on a don't-care line is neither TP nor FP; the line is not in the recall base."""
    out = cleval_run(([LINE_A, LINE_B], [LINE_A, LINE_B], [TEXT_A, text], [False, ignore]))
    assert values(out, "precision", "recall", "hmean") == pytest.approx([1.0, 1.0, 1.0])
    assert int(out["num_char_gt"]) == 10
    out = cleval_run(([LINE_A], [LINE_A, LINE_B], [TEXT_A, text], [False, ignore]))
    assert values(out, "recall") == pytest.approx([1.0])


def test_cleval_all_gt_ignored() -> None:
    out = cleval_run(([LINE_A], [LINE_A, LINE_B], ["###", "x"], [True, True]))
    assert values(out, "precision", "recall", "hmean") == [0.0, 0.0, 0.0]
    assert int(out["num_char_gt"]) == 0 and int(out["num_char_fp"]) == 0


def test_cleval_empty_transcript_gets_placeholder_characters() -> None:
    out = cleval_run(([LINE_A], [LINE_A, LINE_B], ["", ""], [False, False]))
    p, r, _ = values(out, "precision", "recall", "hmean")
    assert p == pytest.approx(1.0)
    # placeholder length = round(0.5 + aspect) as cleval's own pseudo length: 200x20 -> 10, 100x20 -> 5
    assert int(out["num_char_gt"]) == 10 + 5
    assert r == pytest.approx(10 / 15, abs=1e-6)


def test_cleval_polygon_gt_goes_through_min_area_rect() -> None:
    gt8 = np.array([[10, 10], [110, 10], [210, 10], [210, 30], [110, 30], [10, 30]], np.float32)
    out = cleval_run(([LINE_A], [gt8], [TEXT_A], [False]))
    assert values(out, "precision", "recall", "hmean") == pytest.approx([1.0, 1.0, 1.0])


def test_cleval_split_detection_is_penalised() -> None:
    halves = [rect(10, 10, 110, 30), rect(110, 10, 210, 30)]
    out = cleval_run((halves, [LINE_A], [TEXT_A], [False]))
    assert float(out["recall"]) == pytest.approx((10 - 1) / 10, abs=1e-6)  # granularity penalty 1
    assert int(out["num_splitted"]) == 1


def random_receipt(
    rng: np.random.Generator, n: int = 50
) -> tuple[list[Poly], list[Poly], list[str], list[bool]]:
    """Dense receipt with jittered, split, merged, missing and spurious detections + DC lines."""
    preds, gts, texts, ign = [], [], [], []
    for i in range(n):
        x0, w, y0, h = rng.uniform(20, 200), rng.uniform(60, 400), 20 + i * 22, rng.uniform(14, 21)
        gts.append(rect(x0, y0, x0 + w, y0 + h))
        dc = bool(rng.random() < 0.1)
        texts.append("###" if dc else "".join(rng.choice(list("ab12"), size=max(1, int(w / 12)))))
        ign.append(dc)
        r = rng.random()
        jit = rng.normal(0, 2, size=(4, 2)).astype(np.float32)
        if r < 0.1:
            continue
        if r < 0.2:
            preds += [rect(x0, y0, x0 + w / 2, y0 + h) + jit, rect(x0 + w / 2, y0, x0 + w, y0 + h) + jit]
        elif r < 0.25:
            preds.append(rect(x0, y0, x0 + w, y0 + h + 22) + jit)  # merges with the next line
        else:
            preds.append(gts[-1] + jit)
    for _ in range(3):
        x0, y0 = rng.uniform(0, 600), rng.uniform(0, 1100)
        preds.append(rect(x0, y0, x0 + 60, y0 + 15))
    return preds, gts, texts, ign


def test_cleval_group_split_equals_whole_image_evaluation() -> None:
    """The fast path (cleval's evaluation per overlap group, one accumulate per image) must give
    exactly the states of the official CLEvalMetric.update on the whole image."""
    rng = np.random.default_rng(0)
    fast, whole = CLEvalDetectionMetric(split_groups=True), CLEvalDetectionMetric(split_groups=False)
    for _ in range(6):
        img = random_receipt(rng)
        fast.update(*img)
        whole.update(*img)
    det_states = [
        name for name in fast._defaults if not name.startswith("e2e_")
    ]  # e2e is off in the fast path
    assert len(det_states) == 10
    for name in det_states:
        assert torch.equal(getattr(fast, name), getattr(whole, name)), name
    assert int(fast.num_merged) > 0 and int(fast.num_splitted) > 0
    # our compute() reproduces cleval's own compute() on the same states
    official = CLEvalMetric.compute(fast)
    ours = fast.compute()
    for key, off in (("recall", "det_r"), ("precision", "det_p"), ("hmean", "det_h")):
        assert float(ours[key]) == pytest.approx(float(official[off]), abs=1e-6)


# --------------------------------------------------------------------------- IoU metric


def iou_run(*images: tuple[list[Poly], list[Poly], list[bool]]) -> IoUDetectionMetric:
    m = IoUDetectionMetric()
    for img in images:
        m.update(*img)
    return m


def counts(m: IoUDetectionMetric) -> tuple[int, int, int]:
    return int(m.num_gt), int(m.num_det), int(m.num_matched)


def test_iou_perfect() -> None:
    m = iou_run(([LINE_A, LINE_B], [LINE_A, LINE_B], [False, False]))
    assert values(m.compute(), "precision", "recall", "hmean") == pytest.approx([1.0, 1.0, 1.0])
    assert m.num_gt.dtype == torch.int64


def test_iou_empty_inputs() -> None:
    m = iou_run(([], [LINE_A], [False]))
    assert counts(m) == (1, 0, 0) and values(m.compute(), "precision", "recall", "hmean") == [0, 0, 0]
    m = iou_run(([LINE_A], [], []))
    assert counts(m) == (0, 1, 0) and values(m.compute(), "hmean") == [0.0]
    m = iou_run(([], [], []))
    assert counts(m) == (0, 0, 0) and values(m.compute(), "hmean") == [0.0]


def test_iou_partial_matches_and_threshold() -> None:
    gt = [LINE_A, LINE_B, rect(300, 10, 400, 30)]
    shifted = rect(10, 50, 110, 70) + np.float32([45, 0])  # IoU 55/145 ~ 0.38 < 0.5
    fp = rect(500, 500, 560, 520)
    m = iou_run(([LINE_A + 1.0, shifted, fp], gt, [False] * 3))
    assert counts(m) == (3, 3, 1)
    p, r, h = values(m.compute(), "precision", "recall", "hmean")
    assert (p, r) == pytest.approx((1 / 3, 1 / 3)) and h == pytest.approx(1 / 3)


def test_iou_matching_is_one_to_one_and_prefers_higher_iou() -> None:
    near = rect(10, 10, 200, 30)  # IoU 0.95 with LINE_A
    far = rect(10, 10, 150, 30)  # IoU 0.70 with LINE_A
    m = iou_run(([far, near], [LINE_A], [False]))
    assert counts(m) == (1, 2, 1)
    # greedy by IoU: the better detection takes LINE_A, the weaker one matches the second GT
    gt2 = rect(10, 10, 140, 30)
    assert counts(iou_run(([near, far], [LINE_A, gt2], [False, False]))) == (2, 2, 2)
    assert counts(iou_run(([far, near], [gt2, LINE_A], [False, False]))) == (2, 2, 2)


def test_iou_dont_care_rules() -> None:
    dc = rect(300, 10, 400, 30)
    on_dc = rect(305, 12, 395, 28)  # fully inside the DC box -> not counted as a detection
    half_on_dc = rect(360, 10, 480, 30)  # 40/120 of its area on DC -> still a (false) detection
    m = iou_run(([LINE_A, on_dc, half_on_dc], [LINE_A, dc], [False, True]))
    assert counts(m) == (1, 2, 1)
    # all GT ignored: nothing to find, nothing wrong either
    m = iou_run(([on_dc], [dc], [True]))
    assert counts(m) == (0, 0, 0) and values(m.compute(), "hmean") == [0.0]


def test_iou_invalid_and_degenerate_polygons_do_not_crash() -> None:
    bowtie = np.array([[10, 10], [210, 30], [210, 10], [10, 30]], np.float32)  # self-intersecting
    line = np.array([[0, 0], [5, 5]], np.float32)
    flat = rect(10, 10, 210, 10)  # zero area
    # make_valid keeps both lobes of the bow-tie (area 2000); buffer(0) would keep one (1000)
    assert to_geometry(bowtie).area == pytest.approx(2000.0)
    m = iou_run(([bowtie, line, flat], [LINE_A], [False]))
    # IoU with LINE_A (4000) is exactly 0.5: not a match (IoU > 0.5, as the ICDAR15 script)
    assert counts(m) == (1, 3, 0)
    half = rect(10, 10, 110, 30)  # the left half of LINE_A: IoU exactly 0.5 as well
    assert counts(iou_run(([half], [LINE_A], [False]))) == (1, 1, 0)
    assert counts(iou_run(([half + np.float32([0.0, 0.0])], [rect(10, 10, 109, 30)], [False]))) == (1, 1, 1)


# --------------------------------------------------------------------------- DetectionMetrics + DDP


def two_shards() -> tuple[list, list]:
    """Shard A: one easy image (h = 1). Shard B: one image where 9 lines are all missed (h = 0)."""
    easy = ([LINE_A], [LINE_A], [TEXT_A], [False])
    gts = [rect(10, 10 + 30 * i, 210, 30 + 30 * i) for i in range(9)]
    hard = ([], gts, [TEXT_A] * 9, [False] * 9)
    return [easy], [hard]


def feed(m: DetectionMetrics, images: list) -> DetectionMetrics:
    for img in images:
        m.update(*img)
    return m


def test_detection_metrics_keys_and_values() -> None:
    shard_a, _ = two_shards()
    out = feed(DetectionMetrics(), shard_a).compute()
    assert {
        "precision",
        "recall",
        "hmean",
        "iou_precision",
        "iou_recall",
        "iou_hmean",
        "num_gt",
        "num_det",
        "num_matched",
        "num_char_gt",
    } <= set(out)
    assert all(v.ndim == 0 for v in out.values())
    assert values(out, "hmean", "iou_hmean") == pytest.approx([1.0, 1.0])


def test_merged_shards_equal_one_pass_and_not_the_mean_of_shards() -> None:
    shard_a, shard_b = two_shards()
    one_pass = feed(DetectionMetrics(), shard_a + shard_b).compute()

    ma, mb = feed(DetectionMetrics(), shard_a), feed(DetectionMetrics(), shard_b)
    per_shard = [ma.compute(), mb.compute()]
    ma.merge_state(mb)  # also drops the compute() cache from per_shard above
    merged = ma.compute()

    for key in one_pass:
        assert float(merged[key]) == pytest.approx(float(one_pass[key]), abs=1e-6), key
    # global: P = 1, R = 1/10 -> H = 2/11; the mean of the shards' hmeans would be 0.5
    assert float(one_pass["iou_hmean"]) == pytest.approx(2 / 11, abs=1e-6)
    assert float(one_pass["hmean"]) == pytest.approx(2 / 11, abs=1e-6)
    for key in ("hmean", "iou_hmean"):
        mean_of_shards = np.mean([float(s[key]) for s in per_shard])
        assert mean_of_shards == pytest.approx(0.5)
        assert abs(mean_of_shards - float(one_pass[key])) > 0.3


def fake_two_rank_gather(metric: Metric, other: Metric) -> Callable[..., list[torch.Tensor]]:
    """Stand-in for all_gather: torchmetrics gathers the states in ``_reductions`` order."""
    others = iter([getattr(other, name) for name in metric._reductions])

    def gather(tensor: torch.Tensor, group: object = None) -> list[torch.Tensor]:
        return [tensor, next(others)]

    return gather


def test_ddp_sync_path_sums_states_before_the_ratio() -> None:
    """Run the real torchmetrics sync (dim_zero_sum reductions) with a faked 2-rank all_gather."""
    shard_a, shard_b = two_shards()
    one_pass = feed(DetectionMetrics(), shard_a + shard_b).compute()
    rank0, rank1 = feed(DetectionMetrics(), shard_a), feed(DetectionMetrics(), shard_b)
    for child0, child1 in ((rank0.cleval, rank1.cleval), (rank0.iou, rank1.iou)):
        child0.dist_sync_fn = fake_two_rank_gather(child0, child1)
        child0.distributed_available_fn = lambda: True
    synced = rank0.compute()
    for key in one_pass:
        assert float(synced[key]) == pytest.approx(float(one_pass[key]), abs=1e-6), key
    # states are restored (unsynced) after compute, as torchmetrics does under DDP
    assert int(rank0.iou.num_gt) == 1


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_reset_clears_everything() -> None:
    shard_a, _ = two_shards()
    m = feed(DetectionMetrics(), shard_a)
    m.reset()
    out = m.compute()
    assert all(float(v) == 0.0 for v in out.values())
