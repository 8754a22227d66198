"""The worst val receipts by IoU@0.5 hmean, as one overlay montage (green: GT, red: predicted).

    python scripts/gpu/failure_cases.py submission.csv SPLIT_DIR OUT.png [K]

Also prints one JSON line per image (gt, det, matched), worst first, for the model card.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ocr.data.datasets.sroie import parse_gt
from ocr.metrics.iou_metric import image_counts


def main(csv_path: str, split: str, out: str, k: int = 6) -> None:
    scores = []
    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    for name, cell in rows:
        pred = [np.array(p.split(), np.float32).reshape(-1, 2) for p in cell.split("|") if p]
        gt_path = Path(split, "gt", Path(name).stem + ".txt")
        anns = [a for a in parse_gt(gt_path) if a.points is not None]
        gt = [np.asarray(a.points, np.float32).reshape(-1, 2) for a in anns]
        ignore = [a.text.strip() == "###" for a in anns]
        n_gt, n_det, matched = image_counts(pred, gt, ignore)
        p, r = matched / max(n_det, 1), matched / max(n_gt, 1)
        scores.append(((2 * p * r / (p + r)) if p + r else 0.0, name, pred, gt, n_gt, n_det, matched))
    scores.sort(key=lambda t: t[0])
    tiles = []
    for hmean, name, pred, gt, n_gt, n_det, matched in scores[:k]:
        print(
            json.dumps(
                {"image": name, "iou_hmean": round(hmean, 4), "gt": n_gt, "det": n_det, "matched": matched}
            )
        )
        image = cv2.imread(str(Path(split, "images", name)))
        cv2.polylines(image, [g.astype(np.int32) for g in gt], True, (0, 200, 0), 2)
        cv2.polylines(image, [q.astype(np.int32) for q in pred], True, (0, 0, 255), 1)
        cv2.putText(image, f"{name} {hmean:.3f}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 0, 0), 3)
        s = 900 / image.shape[0]
        tiles.append(cv2.resize(image, (round(image.shape[1] * s), 900)))
    cv2.imwrite(
        out, np.concatenate(tiles, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 85] if out.endswith(".jpg") else []
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 6)
