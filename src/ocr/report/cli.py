"""``ocr report``: Markdown performance report of one run, or a comparison of several.

Examples::

    ocr report outputs/run --output report.md --export-json reference.json
    ocr report outputs/run/wandb/offline-run-20250101_000000-abc123 --output report.md
    ocr report outputs/run/tensorboard --output report.md
    ocr report --run-id abc123 --project ocr --entity me --output report.md
    ocr report --compare reference.json outputs/run --output cmp.md --min-change 0.05
    ocr report outputs/run --rule-limit data_wait_share=0.3 --rule-limits-file limits.yaml
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ocr.report.compare import compare
from ocr.report.compare import document as compare_document
from ocr.report.compare import render as render_compare
from ocr.report.context import Analysis
from ocr.report.errors import ReportError
from ocr.report.export import write_csv, write_json
from ocr.report.report import analyze, plots_dir, write_report
from ocr.report.rule_limits import RuleLimits, load_rule_limits
from ocr.report.rules import RULES, rule_doc
from ocr.report.sources import SOURCES, load_run
from ocr.report.sources.wandb_online import target_for
from ocr.user_errors import USER_ERROR

# Flags renamed so that "threshold" means one thing, the regression suite's thresholds.yaml, and
# "baseline" the suite's committed figures. The old spellings fail naming the new one (for one
# release), never silently.
RENAMED_FLAGS = {
    "--threshold": "--min-change",
    "--rule-threshold": "--rule-limit",
    "--thresholds": "--rule-limits-file",
}


class _RenamedFlag(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        old = option_string or self.dest
        value = f" {values}" if isinstance(values, str) else ""
        print(
            f"ocr report: error: {old} was renamed {RENAMED_FLAGS[old]}: use {RENAMED_FLAGS[old]}{value}",
            file=sys.stderr,
        )
        raise SystemExit(USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocr report",
        description="Markdown performance report (with PNG plots) from a run: our run directory, a W&B "
        "offline run, a W&B server run, a TensorBoard log directory or a report JSON export.",
        epilog=__doc__.split("Examples::", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run", nargs="?", help="run directory, W&B run folder/file, TensorBoard dir or report JSON"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="compare two or more runs (the first is the reference the others are measured against)",
    )
    parser.add_argument("--run-id", help="W&B run id on a server (with --project [--entity])")
    parser.add_argument("--project", help="W&B project of --run-id")
    parser.add_argument("--entity", help="W&B entity of --run-id")
    parser.add_argument("--source", help="force a source instead of detecting it (see --list-sources)")
    parser.add_argument(
        "--output", "-o", default="report.md", help="Markdown file; PNGs go to <stem>_plots/ beside it"
    )
    parser.add_argument(
        "--export-json", metavar="PATH", help="write metrics + analysis as JSON (schema ocr.report/1)"
    )
    parser.add_argument(
        "--export-csv", metavar="PATH", help="write metrics + figures + findings as one long CSV"
    )
    parser.add_argument(
        "--min-change",
        type=float,
        default=0.10,
        metavar="FRACTION",
        help="comparison: the relative change that counts as improved/regressed (default 0.10)",
    )
    parser.add_argument(
        "--rule-limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a bottleneck rule's limit (repeatable; see --list-rules)",
    )
    parser.add_argument(
        "--rule-limits-file", metavar="FILE", help="YAML/JSON mapping of rule limits (name: value)"
    )
    for old in RENAMED_FLAGS:
        parser.add_argument(old, nargs="?", action=_RenamedFlag, help=argparse.SUPPRESS)
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="KEY",
        help="fail unless this figure or metric key is present (repeatable)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--list-sources", action="store_true", help="list the sources and exit")
    parser.add_argument("--list-rules", action="store_true", help="list the rules and their limits and exit")
    return parser


def _targets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    if args.run_id or args.project:
        if not (args.run_id and args.project):
            parser.error("--run-id needs --project (and optionally --entity)")
        online = target_for(args.run_id, args.project, args.entity)
        return [online, *(args.compare or [])]
    if args.compare:
        runs = ([args.run] if args.run else []) + args.compare
        if len(runs) < 2:
            parser.error("--compare needs at least two runs")
        return runs
    if not args.run:
        parser.error("give a RUN, --run-id/--project, or --compare RUN_A RUN_B")
    return [args.run]


def check_required(analysis: Analysis, keys: list[str]) -> None:
    present = set(analysis.figures) | analysis.run.keys()
    missing = [k for k in keys if k not in present]
    if missing:
        sample = ", ".join(sorted(present)[:8]) or "nothing"
        raise ReportError(
            f"{analysis.run.location}: missing metric(s) {', '.join(missing)} "
            f"(the run has {len(present)} keys, e.g. {sample}); drop --require or pick a run that logs them"
        )


def check_writable(path: Path, option: str, example: str) -> None:
    """Fail before any run is read when an output file cannot be written (a folder, /proc, ...)."""
    if path.is_dir():
        raise ReportError(f"{option} {path} is a directory; pass a file path, e.g. {option} {path / example}")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as exc:
        raise ReportError(f"{option} {path}: cannot write it ({exc.strerror}); choose another path") from None
    if not existed:
        path.unlink(missing_ok=True)


def _single(analysis: Analysis, args: argparse.Namespace) -> None:
    output = write_report(analysis, Path(args.output), plots=not args.no_plots)
    print(f"report: {output}" + ("" if args.no_plots else f" (plots in {plots_dir(output)})"))
    if args.export_json:
        print(f"json: {write_json(analysis, Path(args.export_json))}")
    if args.export_csv:
        print(f"csv: {write_csv(analysis, Path(args.export_csv))}")
    for finding in analysis.findings[:3]:
        print(f"  [{finding.severity}] {finding.title}")


def _compare(analyses: list[Analysis], args: argparse.Namespace) -> None:
    from ocr.report.plots.compare import draw_all

    cmp = compare(analyses, args.min_change)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plots = {} if args.no_plots else draw_all(cmp, plots_dir(output))
    output.write_text(render_compare(cmp, plots, output))
    print(f"comparison: {output}")
    if args.export_json:
        Path(args.export_json).write_text(json.dumps(compare_document(cmp), indent=1, default=str))
        print(f"json: {args.export_json}")
    if args.export_csv:
        with open(args.export_csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                [
                    "key",
                    *(f"value[{label}]" for label in cmp.labels),
                    *(f"verdict[{label}]" for label in cmp.labels[1:]),
                ]
            )
            writer.writerows([row.key, *row.values, *row.verdicts[1:]] for row in cmp.rows)
        print(f"csv: {args.export_csv}")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_sources:
        for source in SOURCES:
            print(f"{source.name:<14} {source.describe}")
        return
    if args.list_rules:
        for rule in RULES:
            print(f"{rule.__name__:<24} {rule_doc(rule)}")
        print("\nrule limits: " + ", ".join(f"{k}={v:g}" for k, v in RuleLimits().to_dict().items()))
        return
    if args.min_change < 0:
        parser.error("--min-change must be >= 0 (a relative change, e.g. 0.10)")
    targets = _targets(args, parser)
    try:
        outputs = (
            ("--output", args.output, "report.md"),
            ("--export-json", args.export_json, "report.json"),
            ("--export-csv", args.export_csv, "report.csv"),
        )
        for option, value, example in outputs:
            if value:
                check_writable(Path(value), option, example)
        limits = load_rule_limits(args.rule_limits_file, args.rule_limit)
        analyses = [analyze(load_run(t, args.source), limits) for t in targets]
        for analysis in analyses:
            check_required(analysis, args.require)
        if len(analyses) == 1:
            _single(analyses[0], args)
        else:
            _compare(analyses, args)
    except ReportError as exc:
        print(f"ocr report: error: {exc}", file=sys.stderr)
        raise SystemExit(USER_ERROR) from None


if __name__ == "__main__":
    main()
