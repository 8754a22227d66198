"""``ocr bench SUBCOMMAND``: benchmarks whose last stdout line is one JSON object.

Subcommands live in :data:`SUBCOMMANDS`: name -> (help, loader). A loader returns the pair
``(add_arguments(parser), run(args) -> dict | None)``; it is called only for the subcommand being
run, so ``ocr bench targets`` never imports Lightning. A new subcommand is one entry in
:data:`SUBCOMMANDS`: ``module_loader("ocr.bench.<module>")`` for a module that has
``add_arguments`` and ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], "dict[str, Any] | None"]
Loader = Callable[[], tuple[AddArguments, Run]]


def module_loader(module: str) -> Loader:
    """A loader for a module that defines ``add_arguments(parser)`` and ``run(args)``."""

    def load() -> tuple[AddArguments, Run]:
        mod = importlib.import_module(module)
        return mod.add_arguments, mod.run

    return load


SUBCOMMANDS: dict[str, tuple[str, Loader]] = {
    "targets": (
        "DB targets per image: reference vs fast db/exact vs a PolygonCache hit from disk",
        module_loader("ocr.bench.targets"),
    ),
    "pipeline": (
        "validation data time per image and cache hit rate, epoch by epoch (real Lightning); "
        "--phase train: first-batch wait and data-wait share of a fit with a stand-in model",
        module_loader("ocr.bench.pipeline"),
    ),
    "overhead": (
        "PerformanceProfilerCallback cost per training step: on vs off, same run, median of repeats",
        module_loader("ocr.bench.overhead"),
    ),
    "baseline": (
        "the performance suite's measurements as a baseline JSON (ocr.report/1); "
        "also `ocr bench --save-baseline PATH`",
        module_loader("ocr.bench.baseline"),
    ),
    "predict": (
        "detector time per image: ours (torch, onnxruntime) beside RapidOCR's, same images and threads",
        module_loader("ocr.bench.predict"),
    ),
    "onnx": (
        "ONNX vs torch on real images: probability-map max abs diff and identical boxes",
        module_loader("ocr.bench.onnx_agreement"),
    ),
    "eval-work": (
        "non-model CPU per validation image (post-processing, CLEval, IoU): reference vs fast, same states",
        module_loader("ocr.bench.eval_work"),
    ),
    "validate": (
        "the validation loop with a stand-in model: evaluator pool sizes side by side "
        "(images/s, main-process ms, drain, hidden share)",
        module_loader("ocr.bench.validate"),
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
    for name, (help_, loader) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_, description=help_)
        if name == chosen:
            add_arguments, run = loader()
            add_arguments(sub_parser)
            sub_parser.set_defaults(_run=run)
    args = parser.parse_args(args_in)
    result = args._run(args)
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
