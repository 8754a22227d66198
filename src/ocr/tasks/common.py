"""What every task shares: building the trainer, callbacks and loggers from the Hydra config."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from ocr.console import configure_console
from ocr.errors import UserInputError
from ocr.loggers import ResumableCSVLogger
from ocr.tasks import checkpoint as _checkpoint

log = logging.getLogger("ocr")
# Every task imports this module once Lightning is loaded: quiet the libraries' console noise.
configure_console()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file and rename, so ``kill -9`` mid-save never leaves a torn last.ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            # Our own handle, closed even when torch's writer fails: an open descriptor of the
            # unlinked file would keep its blocks in use until the process exits.
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            # A failed save (a full disk, an interrupt) must not leave a hidden partial file that
            # keeps the disk full; the previous checkpoint at ``path`` is untouched.
            full = _disk_full(exc, path.parent)
            tmp.unlink(missing_ok=True)
            if full:
                raise UserInputError(
                    f"cannot save checkpoint {path}: no space left on its disk (the partial file was "
                    "removed); free some space or write the run elsewhere (hydra.run.dir=DIR)"
                ) from exc
            raise


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """ENOSPC, or torch's own writer failing (it hides the errno) on a disk with < 1 MiB free."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    try:
        return isinstance(exc, RuntimeError) and shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


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


def save_resolved_config(cfg: DictConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def checkpoint_data_overrides(ckpt_path: str, cfg: DictConfig) -> dict[str, Any]:
    """Image size and target settings the checkpoint was trained with (unless given explicitly)."""
    hparams = _checkpoint.checkpoint_hparams(ckpt_path)["datamodule_hyper_parameters"]
    overrides: dict[str, Any] = {}
    size = cfg.get("image_size")
    overrides["image_size"] = int(size) if size else hparams.get("image_size", cfg.data.image_size)
    if "targets" in hparams:
        overrides["targets"] = dict(hparams["targets"])
    return overrides
