"""``ocr predict``: a submission CSV (``filename,polygons``) and optional overlay PNGs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, cast

import cv2
import hydra
import lightning as L
import numpy as np
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.data.image_io import read_image
from ocr.models.lit_module import DBNetModule
from ocr.schema import check_config
from ocr.tasks.common import (
    build_trainer,
    checkpoint_data_overrides,
    instantiate_callbacks,
    log,
    resolve_checkpoint,
)


def format_polygons(polygons: list[np.ndarray]) -> str:
    """``x1 y1 x2 y2 ...`` per polygon (integers, original pixels), polygons joined by ``|``."""
    return "|".join(" ".join(str(round(float(v))) for v in np.asarray(p).reshape(-1)) for p in polygons)


def draw_overlay(image: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(image.shape[:2]) / 800))
    pts = [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in polygons]
    cv2.polylines(canvas, pts, isClosed=True, color=(0, 0, 255), thickness=thickness)
    return canvas


def write_predictions(results: list[dict[str, Any]], output: Path, visualize: Path | None) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "polygons"])
        for item in results:
            writer.writerow([item["name"], format_polygons(item["polygons"])])
    if visualize is not None:
        visualize.mkdir(parents=True, exist_ok=True)
        for item in results:
            path = item["meta"].get("path")
            if path:
                overlay = draw_overlay(read_image(path), item["polygons"])
                cv2.imwrite(str(visualize / (Path(item["name"]).stem + ".png")), overlay)
    return len(results)


def predict(cfg: DictConfig) -> Path:
    check_config(cfg)  # every range, before the model, data or workers are built
    L.seed_everything(cfg.seed, workers=True)
    ckpt = resolve_checkpoint(cfg.ckpt_path, cfg)
    assert ckpt is not None
    datamodule = hydra.utils.instantiate(
        cfg.data, predict_input=str(cfg.input), **checkpoint_data_overrides(ckpt, cfg), _convert_="all"
    )
    model = DBNetModule.load_from_checkpoint(ckpt, map_location="cpu")
    model.configure_postprocess(**{k: v for k, v in (cfg.get("postprocess") or {}).items() if v is not None})
    trainer = build_trainer(cfg, instantiate_callbacks(cfg), False)
    batches = trainer.predict(model, datamodule=datamodule) or []
    results = [item for batch in batches for item in cast(list[dict[str, Any]], batch)]
    output = Path(cfg.output)
    visualize = Path(cfg.visualize) if cfg.get("visualize") else None
    count = write_predictions(results, output, visualize)
    log.info("wrote %d rows to %s", count, output)
    print(f"wrote {count} rows to {output}", flush=True)
    return output


@hydra.main(config_path=str(config_dir()), config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    predict(cfg)
