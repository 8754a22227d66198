"""``ocr`` console script: one entry point per task (train | validate | predict | report | bench)."""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS = {
    "train": ("ocr.tasks.train", "fit and validate every epoch (Hydra overrides)"),
    "validate": ("ocr.tasks.validate", "evaluate a checkpoint: ckpt_path=... [data overrides]"),
    "predict": ("ocr.tasks.predict", "ckpt_path=... input=DIR_OR_IMAGE output=submission.csv [visualize=DIR]"),
    "report": ("ocr.report.cli", "Markdown performance report from a run (see ocr report --help)"),
    "bench": ("ocr.bench.cli", "benchmarks: ocr bench targets | overhead | pipeline (see --help)"),
}


def usage() -> str:
    lines = ["usage: ocr COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if args else 2)
    command, rest = args[0], args[1:]
    relaunched = os.environ.get("OCR_TASK")
    if command not in COMMANDS and relaunched in COMMANDS and "LOCAL_RANK" in os.environ:
        # A DDP child started by Lightning: it re-runs this script with the task's arguments only.
        command, rest = relaunched, args
    if command not in COMMANDS:
        print(f"ocr: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[command][0])
    os.environ["OCR_TASK"] = command
    # Hydra and argparse read sys.argv; make it look like the task's own script was called.
    sys.argv = [sys.argv[0], *rest]
    module.main()


if __name__ == "__main__":
    main()
