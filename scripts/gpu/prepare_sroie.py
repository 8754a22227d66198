"""Copy SROIE scaled to a longest side of 1024 px (JPEG q80, boxes scaled alike) for the device trip.

The device transfer is capped at 64 MiB; the 500 receipts at 1600 px do not fit, at 1024 px they do.
``experiment=sroie*`` resizes to 1024 anyway, so training sees the same pixels up to JPEG rounding.

    python scripts/gpu/prepare_sroie.py ../shared/datasets/sroie .gpu/sroie1024
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

SIZE = 1024


def main(src: str, dst: str) -> None:
    for split in ("train", "val"):
        out_images, out_gt = Path(dst, split, "images"), Path(dst, split, "gt")
        out_images.mkdir(parents=True, exist_ok=True)
        out_gt.mkdir(parents=True, exist_ok=True)
        for image_path in sorted(Path(src, split, "images").glob("*.jpg")):
            image = cv2.imread(str(image_path))
            h, w = image.shape[:2]
            s = min(1.0, SIZE / max(h, w))
            if s < 1.0:
                image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(out_images / image_path.name), image, [cv2.IMWRITE_JPEG_QUALITY, 80])
            lines = []
            gt = Path(src, split, "gt", image_path.stem + ".txt")
            for line in gt.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split(",", 8)
                if len(parts) < 9:
                    continue
                try:
                    coords = [round(float(v) * s) for v in parts[:8]]
                except ValueError:
                    continue
                lines.append(",".join(map(str, coords)) + "," + parts[8])
            (out_gt / gt.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
