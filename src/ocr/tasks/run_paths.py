"""The run directory of a task, importable without torch or Lightning (the CLI's error paths)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue


def output_dir(cfg: DictConfig) -> Path:
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, MissingMandatoryValue):  # composed without @hydra.main (tests)
        return Path(cfg.paths.output_dir)


__all__ = ["output_dir"]
