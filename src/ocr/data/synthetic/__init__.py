"""Deterministic synthetic receipts (paper, text, camera) with exact SROIE-style line quads."""

from ocr.data.synthetic.config import SyntheticReceiptConfig
from ocr.data.synthetic.debug import draw_polygons
from ocr.data.synthetic.render import render_receipt

__all__ = ["SyntheticReceiptConfig", "draw_polygons", "render_receipt"]
