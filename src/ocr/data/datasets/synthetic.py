"""Synthetic receipts: rendered once from a seed into an on-disk folder, then read like real data.

Rendering is deterministic (seed + config), so the folder name is a hash of both and a second run,
another worker or another DDP rank finds the same files instead of rendering again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from tqdm import tqdm

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.image_io import read_image
from ocr.data.sample import TextSample
from ocr.data.sanitize import file_identity
from ocr.data.synthetic import SyntheticReceiptConfig, render_receipt

FORMAT_VERSION = 1


def default_cache_root() -> Path:
    return Path(os.environ.get("OCR_CACHE_DIR", Path.home() / ".cache" / "ocr"))


class SyntheticReceipts(ReceiptDataset):
    needs_root: ClassVar[bool] = False

    def __init__(
        self,
        num_samples: int = 48,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        render: dict[str, Any] | None = None,
        root: str | Path | None = None,
    ) -> None:
        super().__init__()
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        known = {f.name for f in fields(SyntheticReceiptConfig)}
        unknown = set(render or {}) - known
        if unknown:
            raise ValueError(f"unknown synthetic render options {sorted(unknown)}; known: {sorted(known)}")
        self.config = SyntheticReceiptConfig(**(render or {}))
        self.num_samples = num_samples
        self.seed = seed
        digest = hashlib.sha256(
            json.dumps(
                [FORMAT_VERSION, seed, num_samples, asdict(self.config)], sort_keys=True, default=str
            ).encode()
        ).hexdigest()[:16]
        base = Path(root) if root else Path(cache_dir) if cache_dir else default_cache_root() / "synthetic"
        self.root = base / f"seed{seed}_n{num_samples}_{digest}"
        self._labels: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.num_samples

    def prepare(self) -> None:
        """Render every receipt once into ``self.root`` (atomic: a half-written folder is never used)."""
        if (self.root / "labels.json").exists():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=self.root.name + ".tmp", dir=self.root.parent))
        jobs = [
            (self.seed * 1_000_003 + i, self.config, tmp / f"{i:06d}.png") for i in range(self.num_samples)
        ]
        desc = f"rendering synthetic receipts (seed {self.seed})"
        # Each receipt is independent and deterministic (its own seed): render on every core, in
        # order. Rendering is a first-run cost of `make train`.
        processes = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        if processes > 1:
            context = multiprocessing.get_context(
                "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            )
            with context.Pool(processes, initializer=_init_render_worker) as pool:
                labels = list(tqdm(pool.imap(_render_one, jobs), desc=desc, unit="img", total=len(jobs)))
        else:
            labels = [_render_one(job) for job in tqdm(jobs, desc=desc, unit="img")]
        (tmp / "labels.json").write_text(json.dumps(labels))
        try:
            tmp.rename(self.root)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)

    @property
    def labels(self) -> list[dict[str, Any]]:
        if self._labels is None:
            self.prepare()
            self._labels = json.loads((self.root / "labels.json").read_text())
        return self._labels

    def identity(self, index: int) -> tuple[Any, ...]:
        label = self.labels[index]
        return ("synthetic", file_identity(self.root / label["file"]), json.dumps(label, sort_keys=True))

    def load(self, index: int) -> TextSample:
        label = self.labels[index]
        image = read_image(self.root / label["file"], self.max_image_pixels)
        polygons = [np.asarray(p, dtype=np.float32) for p in label["polygons"]]
        return TextSample(image, polygons, list(label["texts"]), [False] * len(polygons), label["file"])


def _init_render_worker() -> None:
    # As in the DataLoader workers (ocr.data.datamodule): a forked child must not wait on the
    # parent's OpenCV thread pool; 0 runs OpenCV sequentially and leaves that pool alone.
    cv2.setNumThreads(0)


def _render_one(job: tuple[int, SyntheticReceiptConfig, Path]) -> dict[str, Any]:
    """Render one receipt to ``path``; its label record (module level: pool workers pickle it)."""
    seed, config, path = job
    sample = render_receipt(seed, config)
    cv2.imwrite(str(path), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
    return {"file": path.name, "polygons": [p.tolist() for p in sample.polygons], "texts": sample.texts}
