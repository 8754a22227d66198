"""``ocr`` console script: one entry point per task (train | validate | predict | export | report | bench)."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from ocr.user_errors import INTERNAL_ERROR, USER_ERROR, config_user_error, exit_user_error, find_user_error

COMMANDS = {
    "train": ("ocr.tasks.train", "fit and validate every epoch (Hydra overrides)"),
    "validate": ("ocr.tasks.validate", "evaluate a checkpoint: ckpt_path=... [data overrides]"),
    "predict": (
        "ocr.tasks.predict",
        "input=DIR_OR_IMAGE output=submission.csv [ckpt_path=...] [backend=onnxruntime] [resume=true]",
    ),
    "export": ("ocr.tasks.export", "ONNX model and/or shipped weights: [ckpt_path=...] output=MODEL.onnx"),
    "report": ("ocr.report.cli", "Markdown performance report from a run (see ocr report --help)"),
    "bench": ("ocr.bench.cli", "benchmarks: ocr bench targets | pipeline | predict | onnx ... (see --help)"),
}


def usage() -> str:
    lines = ["usage: ocr COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def run_task(module: ModuleType) -> None:
    """Run a task's ``main``; a user mistake becomes ``ocr: error: ...`` on stderr and exit status 2
    (see :mod:`ocr.user_errors` for the exit statuses).

    Hydra prints a traceback for any exception a task raises unless ``HYDRA_FULL_ERROR=1``, in
    which case it re-raises: so the variable is set here. Config mistakes Hydra or OmegaConf find
    (unknown key, bad override, missing required value) are user errors too. Other exceptions
    (bugs) keep their traceback and exit status 1.
    """
    user_asked_full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        module.main()
    except Exception as exc:
        from hydra.errors import CompactHydraException, ConfigCompositionException

        user_error = find_user_error(exc)
        if user_error is None and isinstance(exc, ConfigCompositionException):
            # A value of the wrong type for a schema key (data.loader.batch_size=four): the
            # schema's own line names the key and what it allows.
            from ocr.schema import composition_error

            user_error = composition_error(exc)
        user_error = user_error or config_user_error(exc)
        if user_error is not None:
            exit_user_error(user_error)
        if isinstance(exc, CompactHydraException) and not user_asked_full:
            print(exc, file=sys.stderr)
            if exc.__cause__ is not None:
                print(exc.__cause__, file=sys.stderr)
            raise SystemExit(INTERNAL_ERROR) from None
        raise


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if args else USER_ERROR)
    command, rest = args[0], args[1:]
    relaunched = os.environ.get("OCR_TASK")
    if command not in COMMANDS and relaunched in COMMANDS and "LOCAL_RANK" in os.environ:
        # A DDP child started by Lightning: it re-runs this script with the task's arguments only.
        command, rest = relaunched, args
    if command not in COMMANDS:
        print(f"ocr: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(USER_ERROR)
    module = importlib.import_module(COMMANDS[command][0])
    os.environ["OCR_TASK"] = command
    # Hydra and argparse read sys.argv; make it look like the task's own script was called.
    sys.argv = [sys.argv[0], *rest]
    run_task(module)


if __name__ == "__main__":
    main()
