"""The node cache: a file store, one entry codec, and thin clients on top (docs/cache.md).

* :mod:`ocr.cache.store`: one file per entry under ``<dir>/node-<host>/``, atomic writes, a byte budget;
* :mod:`ocr.cache.codec`: the entry header and its sections (bit-exact maps, blobs);
* :mod:`ocr.cache.client`: :class:`CacheClient`, an in-process LRU, per-client counters, faults that degrade;
* :mod:`ocr.cache.fingerprint`: one fingerprint of the package source for every key.

Clients: :class:`ocr.targets.cache.PolygonCache` (target maps) and
:class:`ocr.data.sample_cache.CachedSampleDataset` (whole samples). This package imports neither
``ocr.targets`` nor ``ocr.data``.
"""

from ocr.cache.client import CacheClient
from ocr.cache.fingerprint import code_fingerprint

__all__ = ["CacheClient", "code_fingerprint"]
