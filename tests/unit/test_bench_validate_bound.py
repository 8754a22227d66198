"""``ocr bench validate``'s CPU bound: the most images/s the measured CPU per image allows."""

from __future__ import annotations

import pytest

from ocr.bench.validate import cpu_bound


def _row(pool: int, main_ms: float, pool_ms: float) -> dict[str, float]:
    return {"pool": pool, "main_cpu_ms_per_image": main_ms, "pool_cpu_ms_per_image": pool_ms}


def test_in_process_is_bound_by_its_own_cpu() -> None:
    # one process does everything: more cores do not help it
    assert cpu_bound(_row(0, 5.0, 0.0), cores=2) == pytest.approx(200.0)
    assert cpu_bound(_row(0, 5.0, 0.0), cores=16) == pytest.approx(200.0)


def test_shared_cores_bound_the_pool_when_they_are_few() -> None:
    # 2 cores for 1.6 + 5.0 ms of CPU per image: 2 / 6.6 ms, below the main's 1 / 1.6 ms and the
    # two evaluators' 2 / 5.0 ms
    assert cpu_bound(_row(2, 1.6, 5.0), cores=2) == pytest.approx(2 / 6.6e-3)


def test_with_many_cores_the_slower_side_bounds() -> None:
    assert cpu_bound(_row(2, 1.6, 5.0), cores=16) == pytest.approx(2 / 5.0e-3)  # the evaluators
    assert cpu_bound(_row(8, 1.6, 5.0), cores=16) == pytest.approx(1 / 1.6e-3)  # the main process
