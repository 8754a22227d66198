"""Detection metrics: CLEval (detection-only) and ICDAR15 IoU, both with summed DDP states."""

from ocr.metrics.cleval_metric import CLEvalDetectionMetric
from ocr.metrics.detection import DetectionMetrics
from ocr.metrics.iou_metric import IoUDetectionMetric

__all__ = ["CLEvalDetectionMetric", "DetectionMetrics", "IoUDetectionMetric"]
