"""Streaming submission CSV (``filename,polygons``): rows written as batches finish, never gathered.

Each batch's rows are flushed and fsync'ed, so a ``kill -9`` loses at most the images in flight
(the batch, plus the evaluator pool's slots) and can tear only the last line. ``resume`` drops
such a trailing partial line and reports which images already have a row, so a rerun predicts
only the rest.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import lightning as L
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from ocr.data.image_io import read_image
from ocr.errors import UserInputError

log = logging.getLogger("ocr")

HEADER = ["filename", "polygons"]
WARN_NAMES = 20  # unreadable images named in the warning (all are counted)


def format_polygons(polygons: Sequence[np.ndarray]) -> str:
    """``x1 y1 x2 y2 ...`` per polygon (integers, original pixels), polygons joined by ``|``."""
    return "|".join(" ".join(str(round(float(v))) for v in np.asarray(p).reshape(-1)) for p in polygons)


def draw_overlay(image: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(image.shape[:2]) / 800))
    pts = [np.asarray(p, np.int32).reshape(-1, 1, 2) for p in polygons]
    cv2.polylines(canvas, pts, isClosed=True, color=(0, 0, 255), thickness=thickness)
    return canvas


def check_output(output: Path, visualize: Path | None = None) -> None:
    """Fail before any model or data is built when the CSV (or overlay folder) cannot be written."""
    if output.is_dir():
        raise UserInputError(
            f"output={output} is a directory; pass a file path, e.g. output={output / 'submission.csv'}"
        )
    if output.exists() and not os.access(output, os.W_OK):
        raise UserInputError(f"output={output} is not writable; fix its permissions or choose another path")
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"output={output}: cannot create {parent} ({exc.strerror}); choose another path"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserInputError(f"output={output}: folder {parent} is not writable; choose another path")
    # os.access says yes to root everywhere, also on a read-only mount or in /proc: open it for real.
    existed = output.exists()
    try:
        with output.open("a"):
            pass
    except OSError as exc:
        raise UserInputError(
            f"output={output}: cannot write it ({exc.strerror}); choose another path"
        ) from None
    if not existed:
        output.unlink(missing_ok=True)
    if visualize is not None:
        if visualize.exists() and not visualize.is_dir():
            raise UserInputError(f"visualize={visualize} is a file; pass a folder for the overlay PNGs")
        try:
            visualize.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"visualize={visualize}: cannot create it ({exc.strerror})") from None


def completed_rows(output: Path) -> set[str]:
    """Names that already have a row in ``output``; a torn trailing line is cut off the file first."""
    if not output.is_file() or output.stat().st_size == 0:
        return set()
    with output.open("r+b") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # killed mid-row: drop the partial line, keep every complete one
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
            log.warning("resume: dropped a partial last line (%d bytes) from %s", len(data) - end, output)
            data = data[:end]
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(
            f"resume: {output} is not a prediction CSV ({exc}); remove it or pass resume=false"
        ) from None
    if not rows:
        return set()
    if rows[0] != HEADER:
        raise UserInputError(
            f"resume: {output} does not start with the header {','.join(HEADER)}; "
            "remove it or pass resume=false"
        )
    return {row[0] for row in rows[1:] if row}


class CsvPredictionWriter(BasePredictionWriter):
    """Writes each predict batch's rows to the CSV (and overlays), then forgets them.

    Rows arrive in input order, each batch's complete ones (see ``ocr.inference.module``); a
    module with a ``remaining_rows()`` method is asked for the rest at the end of the epoch.

    Args:
        output: the CSV path.
        names: the file name of every dataset index (unreadable images get an empty row by name).
        append: add to an existing CSV (resume) instead of starting a new one.
        visualize: folder for overlay PNGs, or None.
    """

    def __init__(
        self, output: Path, names: Sequence[str], append: bool = False, visualize: Path | None = None
    ) -> None:
        super().__init__(write_interval="batch")
        self.output = Path(output)
        self.names = list(names)
        self.append = append
        self.visualize = visualize
        self.rows_written = 0
        self.unreadable: list[str] = []
        self._fh: TextIO | None = None

    def _open(self) -> None:
        fresh = not (self.append and self.output.is_file() and self.output.stat().st_size > 0)
        self._fh = self.output.open("w" if fresh else "a", newline="", encoding="utf-8")
        if fresh:
            csv.writer(self._fh, lineterminator="\n").writerow(HEADER)
            self._sync()

    def _sync(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._fh is None:
            self._open()

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        self.write_rows(prediction["rows"])

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_epoch_end(trainer, pl_module)
        # The module may still hold rows (the evaluator pool's images in flight): they come last.
        remaining = getattr(pl_module, "remaining_rows", None)
        if callable(remaining):
            self.write_rows(remaining())

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows in input order: ``name`` + ``polygons``, or ``unreadable`` + the dataset ``index``."""
        if self._fh is None:
            self._open()
        if not rows:
            return
        lines = []
        for row in rows:
            if row.get("unreadable"):
                index = int(row["index"])
                name = self.names[index] if 0 <= index < len(self.names) else f"#{index}"
                self.unreadable.append(name)
                lines.append([name, ""])
            else:
                lines.append([row["name"], format_polygons(row["polygons"])])
        # one write per batch of complete lines, then flush + fsync: a kill tears at most the last
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(lines)
        assert self._fh is not None
        self._fh.write(buffer.getvalue())
        self._sync()
        self.rows_written += len(lines)
        if self.visualize is not None:
            for row in rows:
                if row.get("path") and not row.get("unreadable"):
                    overlay = draw_overlay(read_image(row["path"]), row["polygons"])
                    cv2.imwrite(str(self.visualize / (Path(row["name"]).stem + ".png")), overlay)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.close()
        if self.unreadable:
            shown = ", ".join(self.unreadable[:WARN_NAMES])
            more = (
                f" and {len(self.unreadable) - WARN_NAMES} more" if len(self.unreadable) > WARN_NAMES else ""
            )
            log.warning(
                "%d unreadable image(s) got an empty row in %s: %s%s",
                len(self.unreadable),
                self.output,
                shown,
                more,
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


__all__ = [
    "HEADER",
    "CsvPredictionWriter",
    "check_output",
    "completed_rows",
    "draw_overlay",
    "format_polygons",
]
