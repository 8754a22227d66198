"""Find and check a checkpoint before anything else is built, with one line for every bad file.

``resolve_checkpoint`` answers a missing path, a folder or ``ckpt_path=last`` without importing
torch (so ``ocr validate ckpt_path=/nope`` is quick); :func:`load_checkpoint` then tells apart the
files torch cannot read (empty, truncated, not a checkpoint at all) from readable files that are
not ours (a bare ``state_dict``, another LightningModule's checkpoint). Each case is a
:class:`UserInputError` naming the file, what it is, and what to pass instead.
"""

from __future__ import annotations

import functools
import logging
import zipfile
from pathlib import Path
from typing import Any

from ocr.errors import UserInputError

log = logging.getLogger("ocr")

FIX = "pass ckpt_path=PATH/TO/last.ckpt (a file written by ocr train)"
#: Prefixes of DBNetModule's state_dict keys (its learned submodules).
MODEL_PREFIXES = ("model.", "criterion.")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"  # torch's legacy (pre-1.6) format starts with a pickle protocol byte

#: Small parts of the last checked file (its hyper-parameters), keyed on (path, size, mtime).
HPARAM_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


def _file_check(path: Path) -> Path:
    if path.is_dir():
        inside = sorted(path.rglob("*.ckpt"))
        hint = f"; it holds {len(inside)} .ckpt file(s), e.g. ckpt_path={inside[-1]}" if inside else ""
        raise UserInputError(f"checkpoint {path} is a directory, not a checkpoint file{hint}; {FIX}")
    if not path.exists():
        raise UserInputError(f"checkpoint {path} does not exist; {FIX}")
    if not path.is_file():
        raise UserInputError(f"checkpoint {path} is not a regular file; {FIX}")
    return path


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``last`` means this run dir's last.ckpt, else the newest last.ckpt of an earlier run."""
    if ckpt_path in (None, ""):
        return None
    if ckpt_path != "last":
        return str(_file_check(Path(str(ckpt_path)).expanduser()))
    here = run_dir / "checkpoints" / "last.ckpt"
    if here.is_file():
        return str(here)
    runs_root = run_dir.parent
    found = sorted(runs_root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UserInputError(
            f"ckpt_path=last: no checkpoints/last.ckpt under {runs_root}; pass ckpt_path=PATH explicitly"
        )
    log.info("ckpt_path=last resolved to %s", found[-1])
    return str(found[-1])


def _container_check(path: Path) -> None:
    """Empty / truncated / not a torch file, from the bytes alone (no unpickling)."""
    size = path.stat().st_size
    if size == 0:
        raise UserInputError(f"checkpoint {path} is empty (0 bytes; an interrupted save?); {FIX}")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == _ZIP_MAGIC and not zipfile.is_zipfile(path):
        raise UserInputError(
            f"checkpoint {path} is truncated ({size} bytes, the archive's end is missing; an interrupted "
            f"copy or save?); {FIX}"
        )
    if head != _ZIP_MAGIC and not head.startswith(_PICKLE_MAGIC):
        raise UserInputError(f"checkpoint {path} is not a PyTorch checkpoint (unknown file format); {FIX}")


def _content_check(path: Path, checkpoint: object) -> dict[str, Any]:
    if not isinstance(checkpoint, dict):
        kind = type(checkpoint).__name__
        raise UserInputError(f"checkpoint {path} is a PyTorch file holding a {kind}, not a checkpoint; {FIX}")
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict) or "pytorch-lightning_version" not in checkpoint:
        what = "a bare state_dict" if state is None and checkpoint else "a PyTorch file"
        raise UserInputError(f"checkpoint {path} is {what}, not a Lightning checkpoint; {FIX}")
    foreign = sorted(k for k in state if not str(k).startswith(MODEL_PREFIXES))
    if foreign or not state or not isinstance(checkpoint.get("hyper_parameters"), dict):
        example = f" (e.g. weight {foreign[0]!r})" if foreign else ""
        raise UserInputError(
            f"checkpoint {path} is a Lightning checkpoint of another model{example}, not of "
            f"ocr's DBNetModule; {FIX}"
        )
    return checkpoint


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as a dict, or a :class:`UserInputError` saying what the file is."""
    path = _file_check(Path(path))
    _container_check(path)
    import pickle

    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"checkpoint {path} is corrupt ({first}); {FIX}") from None
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise UserInputError(
            f"checkpoint {path} was written by other code (unpickling needs {exc}); {FIX}"
        ) from None
    return _content_check(path, checkpoint)


def checkpoint_hparams(path: str | Path) -> dict[str, Any]:
    """The model's and data module's hyper-parameters of a checked checkpoint.

    Only these small parts of the last file are kept (not its weights), so the check and the
    task's later readers (e.g. the data settings) share one read of the file.
    """
    st = Path(path).stat()
    return _hparams(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1)  # keyed by size and mtime too: a rewritten file is read again
def _hparams(path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)
    return {k: checkpoint.get(k) or {} for k in HPARAM_KEYS}


def check_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """Resolve ``ckpt_path`` and make sure the file is a checkpoint of ours (None: none given)."""
    path = resolve_checkpoint(ckpt_path, run_dir)
    if path is not None:
        checkpoint_hparams(path)
    return path


def resolve_model_checkpoint(cfg: Any) -> str:
    """``ckpt_path`` when given (checked as any checkpoint), else the shipped weights of ``model=``."""
    if cfg.get("ckpt_path") not in (None, ""):
        from ocr.tasks.run_paths import output_dir

        resolved = check_checkpoint(cfg.ckpt_path, output_dir(cfg))
        assert resolved is not None
        return resolved
    from ocr.inference.weights import model_choice, shipped_weights

    return str(shipped_weights(model_choice(cfg)))


__all__ = [
    "check_checkpoint",
    "checkpoint_hparams",
    "load_checkpoint",
    "resolve_checkpoint",
    "resolve_model_checkpoint",
]
