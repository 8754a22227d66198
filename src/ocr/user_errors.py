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
from collections.abc import Iterator
from typing import NoReturn

from ocr.errors import UserInputError

USER_ERROR = 2
INTERNAL_ERROR = 1


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (each one's cause, else its context), each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        yield exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__


def find_user_error(exc: BaseException | None) -> UserInputError | None:
    """The UserInputError behind ``exc``, also when a library wrapped it (e.g. Hydra's instantiate)."""
    return next((e for e in _chain(exc) if isinstance(e, UserInputError)), None)


def _one_line(exc: BaseException) -> str:
    text = str(exc).split("\nConfig search path:", 1)[0]  # Hydra's search path is noise here
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def config_user_error(exc: BaseException | None) -> UserInputError | None:
    """A mistake in the command line or config that Hydra or OmegaConf reported, as a user error:
    an unknown override key or config group (``data=nope``), an unparsable override, or a
    required value left out (``ocr validate`` without ``ckpt_path=``)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue

    for error in _chain(exc):
        if isinstance(error, MissingMandatoryValue):
            key = getattr(error, "full_key", None) or "a required key"
            return UserInputError(f"{key} is required; pass {key}=VALUE on the command line")
        if isinstance(error, ConfigCompositionException | MissingConfigException | OverrideParseException):
            cause = error.__cause__
            detail = f" ({_one_line(cause)})" if cause is not None and str(cause) not in str(error) else ""
            return UserInputError(f"{_one_line(error)}{detail}")
    return None


def exit_user_error(error: UserInputError) -> NoReturn:
    print(f"ocr: error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR) from None


__all__ = ["INTERNAL_ERROR", "USER_ERROR", "config_user_error", "exit_user_error", "find_user_error"]
