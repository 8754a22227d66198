"""``ocr bench SUBCOMMAND``: benchmarks whose last stdout line is one JSON object.

Subcommands live in :data:`SUBCOMMANDS`: name -> (help, loader). A loader returns the pair
``(add_arguments(parser), run(args) -> dict | None)``; it is called only for the subcommand being
run, so ``ocr bench targets`` never imports Lightning. Add one with :func:`register` or a module
that has ``add_arguments`` and ``run`` via :func:`module_loader`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ocr.errors import UserInputError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], "dict[str, Any] | None"]
Loader = Callable[[], tuple[AddArguments, Run]]

SUBCOMMANDS: dict[str, tuple[str, Loader]] = {}


def register(name: str, help_: str, loader: Loader) -> None:
    if name in SUBCOMMANDS:
        raise ValueError(f"bench subcommand {name!r} is already registered")
    SUBCOMMANDS[name] = (help_, loader)


def module_loader(module: str) -> Loader:
    """A loader for a module that defines ``add_arguments(parser)`` and ``run(args)``."""

    def load() -> tuple[AddArguments, Run]:
        mod = importlib.import_module(module)
        return mod.add_arguments, mod.run

    return load


# -- targets ------------------------------------------------------------------------------------
def _targets_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="SROIE split folder (images/*.jpg + gt/*.txt)")
    parser.add_argument("--size", type=int, default=1024, help="longest image side")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image (median)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")


def _targets_run(args: argparse.Namespace) -> dict[str, Any]:
    from ocr.bench.cache import cache_hit_lookup
    from ocr.bench.targets import bench_targets, load_sroie_items

    root = Path(args.data)
    if not (root / "images").is_dir() or not (root / "gt").is_dir():
        raise UserInputError(f"--data {root}: expected a SROIE split folder with images/ and gt/")
    items = load_sroie_items(root, args.size)
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise UserInputError(f"--data {root}: no images with a gt file")
    with cache_hit_lookup(items) as (lookup, check):
        result = bench_targets(items, repeats=args.repeats, cache_lookup=lookup)
        result["cache_identical_images"] = check()
    return {"size": args.size, **result}


register(
    "targets",
    "DB targets per image: reference vs fast db/exact vs a PolygonCache hit from disk",
    lambda: (_targets_arguments, _targets_run),
)
register(
    "cache",
    "target cache store: diskcache vs files (write/read latency, 2 processes)",
    module_loader("ocr.bench.cache"),
)
register(
    "pipeline",
    "validation data time per image and cache hit rate, epoch by epoch (real Lightning)",
    module_loader("ocr.bench.pipeline"),
)
register(
    "overhead",
    "PerformanceProfilerCallback cost per training step: on vs off, same run, median of repeats",
    module_loader("ocr.bench.overhead"),
)
register(
    "validate",
    "validation loop with a GT stand-in model: images/s, main-process ms/image, drain, hidden "
    "evaluation share, per evaluator-pool size",
    module_loader("ocr.bench.validate"),
)
register(
    "baseline",
    "the performance suite's measurements as a baseline JSON (ocr.report/1); "
    "also `ocr bench --save-baseline PATH`",
    module_loader("ocr.bench.baseline"),
)


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
