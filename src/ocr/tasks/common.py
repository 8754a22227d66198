"""What every task shares: building the trainer, callbacks and loggers from the Hydra config."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from ocr.errors import UserInputError
from ocr.loggers import ResumableCSVLogger

log = logging.getLogger("ocr")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file and rename, so ``kill -9`` mid-save never leaves a torn last.ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save(checkpoint, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def output_dir(cfg: DictConfig) -> Path:
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # composed without @hydra.main (tests)
        return Path(cfg.paths.output_dir)


def instantiate_callbacks(cfg: DictConfig) -> list[L.Callback]:
    callbacks: list[L.Callback] = []
    for name, conf in (cfg.get("callbacks") or {}).items():
        if conf is not None and "_target_" in conf:
            callbacks.append(hydra.utils.instantiate(conf))
        elif conf is not None:
            log.debug("callback %s has no _target_; skipped", name)
    return callbacks


def instantiate_loggers(cfg: DictConfig, out: Path) -> list[Logger]:
    loggers: list[Logger] = []
    conf = cfg.get("logger")
    if conf and "_target_" in conf:
        loggers.append(hydra.utils.instantiate(conf))
    if cfg.get("csv_metrics", False) and not any(isinstance(lg, CSVLogger) for lg in loggers):
        loggers.append(ResumableCSVLogger(save_dir=str(out), name="", version=""))
    return loggers


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list[Logger] | bool) -> L.Trainer:
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()]
    )
    return trainer


def resolve_checkpoint(ckpt_path: str | None, cfg: DictConfig) -> str | None:
    """``last`` means this run dir's last.ckpt, else the newest last.ckpt of an earlier run."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path != "last":
        path = Path(str(ckpt_path)).expanduser()
        if not path.is_file():
            raise UserInputError(f"checkpoint {path} does not exist; pass ckpt_path=PATH/TO/last.ckpt")
        return str(path)
    here = output_dir(cfg) / "checkpoints" / "last.ckpt"
    if here.is_file():
        return str(here)
    runs_root = output_dir(cfg).parent
    found = sorted(runs_root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserInputError(
            f"ckpt_path=last: no checkpoints/last.ckpt under {runs_root}; pass ckpt_path=PATH explicitly"
        )
    log.info("ckpt_path=last resolved to %s", found[-1])
    return str(found[-1])


def save_resolved_config(cfg: DictConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def checkpoint_data_overrides(ckpt_path: str, cfg: DictConfig) -> dict[str, Any]:
    """Image size and target settings the checkpoint was trained with (unless given explicitly)."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    hparams = checkpoint.get("datamodule_hyper_parameters") or {}
    overrides: dict[str, Any] = {}
    size = cfg.get("image_size")
    overrides["image_size"] = int(size) if size else hparams.get("image_size", cfg.data.image_size)
    if "targets" in hparams:
        overrides["targets"] = dict(hparams["targets"])
    return overrides
