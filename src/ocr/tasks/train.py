"""``ocr train``: fit with validation every epoch, checkpoints, metrics.csv and perf_summary.json."""

from __future__ import annotations

import json
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.schema import check_config
from ocr.tasks.common import (
    build_trainer,
    instantiate_callbacks,
    instantiate_loggers,
    log,
    output_dir,
    resolve_checkpoint,
    save_resolved_config,
)


def train(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg)  # every range, before the model, data or workers are built
    L.seed_everything(cfg.seed, workers=True)
    out = output_dir(cfg)
    save_resolved_config(cfg, out)
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, _convert_="all")
    trainer = build_trainer(cfg, instantiate_callbacks(cfg), instantiate_loggers(cfg, out))
    ckpt = resolve_checkpoint(cfg.get("ckpt_path"), cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.is_global_zero:
        best = next(
            (
                getattr(cb, "best_model_path", "")
                for cb in trainer.checkpoint_callbacks
                if getattr(cb, "monitor", None)
            ),
            "",
        )
        summary = {
            "precision": metrics.get("val/precision"),
            "recall": metrics.get("val/recall"),
            "hmean": metrics.get("val/hmean"),
            "iou_hmean": metrics.get("val/iou_hmean"),
            "epochs": trainer.current_epoch,
            "best_checkpoint": best,
            "last_checkpoint": str(out / "checkpoints" / "last.ckpt"),
            "run_dir": str(out),
        }
        log.info("validation after the last epoch: %s", summary)
        print(json.dumps(summary), flush=True)
    return metrics


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    train(cfg)
