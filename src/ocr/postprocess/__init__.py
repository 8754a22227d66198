"""DB post-processing: probability maps -> polygons in original-image coordinates."""

from ocr.postprocess.db_postprocess import DBPostProcessor, read_meta
from ocr.postprocess.geometry import order_points_clockwise, polygon_to_quad

__all__ = ["DBPostProcessor", "order_points_clockwise", "polygon_to_quad", "read_meta"]
