"""Readers, looked up by name (a timm-style registry): ``data.reader`` picks one, no ``if`` ladders."""

from ocr.data.datasets.base import DATASETS, ReceiptDataset, build_dataset, register_dataset

__all__ = ["DATASETS", "ReceiptDataset", "build_dataset", "register_dataset"]

# Import readers for their registration side effect.
from ocr.data.datasets import images as _images  # noqa: F401
from ocr.data.datasets import json_layout as _json_layout  # noqa: F401
from ocr.data.datasets import sroie as _sroie  # noqa: F401
from ocr.data.datasets import synthetic as _synthetic  # noqa: F401
