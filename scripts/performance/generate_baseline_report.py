#!/usr/bin/env python
"""Baseline performance report of one run: a thin wrapper around ``ocr report``.

Writes ``<out-dir>/baseline_report.md`` (+ ``baseline_report_plots/``), ``baseline.json`` (schema
``ocr.report/1``: the flat ``figures`` a regression check compares against) and ``baseline.csv``.
Any further arguments go to ``ocr report`` unchanged (e.g. ``--rule-threshold data_wait_share=0.3``).

    python scripts/performance/generate_baseline_report.py outputs/RUN --out-dir reports/baseline
    ocr report --compare reports/baseline/baseline.json outputs/new-run --output cmp.md   # later
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ocr.report.cli import main as report_main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run", help="run directory, W&B offline run, TensorBoard dir or wandb://ENTITY/PROJECT/ID"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=Path("reports/baseline"), help="default: reports/baseline"
    )
    args, rest = parser.parse_known_args(argv)
    out = args.out_dir
    report_main(
        [
            args.run,
            "--output",
            str(out / "baseline_report.md"),
            "--export-json",
            str(out / "baseline.json"),
            "--export-csv",
            str(out / "baseline.csv"),
            *rest,
        ]
    )


if __name__ == "__main__":
    main()
