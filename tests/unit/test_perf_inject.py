"""``OCR_PERF_INJECT_SLOWDOWN``: ``1`` keeps meaning the targets/cache bypass, names pick stages."""

from __future__ import annotations

import numpy as np
import pytest

from ocr.perf.inject import INJECT_ENV, injected, injected_stages
from ocr.targets.db_targets import slowdown_injected


@pytest.mark.parametrize(
    ("value", "stages"),
    [
        ("", set()),
        ("0", set()),
        ("1", {"targets"}),
        ("on", {"targets"}),
        ("postprocess", {"postprocess"}),
        ("postprocess, cleval,forward", {"postprocess", "cleval", "forward"}),
        ("targets,forward", {"targets", "forward"}),
    ],
)
def test_values(monkeypatch: pytest.MonkeyPatch, value: str, stages: set[str]) -> None:
    monkeypatch.setenv(INJECT_ENV, value)
    assert injected_stages() == stages
    assert slowdown_injected() == ("targets" in stages)
    assert injected("cleval") == ("cleval" in stages)


def test_postprocess_switch_doubles_the_work_not_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocr.postprocess import DBPostProcessor, db_postprocess

    pm = np.zeros((64, 64), np.float32)
    pm[10:20, 5:50] = 0.9
    meta = {"orig_size": (64, 64), "scale": 1.0}
    calls = []
    real = db_postprocess.DBPostProcessor._detect
    monkeypatch.setattr(
        db_postprocess.DBPostProcessor, "_detect", lambda s, *a: calls.append(1) or real(s, *a)
    )
    plain = DBPostProcessor()(pm, meta)
    monkeypatch.setenv(INJECT_ENV, "postprocess")
    doubled = DBPostProcessor()(pm, meta)
    assert len(calls) == 3
    np.testing.assert_array_equal(plain[0][0], doubled[0][0])
