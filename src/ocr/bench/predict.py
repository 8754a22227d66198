"""``ocr bench predict``: time per image of our detector (torch, onnxruntime) beside RapidOCR's.

Every detector sees the same decoded images (decoding is left out for all), with the same thread
count. Each repeat runs every detector over all images, in a rotated order (alternating runs);
the figure is the median over repeats of (time / images), from the RGB array to the boxes
(letterbox + normalise, network, DB post-processing; RapidOCR: its own pre- and post-processing).

Our detector comes from ``--ckpt`` or ``--model`` (shipped weights) or, for choosing an
architecture, from ``--backbone``/``--inner-channels`` with random weights at each
``--image-size``. Random weights give a meaningless probability map, so their post-processing
time is not a real one: the forward figures are the ones to compare then.

RapidOCR (``pip install rapidocr-onnxruntime``) is optional: without it, only our rows are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from ocr.data.image_io import read_image
from ocr.data.transforms import TransformConfig
from ocr.errors import UserInputError

if TYPE_CHECKING:
    from ocr.models.lit_module import DBNetModule

Run = Callable[[np.ndarray], Any]


def add_source_arguments(parser: argparse.ArgumentParser, ckpt_help: str, model_help: str) -> None:
    """The images (``--data``) and the weights (``--ckpt`` or ``--model``): ``predict``'s and ``onnx``'s."""
    parser.add_argument("--data", required=True, help="a folder of images, or a split folder with images/")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--ckpt", help=ckpt_help)
    source.add_argument("--model", help=model_help)


def load_source(args: argparse.Namespace) -> tuple[str, DBNetModule, int]:
    """The checkpoint of ``--ckpt`` or ``--model`` (shipped weights; none: the default ones), its
    module, and the image size it was trained at (1024 when it does not say)."""
    from ocr.inference.weights import shipped_weights
    from ocr.models.lit_module import DBNetModule

    ckpt = args.ckpt or str(shipped_weights(args.model))
    module = DBNetModule.load_from_checkpoint(ckpt, map_location="cpu")
    dm = torch.load(ckpt, map_location="cpu", weights_only=False).get("datamodule_hyper_parameters") or {}
    return ckpt, module, int(dm.get("image_size", 1024))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(
        parser, "a checkpoint (or shipped .pt) to time", "shipped weights by name (e.g. sroie)"
    )
    parser.add_argument(
        "--backbone", default="", help="random-weight candidates: timm names, comma-separated"
    )
    parser.add_argument("--inner-channels", type=int, default=128, help="FPN width of the random candidates")
    parser.add_argument("--image-size", default="", help="longest side(s), comma-separated (default: ckpt's)")
    parser.add_argument("--pad-multiple", type=int, default=32, help="pad to a multiple (0: to the square)")
    parser.add_argument("--backends", default="torch,onnxruntime", help="torch and/or onnxruntime")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every detector")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the images (median)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--no-rapidocr", action="store_true", help="leave RapidOCR out even if installed")


def load_images(root: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    from ocr.data.datasets.images import IMAGE_SUFFIXES

    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise UserInputError(f"--data {root}: not a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit:
        paths = paths[:limit]
    if not paths:
        raise UserInputError(f"--data {root}: no images in {folder}")
    return [(p.name, read_image(p)) for p in paths]


def rapidocr_detector(threads: int) -> Run | None:
    """RapidOCR's PP-OCRv4 detector alone (its ONNX model ships in the wheel), or None."""
    try:
        import rapidocr_onnxruntime
        import yaml
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    except ImportError:
        return None
    package = Path(rapidocr_onnxruntime.__file__).parent
    config = yaml.safe_load((package / "config.yaml").read_text())["Det"]
    config.update(
        model_path=str(package / config["model_path"]),
        intra_op_num_threads=threads,
        inter_op_num_threads=1,
        use_cuda=False,
    )
    detector = TextDetector(config)

    def run(image: np.ndarray) -> Any:
        # RapidOCR takes BGR, as OpenCV decodes
        return detector(image[:, :, ::-1])[0]

    return run


