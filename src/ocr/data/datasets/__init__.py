"""Readers: one :class:`ReceiptDataset` subclass per layout, chosen by a data config's
``reader._target_`` (``configs/data/*.yaml``); ``images`` is the input of ``ocr predict``."""

from ocr.data.datasets.base import ReceiptDataset
from ocr.data.datasets.images import ImageFolderDataset
from ocr.data.datasets.json_layout import JsonLayoutDataset
from ocr.data.datasets.sroie import SROIEDataset
from ocr.data.datasets.synthetic import SyntheticReceipts

__all__ = ["ImageFolderDataset", "JsonLayoutDataset", "ReceiptDataset", "SROIEDataset", "SyntheticReceipts"]
