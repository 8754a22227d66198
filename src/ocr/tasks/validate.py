"""``ocr validate``: evaluate a checkpoint; the last stdout line is the metrics as one JSON object.

torch, Lightning and the model are imported only once the checkpoint has been found and checked,
so a wrong ``ckpt_path`` is answered in about a second.
"""

from __future__ import annotations

import json
from typing import Any

import hydra
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.schema import check_config
from ocr.tasks.checkpoint import resolve_model_checkpoint
from ocr.tasks.run_paths import output_dir

KEYS = ("precision", "recall", "hmean", "iou_precision", "iou_recall", "iou_hmean")


def validate(cfg: DictConfig) -> dict[str, Any]:
    check_config(cfg)  # every range, before the model, data or workers are built
    ckpt = resolve_model_checkpoint(cfg)  # ckpt_path (checked), else the shipped weights of model=

    import lightning as L

    from ocr.models.lit_module import DBNetModule
    from ocr.tasks.common import (
        build_trainer,
        checkpoint_data_overrides,
        instantiate_callbacks,
        instantiate_loggers,
    )

    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data, **checkpoint_data_overrides(ckpt, cfg), _convert_="all")
    model = DBNetModule.load_from_checkpoint(ckpt, map_location="cpu")
    model.configure_postprocess(**{k: v for k, v in (cfg.get("postprocess") or {}).items() if v is not None})
    model.configure_evaluator(**{k: v for k, v in (cfg.get("evaluator") or {}).items() if v is not None})
    out = output_dir(cfg)
    trainer = build_trainer(cfg, instantiate_callbacks(cfg), instantiate_loggers(cfg, out) or False)
    trainer.validate(model, datamodule=datamodule, verbose=False)
    values = getattr(model, "last_val_metrics", {})
    result: dict[str, Any] = {k: values.get(f"val/{k}") for k in KEYS}
    result["images"] = int(values.get("val/num_images", 0))
    if trainer.is_global_zero:
        # Every reduced value (ratios and the summed counts behind them) next to the run's files.
        (out / "metrics.json").write_text(
            json.dumps({k.removeprefix("val/"): v for k, v in values.items()}, indent=1)
        )
        print(json.dumps(result), flush=True)
    return result


@hydra.main(config_path=str(config_dir()), config_name="validate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    validate(cfg)
