"""What a run source is: a detector and a loader (the table of sources is in ``__init__``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocr.report.run import RunData


@dataclass(frozen=True)
class Source:
    name: str
    detect: Callable[[str], bool]
    load: Callable[[str], RunData]
    describe: str
