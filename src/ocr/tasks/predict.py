"""``ocr predict``: a submission CSV (``filename,polygons``) and optional overlay PNGs.

Rows are streamed to the CSV as batches finish (:class:`CsvPredictionWriter`), so memory does not
grow with the number of images, and ``resume=true`` continues a killed run. Without ``ckpt_path``
the shipped weights of ``model=`` (default ``sroie``) are used. ``backend=onnxruntime`` runs the
same pre- and post-processing around an ONNX model (``ocr export``). Post-processing runs in a
pool of evaluator processes (``evaluator.workers``, null: the checkpoint's setting; ``0``: in the
main process, the reference path); rows reach the CSV in input order either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig

from ocr.config_dir import config_dir
from ocr.errors import UserInputError
from ocr.evaluation.config import EvaluatorConfig, default_workers
from ocr.evaluation.pool import EvaluatorPool
from ocr.inference.backends import BACKENDS
from ocr.inference.writer import (  # re-exported: the CSV format lives with the writer
    CsvPredictionWriter,
    check_output,
    completed_rows,
    draw_overlay,
    format_polygons,
)
from ocr.schema import check_config
from ocr.tasks.common import build_trainer, checkpoint_data_overrides, instantiate_callbacks, log


def onnx_model_for(ckpt: str, cfg: DictConfig, net: torch.nn.Module) -> Path:
    """``onnx_path`` if given; else the ONNX file shipped beside the weights; else one exported once
    into the cache (keyed by the checkpoint's content)."""
    from ocr.inference.onnx_export import export_onnx, file_digest
    from ocr.inference.weights import shipped_onnx

    if cfg.get("onnx_path"):
        path = Path(str(cfg.onnx_path)).expanduser()
        if not path.is_file():
            raise UserInputError(
                f"onnx_path={path} does not exist; write one with `ocr export output={path}`"
            )
        return path
    beside = shipped_onnx(Path(ckpt))
    if beside is not None:
        return beside
    cached = Path(str(cfg.paths.cache_dir)) / "onnx" / f"{Path(ckpt).stem}-{file_digest(ckpt)}.onnx"
    if not cached.is_file():
        log.info("exporting %s to %s (once per checkpoint)", ckpt, cached)
        export_onnx(net, cached)
    return cached


def evaluator_pool_for(config: EvaluatorConfig, datamodule: Any) -> tuple[EvaluatorPool | None, str]:
    """The started pool for predict's post-processing (None: in-process) and its map encoding.

    ``workers: null`` is resolved as for validation (cores left after the DataLoader workers).
    Both backends return host float32 maps, so ``handoff: auto`` sends them as they are.
    """
    loader_workers = int(getattr(getattr(datamodule, "loader", None), "num_workers", 0) or 0)
    workers = config.workers if config.workers is not None else default_workers(loader_workers)
    handoff = "float32" if config.handoff == "auto" else config.handoff
    if workers == 0:
        return None, handoff
    # Started now, so the evaluators warm up while the trainer and the model are set up.
    pool = EvaluatorPool(workers, slots=config.slots, timeout_s=config.timeout_s).start()
    return pool, handoff


def predict(cfg: DictConfig) -> Path:
    check_config(cfg)  # every range, before the model, data or workers are built
    from ocr.tasks.checkpoint import resolve_model_checkpoint

    output = Path(str(cfg.output))
    visualize = Path(str(cfg.visualize)) if cfg.get("visualize") else None
    backend = str(cfg.get("backend") or "torch")
    if backend not in BACKENDS:
        raise UserInputError(f"backend={backend}: choose one of {', '.join(BACKENDS)}")
    resume = cfg.get("resume", False)
    if not isinstance(resume, bool):
        raise UserInputError(f"resume must be true or false, got {resume!r}")
    # Everything a user can get wrong is checked before the model or the data are built.
    check_output(output, visualize)
    ckpt = resolve_model_checkpoint(cfg)
    if backend == "onnxruntime":
        from ocr.inference.backends import import_onnxruntime

        import_onnxruntime()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(cfg.seed, workers=True)
    done = completed_rows(output) if resume else set()

    pad = cfg.get("pad_multiple")
    datamodule = hydra.utils.instantiate(
        cfg.data,
        predict_input=str(cfg.input),
        pad_multiple=int(pad) if pad else None,
        **checkpoint_data_overrides(ckpt, cfg),
        _convert_="all",
    )
    dataset = datamodule.build("predict")
    if done:
        before = len(dataset)
        dataset.paths = [p for p in dataset.paths if p.name not in done]
        dataset.listing_issues = [i for i in dataset.listing_issues if i.where not in done]
        log.info("resume: %d of %d images already in %s", before - len(dataset), before, output)
        print(f"resume: {before - len(dataset)} images already in {output}", flush=True)
    if not len(dataset):
        print(f"nothing left to predict: every image has a row in {output}", flush=True)
        return output

    from ocr.inference.backends import OnnxBackend
    from ocr.inference.module import DetectorModule
    from ocr.models.lit_module import DBNetModule

    model = DBNetModule.load_from_checkpoint(ckpt, map_location="cpu")
    model.configure_postprocess(**{k: v for k, v in (cfg.get("postprocess") or {}).items() if v is not None})
    model.configure_evaluator(**{k: v for k, v in (cfg.get("evaluator") or {}).items() if v is not None})
    pool, handoff = evaluator_pool_for(model.evaluator_config, datamodule)
    try:
        onnx = None
        if backend == "onnxruntime":
            onnx = OnnxBackend(onnx_model_for(ckpt, cfg, model.model), threads=cfg.get("threads"))
        net = model.model if onnx is None else None  # exactly one backend
        module = DetectorModule(model.postprocessor, net=net, onnx=onnx, pool=pool, handoff=handoff)
        # Every index gets a row: the listing's entries too (a .gif in the folder), by their file name.
        names = [dataset.describe(i) for i in range(len(dataset))]
        writer = CsvPredictionWriter(output, names, append=bool(done) or resume, visualize=visualize)
        trainer = build_trainer(cfg, [*instantiate_callbacks(cfg), writer], False)
        try:
            trainer.predict(module, datamodule=datamodule, return_predictions=False)
        finally:
            writer.close()
    finally:
        if pool is not None:
            pool.close()
    count = writer.rows_written + len(done)
    log.info("wrote %d rows to %s", count, output)
    print(f"wrote {count} rows to {output}", flush=True)
    return output


@hydra.main(config_path=str(config_dir()), config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    predict(cfg)


__all__ = ["CsvPredictionWriter", "completed_rows", "draw_overlay", "format_polygons", "main", "predict"]
