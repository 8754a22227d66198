"""What a run source is: a detector and a loader (the table of sources is in ``__init__``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocr.report.run import RunData


@dataclass(frozen=True)
class Source:
    name: str
    detect: Callable[[str], bool]
    load: Callable[[str], RunData]
    describe: str


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any], str | None]:
    """An optional YAML file beside a run (its settings): the mapping, or ``{}`` when the file is
    absent or holds no mapping; and the error's type name when it could not be read. The settings
    only enrich the report, so a bad file never fails it."""
    if not path.is_file():
        return {}, None
    try:
        loaded = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {}, type(exc).__name__
    return (loaded if isinstance(loaded, dict) else {}), None