def _our_detectors(args: argparse.Namespace, workdir: Path) -> list[tuple[str, Any]]:
    from ocr.inference.backends import OnnxBackend, TorchBackend
    from ocr.inference.detector import Detector
    from ocr.inference.onnx_export import export_onnx
    from ocr.models.dbnet import DBNet
    from ocr.postprocess.db_postprocess import DBPostProcessor

    sizes = [int(s) for s in str(args.image_size).split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"torch", "onnxruntime"}
    if unknown:
        raise UserInputError(f"--backends: unknown {sorted(unknown)}; choose torch and/or onnxruntime")
    nets: list[tuple[str, torch.nn.Module, list[int], DBPostProcessor]] = []
    if args.ckpt or args.model or not args.backbone:
        ckpt, module, trained_size = load_source(args)
        backbone = (module.hparams.get("net") or {}).get("backbone", "?")
        nets.append(
            (f"{Path(ckpt).stem}:{backbone}", module.model, sizes or [trained_size], module.postprocessor)
        )
    for backbone in [b.strip() for b in args.backbone.split(",") if b.strip()]:
        torch.manual_seed(0)
        random_net = DBNet(backbone, inner_channels=args.inner_channels)
        label = f"random:{backbone}/{args.inner_channels}"
        nets.append((label, random_net, sizes or [1024], DBPostProcessor()))
    detectors: list[tuple[str, Any]] = []
    for label, net, net_sizes, post in nets:
        net.eval()
        onnx_path = None
        if "onnxruntime" in backends:
            onnx_path = export_onnx(net, workdir / f"{len(detectors)}.onnx")
        for size in net_sizes:
            config = TransformConfig(image_size=size, pad_multiple=args.pad_multiple or None)
            if "torch" in backends:
                detectors.append((f"{label}@{size}/torch", Detector(TorchBackend(net), config, post)))
            if onnx_path is not None:
                ort = OnnxBackend(onnx_path, threads=args.threads)
                detectors.append((f"{label}@{size}/onnxruntime", Detector(ort, config, post)))
    return detectors


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    images = load_images(Path(args.data), args.limit)
    with tempfile.TemporaryDirectory(prefix="ocr-bench-predict-") as tmp:
        arms: list[tuple[str, Any]] = _our_detectors(args, Path(tmp))
        rapid = None if args.no_rapidocr else rapidocr_detector(args.threads)
        if rapid is not None:
            arms.append(("rapidocr", rapid))
        for _, detect in arms:  # warm-up: first-call allocations and kernel selection
            detect(images[0][1])
        totals: dict[str, list[float]] = {name: [] for name, _ in arms}
        stages: dict[str, dict[str, list[float]]] = {name: {} for name, _ in arms}
        boxes: dict[str, int] = {}
        for repeat in range(args.repeats):
            shift = repeat % len(arms)
            for name, detect in arms[shift:] + arms[:shift]:
                count = 0
                start = time.perf_counter()
                for _, image in images:
                    found = detect(image)
                    count += (
                        len(found[0]) if isinstance(found, tuple) else len(found if found is not None else [])
                    )
                    for stage, seconds in getattr(detect, "last_times", {}).items():
                        stages[name].setdefault(stage, []).append(seconds)
                totals[name].append((time.perf_counter() - start) / len(images))
                boxes[name] = count
    rows = []
    rapid_ms = statistics.median(totals["rapidocr"]) * 1e3 if "rapidocr" in totals else None
    for name, _ in arms:
        ms = statistics.median(totals[name]) * 1e3
        row: dict[str, Any] = {
            "detector": name,
            "ms_per_image": round(ms, 2),
            "per_repeat_ms": [round(t * 1e3, 2) for t in totals[name]],
            "boxes_per_image": round(boxes[name] / len(images), 2),
        }
        row.update({f"{k}_ms": round(statistics.median(v) * 1e3, 2) for k, v in stages[name].items()})
        if rapid_ms and name != "rapidocr":
            row["ratio_vs_rapidocr"] = round(ms / rapid_ms, 3)
        rows.append(row)
    print(f"{'detector':<48} {'ms/image':>9} {'vs rapidocr':>11}  {'fwd ms':>7} {'post ms':>7}")
    for row in rows:
        ratio = f"{row['ratio_vs_rapidocr']:.3f}x" if "ratio_vs_rapidocr" in row else "-"
        fwd = f"{row['forward_ms']:.1f}" if "forward_ms" in row else "-"
        post = f"{row['postprocess_ms']:.1f}" if "postprocess_ms" in row else "-"
        print(f"{row['detector']:<48} {row['ms_per_image']:>9.1f} {ratio:>11}  {fwd:>7} {post:>7}")
    if rapid is None and not args.no_rapidocr:
        print("rapidocr-onnxruntime is not installed: pip install 'ocr[bench]' to time it beside ours")
    return {
        "images": len(images),
        "threads": args.threads,
        "repeats": args.repeats,
        "pad_multiple": args.pad_multiple,
        "rapidocr_ms_per_image": round(rapid_ms, 2) if rapid_ms else None,
        "detectors": rows,
    }
