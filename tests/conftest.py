"""Shared fixtures, and the performance suite's command-line options.

The options live here, in the root conftest, because pytest only registers ``pytest_addoption``
from conftest files it loads at start-up: options defined in a test module are never registered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SROIE_ROOT = REPO_ROOT.parent / "shared" / "datasets" / "sroie"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ocr performance")
    group.addoption(
        "--baseline",
        action="store",
        default=None,
        metavar="PATH",
        help="baseline JSON (written by `ocr bench --save-baseline`) to compare medians against",
    )
    group.addoption(
        "--ci",
        action="store_true",
        default=False,
        help="CI mode: fewer repeats, and the noise tolerance from thresholds.yaml's `ci` section",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/performance" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.performance)


@pytest.fixture(scope="session")
def sroie_root() -> Path:
    """The real SROIE receipts beside the repository; tests that need them skip when absent."""
    if not (SROIE_ROOT / "val" / "gt").is_dir():
        pytest.skip(f"real SROIE data not found at {SROIE_ROOT}")
    return SROIE_ROOT


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Synthetic renders and target caches go to a per-session folder unless the caller set one."""
    if "OCR_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["OCR_CACHE_DIR"] = str(tmp_path_factory.mktemp("ocr-cache"))
    yield
    os.environ.pop("OCR_CACHE_DIR", None)
