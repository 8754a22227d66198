"""Workers and prefetch depth from the cores of this rank, and one warning in words on oversubscription."""

from __future__ import annotations

import logging
import os
import warnings

import pytest
from torch.utils.data import DataLoader

from ocr.data import loader_defaults
from ocr.data.loader import TimedDataLoader
from ocr.data.loader_defaults import default_prefetch, plan_loaders
from ocr.errors import UserInputError


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(loader_defaults, "_WARNED", set())
    return monkeypatch


def _with_cores(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)


@pytest.mark.parametrize(
    ("n", "local", "workers"), [(16, 1, 15), (16, 2, 7), (2, 1, 1), (1, 1, 1), (8, 8, 1)]
)
def test_workers_per_rank_from_the_affinity_mask(
    cores: pytest.MonkeyPatch, n: int, local: int, workers: int
) -> None:
    _with_cores(cores, n)
    plan = plan_loaders(None, None, local_world_size=local)
    assert plan.train_workers == plan.val_workers == workers
    assert plan.auto_workers and plan.auto_prefetch
    assert plan.cores == max(1, n // local)


def test_prefetch_keeps_four_batches_in_flight() -> None:
    assert [default_prefetch(w) for w in (0, 1, 2, 3, 4, 12)] == [None, 4, 2, 2, 2, 2]
    assert plan_loaders(3, 7).prefetch_factor == 7, "the user's value wins"
    assert plan_loaders(0, None).prefetch_factor is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_values_are_a_clear_error(bad: object) -> None:
    with pytest.raises(UserInputError, match=r"data\.loader\.num_workers"):
        plan_loaders(bad, None)  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match=r"data\.loader\.prefetch_factor"):
        plan_loaders(1, 0)


def test_defaults_do_not_warn(cores: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for n in (1, 2, 16):
        _with_cores(cores, n)
        plan = plan_loaders(None, None)
        assert plan.oversubscription() is None, n


def test_oversubscription_warns_once_in_words(
    cores: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: 2 training + 2 validation workers and 2 torch threads on 2 cores."""
    _with_cores(cores, 2)
    with caplog.at_level(logging.WARNING, logger="ocr.data.loader_defaults"):
        for _ in range(3):  # e.g. train and val loaders, a second fit in the same process
            plan_loaders(2, None, main_threads=2).warn_once()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    text = messages[0]
    assert "oversubscribed" in text and "2 DataLoader workers" in text and "2 torch threads" in text
    assert "2 cores for this rank" in text and "data.loader.num_workers=1" in text


def test_pytorch_generic_warning_is_replaced() -> None:
    workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 1
    data = list(range(4))
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        DataLoader(data, num_workers=workers)
    assert any("worker processes in total" in str(w.message) for w in plain), "PyTorch's own check"
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        TimedDataLoader(data, num_workers=workers)
    assert not any("worker processes in total" in str(w.message) for w in ours)
