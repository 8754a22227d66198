"""``ocr train``: fit with validation every epoch, checkpoints, metrics.csv and perf_summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.schema import check_config
from ocr.tasks.checkpoint import check_checkpoint
from ocr.tasks.run_paths import output_dir

if TYPE_CHECKING:  # torch and Lightning load only once the checkpoint checks have passed
    import lightning as L


def perf_summary_path(trainer: L.Trainer) -> Path | None:
    """Where the performance profiler wrote ``perf_summary.json`` (``None``: not written)."""
    from ocr.callbacks.performance_profiler import PerformanceProfilerCallback

    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, PerformanceProfilerCallback) and callback.enabled and callback.summary_file:
            path = callback.summary_path(trainer)
            return path if path.is_file() else None
    return None


def end_of_run_lines(best_checkpoint: str, perf_summary: Path | None) -> list[str]:
    """What to look at and what to run next, in words a new user can copy."""
    lines = [
        f"best checkpoint: {best_checkpoint or '(none: no validation ran)'}",
        f"perf summary: {perf_summary if perf_summary else '(not written: profiler disabled)'}",
    ]
    if best_checkpoint:
        lines.append(
            "try it on a folder of images: "
            f"ocr predict ckpt_path={best_checkpoint} input=DIR output=submission.csv visualize=overlays"
        )
    return lines


def train(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg)  # every range, before the model, data or workers are built
    out = output_dir(cfg)
    # A resume checkpoint is checked before the data, model and workers are built (and before
    # torch is imported: a wrong path is answered at once).
    ckpt = check_checkpoint(cfg.get("ckpt_path"), out)

    import lightning as L

    from ocr.tasks.common import (
        build_trainer,
        instantiate_callbacks,
        instantiate_loggers,
        log,
        save_resolved_config,
    )

    L.seed_everything(cfg.seed, workers=True)
    save_resolved_config(cfg, out)
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, _convert_="all")
    trainer = build_trainer(cfg, instantiate_callbacks(cfg), instantiate_loggers(cfg, out))
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
        for line in end_of_run_lines(best, perf_summary_path(trainer)):
            log.info("%s", line)
        print(json.dumps(summary), flush=True)
    return metrics


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    train(cfg)
