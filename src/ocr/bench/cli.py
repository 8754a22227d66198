"""``ocr bench SUBCOMMAND``: benchmarks whose last stdout line is one JSON object.

Subcommands live in :data:`SUBCOMMANDS`: name -> (help, module). The module defines
``add_arguments(parser)`` and ``run(args) -> dict | None``; only the subcommand being run is
imported, so ``ocr bench targets`` never imports Lightning. A new subcommand is one entry in
:data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "targets": (
        "DB targets per image: reference vs fast db/exact vs a PolygonCache hit from disk",
        "ocr.bench.targets",
    ),
    "pipeline": (
        "validation data time per image and cache hit rate, epoch by epoch (real Lightning); "
        "--phase train: first-batch wait and data-wait share of a fit with a stand-in model",
        "ocr.bench.pipeline",
    ),
    "overhead": (
        "PerformanceProfilerCallback cost per training step: on vs off, same run, median of repeats",
        "ocr.bench.overhead",
    ),
    "baseline": (
        "the performance suite's measurements as a baseline JSON (ocr.report/1); "
        "also `ocr bench --save-baseline PATH`",
        "ocr.bench.baseline",
    ),
    "predict": (
        "detector time per image: ours (torch, onnxruntime) beside RapidOCR's, same images and threads",
        "ocr.bench.predict",
    ),
    "onnx": (
        "ONNX vs torch on real images: probability-map max abs diff and identical boxes",
        "ocr.bench.onnx_agreement",
    ),
    "eval-work": (
        "non-model CPU per validation image (post-processing, CLEval, IoU): reference vs fast, same states",
        "ocr.bench.eval_work",
    ),
    "validate": (
        "the validation loop with a stand-in model: evaluator pool sizes side by side "
        "(images/s, main-process ms, drain, hidden share)",
        "ocr.bench.validate",
    ),
}


def main(argv: Sequence[str] | None = None) -> None:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0].partition("=")[0] == "--save-baseline":
        # `ocr bench --save-baseline PATH [options]` is `ocr bench baseline --output PATH [options]`
        value = args_in[0].partition("=")[2]
        args_in = ["baseline", "--output", *([value] if value else []), *args_in[1:]]
    description = __doc__.splitlines()[0] if __doc__ else None
    parser = argparse.ArgumentParser(prog="ocr bench", description=description)
    parser.add_argument(
        "--save-baseline",
        metavar="PATH",
        help="the performance suite's measurements as a baseline JSON (as the first option)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = args_in[0] if args_in else None
    for name, (help_, module_name) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_, description=help_)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    args = parser.parse_args(args_in)
    result = args._run(args)
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
