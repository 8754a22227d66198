"""``make demo``: the newest run's best checkpoint on receipts it never saw, as overlay PNGs.

1. Finds the best checkpoint of the newest ``outputs/train/<run>`` (or takes ``--ckpt``).
2. Renders a few synthetic receipts from a seed that neither training (seed 0) nor validation
   (seed 1) uses, scores the model on them with ``ocr validate`` and draws its boxes on them with
   ``ocr predict ... visualize=DIR``.
3. Does the same ``ocr predict`` on the SROIE val images when ``../shared`` holds them.

Prints the overlay folders last. Usage: ``python scripts/demo.py [--ckpt PATH] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SROIE_VAL = REPO.parent / "shared" / "datasets" / "sroie" / "val" / "images"
# Train renders seed 0 and validation seed 1 (configs/data/synthetic.yaml): 7 is neither.
DEMO_SEED = 7


def newest_best_checkpoint(runs_root: Path) -> Path:
    candidates = sorted(runs_root.glob("*/checkpoints/best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise SystemExit(
            f"demo: error: no best-*.ckpt under {runs_root}/*/checkpoints; run `make train` first"
        )
    return candidates[-1]


def ocr(args: list[str]) -> str:
    """Run ``ocr ARGS`` with this interpreter; its stdout (its last line is the task's result)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ocr.cli", *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"demo: error: `ocr {' '.join(args[:2])} ...` failed (exit {proc.returncode})")
    return proc.stdout


def render_unseen(count: int, seed: int) -> Path:
    """Render ``count`` synthetic receipts of ``seed`` into the synthetic cache; their folder."""
    from ocr.data.datasets.synthetic import SyntheticReceipts, default_cache_root

    dataset = SyntheticReceipts(num_samples=count, seed=seed, cache_dir=default_cache_root() / "synthetic")
    dataset.prepare()
    return dataset.root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, help="checkpoint (default: newest run's best)")
    parser.add_argument("--runs", type=Path, default=REPO / "outputs" / "train", help="where runs are")
    parser.add_argument("--out", type=Path, help="overlay folder (default: RUN/demo)")
    parser.add_argument("--count", type=int, default=4, help="synthetic receipts to render")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="their seed (unused by train/val)")
    parser.add_argument("--sroie", type=Path, default=SROIE_VAL, help="real images, used when present")
    args = parser.parse_args(argv)

    ckpt = (args.ckpt or newest_best_checkpoint(args.runs)).resolve()
    out = (args.out or ckpt.parent.parent / "demo").resolve()
    print(f"checkpoint: {ckpt}", flush=True)

    synthetic = render_unseen(args.count, args.seed)
    common = ["data.loader.num_workers=0", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]
    scores = ocr(
        [
            "validate",
            f"ckpt_path={ckpt}",
            f"data.val.seed={args.seed}",
            f"data.val.num_samples={args.count}",
            *common,
            f"hydra.run.dir={out / 'runs' / 'validate'}",
        ]
    )
    print(f"{args.count} unseen synthetic receipts (seed {args.seed}): {scores.strip().splitlines()[-1]}")
    folders = [out / "synthetic"]
    ocr(
        [
            "predict",
            f"ckpt_path={ckpt}",
            f"input={synthetic}",
            f"output={out / 'synthetic.csv'}",
            f"visualize={folders[0]}",
            *common,
            f"hydra.run.dir={out / 'runs' / 'synthetic'}",
        ]
    )
    if args.sroie.is_dir():
        folders.append(out / "sroie")
        ocr(
            [
                "predict",
                f"ckpt_path={ckpt}",
                f"input={args.sroie}",
                f"output={out / 'sroie.csv'}",
                f"visualize={folders[1]}",
                *common,
                f"hydra.run.dir={out / 'runs' / 'sroie'}",
            ]
        )
    else:
        print(f"no SROIE images at {args.sroie}: synthetic receipts only")
    for folder in folders:
        print(f"overlays: {folder} ({len(list(folder.glob('*.png')))} PNG)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
