#!/usr/bin/env python
"""Reference report of one run, the run later ones are compared with: a thin wrapper around ``ocr report``.

Writes ``<out-dir>/reference_report.md`` (+ ``reference_report_plots/``), ``reference.json``
(schema ``ocr.report/1``: the flat ``figures`` a comparison reads) and ``reference.csv``. Any
further arguments go to ``ocr report`` unchanged (e.g. ``--rule-limit data_wait_share=0.3``).
(The script keeps its old name; "baseline" now means only the regression suite's committed
figures, tests/performance/baselines/baseline.json.)

    python scripts/performance/generate_baseline_report.py outputs/RUN --out-dir reports/reference
    ocr report --compare reports/reference/reference.json outputs/new-run --output cmp.md   # later
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
        "--out-dir", type=Path, default=Path("reports/reference"), help="default: reports/reference"
    )
    args, rest = parser.parse_known_args(argv)
    out = args.out_dir
    report_main(
        [
            args.run,
            "--output",
            str(out / "reference_report.md"),
            "--export-json",
            str(out / "reference.json"),
            "--export-csv",
            str(out / "reference.csv"),
            *rest,
        ]
    )


if __name__ == "__main__":
    main()
