"""How the ``ocr`` CLI answers a user mistake: one ``ocr: error: ...`` line on stderr, exit status 2.

Exit statuses of every ``ocr`` command: 0 success, 1 an internal error (a bug: its traceback is
kept), 2 a user error (bad option, path, checkpoint or data: one line naming it and the fix).

Hydra runs a task inside ``run_job``, which keeps the task's exception and, when the caller reads
the job's result, first writes "Error executing job with overrides: [...]" to stderr. The
:class:`ocr.tasks.hydra_callbacks.HydraUserErrors` callback (``configs/hydra/default.yaml``) answers a user
error at the job's end, inside Hydra, so that line never precedes ours; errors raised before the
job (config composition) reach :func:`ocr.cli.run_task`, which answers them the same way.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ocr.errors import UserInputError

USER_ERROR = 2
INTERNAL_ERROR = 1


def find_user_error(exc: BaseException | None) -> UserInputError | None:
    """The UserInputError behind ``exc``, also when a library wrapped it (e.g. Hydra's instantiate)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserInputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def exit_user_error(error: UserInputError) -> NoReturn:
    print(f"ocr: error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR) from None


__all__ = ["INTERNAL_ERROR", "USER_ERROR", "exit_user_error", "find_user_error"]
