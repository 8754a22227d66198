"""What a person sees on the terminal: log records on stderr, each on its own line, above the bar.

* :class:`ConsoleHandler` (Hydra's ``job_logging`` console handler, ``configs/hydra/default.yaml``)
  writes each record through ``tqdm.write`` to the *current* ``sys.stderr``: a tqdm bar is
  cleared and redrawn below the line, and while a rich progress bar is live its redirect of
  stderr puts the line above it. stdout keeps the tasks' results (the last line of ``ocr
  validate``/``ocr train``/``ocr bench`` is one JSON object).
* :func:`configure_console` removes the noise of the libraries: Lightning's second console handler
  (which would print every Lightning record a second time, beside Hydra's handler), its "Tip"
  lines, and known third-party deprecation warnings that a user cannot act on. Our own warnings, and
  Lightning's warnings about the run itself, are kept; Python warnings go through logging, so
  they too land on their own line above the bar.
"""

from __future__ import annotations

import logging
import sys
import warnings

#: Third-party deprecation warnings raised inside libraries (not by our calls): message patterns.
THIRD_PARTY_DEPRECATIONS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's _pytree under torch >= 2.6
)
#: Lightning's warnings about what we do on purpose: a batch whose every sample was skipped (each
#: one counted and named by the data-quality line) makes ``training_step`` return None; the
#: module's ``transfer_batch_to_device`` (top-level tensors only) is meant to win over the
#: datamodule's default.
DELIBERATE = (
    r"`training_step` returned `None`",
    r"You have overridden `transfer_batch_to_device` in `LightningModule`",
)
#: Lightning advertisements, not information about the run.
TIP_PREFIX = "💡 Tip:"
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class ConsoleHandler(logging.Handler):
    """A stderr handler that keeps progress bars intact (see the module docstring).

    ``stream`` is accepted (Hydra's default console handler config passes one) and ignored: the
    stream is looked up at each record so that a progress bar's redirect is honoured.
    """

    def __init__(self, stream: object = None) -> None:
        super().__init__()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record).rstrip(), file=sys.stderr)
        except Exception:  # logging must never raise into the training loop
            self.handleError(record)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TIP_PREFIX)


def configure_console() -> None:
    """Idempotent: quiet the libraries' noise (call once Lightning is imported)."""
    for pattern in (*THIRD_PARTY_DEPRECATIONS, *DELIBERATE):
        warnings.filterwarnings("ignore", message=pattern)
    logging.captureWarnings(True)
    root_has_handlers = bool(logging.getLogger().handlers)
    if root_has_handlers:
        # Lightning adds its own stderr handler at import; the root (Hydra's) handler prints too.
        # Imported before Hydra set up logging, lightning.pytorch/.fabric also stop propagating:
        # their records then bypassed Hydra's handler (raw lines, glued to a progress bar).
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logger = logging.getLogger(name)
            plain = [h for h in logger.handlers if type(h) is logging.StreamHandler]
            for handler in plain:
                logger.removeHandler(handler)
            if plain:
                logger.propagate = True
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())


__all__ = ["DELIBERATE", "THIRD_PARTY_DEPRECATIONS", "ConsoleHandler", "configure_console"]
