"""Move a trained checkpoint through a size-capped transfer and back.

``export CKPT OUT_PREFIX`` keeps what ``ocr validate``/``ocr predict`` need (fp16 weights, the
model and data hyper-parameters) and splits it into parts under 16 MiB; ``import PREFIX CKPT``
joins them and restores fp32 weights. The fp16 rounding is the only change; report figures from
the restored checkpoint as such.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch

from ocr.inference.weights import slim_checkpoint

PART = 15 * 1024 * 1024


def export(ckpt: str, prefix: str) -> None:
    full = torch.load(ckpt, map_location="cpu", weights_only=False)
    slim = {**slim_checkpoint(full), "source": str(ckpt)}
    buf = io.BytesIO()
    torch.save(slim, buf)
    data = buf.getvalue()
    for i in range(0, len(data), PART):
        Path(f"{prefix}.part{i // PART}").write_bytes(data[i : i + PART])
    print(f"exported {ckpt} as {(len(data) + PART - 1) // PART} parts, {len(data) / 2**20:.1f} MiB")


def restore(prefix: str, ckpt: str) -> None:
    parts = sorted(Path(prefix).parent.glob(Path(prefix).name + ".part*"), key=lambda p: int(p.suffix[5:]))
    slim = torch.load(
        io.BytesIO(b"".join(p.read_bytes() for p in parts)), map_location="cpu", weights_only=False
    )
    slim["state_dict"] = {
        k: (v.float() if v.is_floating_point() else v) for k, v in slim["state_dict"].items()
    }
    torch.save(slim, ckpt)
    print(f"restored {len(parts)} parts into {ckpt} (epoch {slim['epoch']}, step {slim['global_step']})")


if __name__ == "__main__":
    command, src, dst = sys.argv[1:4]
    {"export": export, "import": restore}[command](src, dst)
