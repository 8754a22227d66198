"""One fingerprint of the code that shapes a cache entry: the whole ``ocr`` package source.

A hand-kept list of "modules that matter" falls behind the code (the polygon preparation, the
kernels, the GT cleaning and image decoding all shape an entry, far from the cache). Hashing every
``.py`` file of the package is cheap, once per process, and cannot miss one: any edit, or
an upgrade of the package, gives new keys, so old entries are simply never read again (the byte
budget evicts them). The versions of the libraries that decode, resize and rasterise are added,
since their output is part of an entry too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The package whose source is hashed; tests point it at an edited copy.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_LIBRARIES = ("numpy", "cv2", "albumentations", "PIL", "numba", "pyclipper", "shapely")
_memo: dict[Path, str] = {}


def library_versions() -> tuple[str, ...]:
    import importlib

    versions = []
    for name in _LIBRARIES:
        try:
            versions.append(f"{name}={getattr(importlib.import_module(name), '__version__', '?')}")
        except ImportError:
            versions.append(f"{name}=absent")
    return tuple(versions)


def source_fingerprint(root: Path) -> str:
    """blake2b of every ``*.py`` under ``root``: relative paths and bytes, in sorted order."""
    digest = hashlib.blake2b(digest_size=16, person=b"ocr-code")
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(len(name).to_bytes(8, "little") + name)
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def code_fingerprint() -> str:
    """The package source and library versions as one string, computed once per process and root."""
    root = PACKAGE_ROOT
    if root not in _memo:
        _memo[root] = f"{source_fingerprint(root)}|{'|'.join(library_versions())}"
    return _memo[root]


__all__ = ["PACKAGE_ROOT", "code_fingerprint", "library_versions", "source_fingerprint"]
