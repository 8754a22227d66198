"""Where the Hydra configs live: ``$OCR_CONFIG_DIR``, else the installed package's ``ocr/configs``
(a wheel, see ``setup.py``), else the source checkout's ``configs/`` (an editable install)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def config_dir() -> Path:
    """The configs folder; also puts the group schemas in Hydra's ConfigStore, which the YAMLs need."""
    from ocr.schema import register

    register()
    env = os.environ.get("OCR_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(str(files("ocr") / "configs")))
    candidates.append(Path(__file__).resolve().parents[2] / "configs")
    for path in candidates:
        if (path / "train.yaml").is_file():
            return path
    raise FileNotFoundError(
        "cannot find the ocr configs (configs/train.yaml). Reinstall the package (`pip install .`), "
        "or set OCR_CONFIG_DIR to the configs folder."
    )


def compose_config(task: str, overrides: list[str], run_dir: Path | str | None = None) -> DictConfig:
    """The ``task`` config (``train``, ``validate``...) with ``overrides``, composed outside a Hydra app.

    With ``run_dir`` the config also gets its ``hydra`` node, Hydra's run-time config is set and
    ``paths.output_dir`` points there, as in a run launched from the command line (the callbacks
    and loggers read both).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    run = [f"hydra.run.dir={run_dir}"] if run_dir is not None else []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=task, overrides=[*overrides, *run], return_hydra_config=bool(run))
    if run_dir is not None:
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)
    return cfg
