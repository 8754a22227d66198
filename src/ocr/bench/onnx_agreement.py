"""``ocr bench onnx``: does the ONNX model give torch's maps and boxes on real images?

For each image: the same letterboxed input through torch and onnxruntime, the max abs difference
of the probability maps, and the boxes after the same post-processing matched corner by corner
(within ``--tol`` px). Reports the worst map difference, the share of identical boxes and the
share of images with the same box count.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocr.bench.predict import add_source_arguments, load_images, load_source
from ocr.errors import UserInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser, "checkpoint (or shipped .pt)", "shipped weights by name (default: sroie)")
    parser.add_argument("--onnx", help="an ONNX file from `ocr export` (default: export the checkpoint)")
    parser.add_argument("--image-size", type=int, default=0, help="longest side (default: the checkpoint's)")
    parser.add_argument("--pad-multiple", type=int, default=32, help="pad to a multiple (0: to the square)")
    parser.add_argument("--tol", type=float, default=1.0, help="corner tolerance in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")


def compare(
    torch_net: torch.nn.Module,
    onnx_path: Path,
    images: list[np.ndarray],
    image_size: int,
    postprocessor: Any,
    pad_multiple: int | None = 32,
    tol: float = 1.0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Torch vs onnxruntime on ``images`` through the same Detector pipeline."""
    from ocr.data.transforms import TransformConfig
    from ocr.inference.agreement import box_agreement
    from ocr.inference.backends import OnnxBackend, TorchBackend
    from ocr.inference.detector import Detector

    config = TransformConfig(image_size=image_size, pad_multiple=pad_multiple)
    ours = Detector(TorchBackend(torch_net), config, postprocessor)
    onnx = OnnxBackend(onnx_path, threads=threads)
    max_diff = 0.0
    totals = {"boxes_a": 0, "boxes_b": 0, "matched": 0, "same_count": 0}
    for image in images:
        batch, meta = ours.prepare(image)
        prob_t = ours.backend(batch)
        prob_o = onnx(batch)
        max_diff = max(max_diff, float(np.abs(prob_t - prob_o).max()))
        boxes_t = postprocessor(prob_t[0], meta)[0]
        boxes_o = postprocessor(prob_o[0], meta)[0]
        for k, v in box_agreement(boxes_t, boxes_o, tol).items():
            totals[k] += v
    boxes = max(totals["boxes_a"], totals["boxes_b"])
    return {
        "images": len(images),
        "prob_max_abs_diff": max_diff,
        "boxes_torch": totals["boxes_a"],
        "boxes_onnx": totals["boxes_b"],
        "boxes_identical": totals["matched"],
        "boxes_identical_share": totals["matched"] / boxes if boxes else 1.0,
        "images_same_count_share": totals["same_count"] / len(images) if images else 1.0,
        "tol_px": tol,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ocr.inference.onnx_export import export_onnx

    torch.set_num_threads(args.threads)
    ckpt, module, trained_size = load_source(args)
    net = module.model.eval()
    size = args.image_size or trained_size
    images = [image for _, image in load_images(Path(args.data), args.limit)]
    with tempfile.TemporaryDirectory(prefix="ocr-bench-onnx-") as tmp:
        onnx_path = Path(args.onnx) if args.onnx else export_onnx(net, Path(tmp) / "model.onnx")
        if not onnx_path.is_file():
            raise UserInputError(f"--onnx {onnx_path} does not exist; write one with `ocr export`")
        result = compare(
            net,
            onnx_path,
            images,
            size,
            module.postprocessor,
            args.pad_multiple or None,
            args.tol,
            args.threads,
        )
    print(
        f"{result['images']} images at {size}: prob max abs diff {result['prob_max_abs_diff']:.2e}, "
        f"identical boxes {result['boxes_identical']}/{max(result['boxes_torch'], result['boxes_onnx'])} "
        f"({100 * result['boxes_identical_share']:.2f} %), same box count on "
        f"{100 * result['images_same_count_share']:.1f} % of images"
    )
    return {"image_size": size, "ckpt": ckpt, **result}
