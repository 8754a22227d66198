"""Node-wide on-disk entry store: one file per entry, published by atomic rename, a byte budget.

Every DataLoader worker and every DDP rank on a node opens the same directory, so an entry
written by one process is a hit for all the others (a cache per worker would miss every entry
another worker computed). Why files and not diskcache: see docs/cache.md.

* **One folder per node**: entries live under ``<dir>/node-<hostname>/``. The budget relies on
  ``flock``, which is coherent between the processes of one kernel but not across the machines
  that share a network folder (``~/.cache`` on an NFS home): two nodes pointed at one ``dir``
  therefore never write the same files, each keeps its own entries and budget.
* **Faults are the caller's**: every method raises ``OSError`` as the file system does; the
  clients (:mod:`ocr.cache.client`) count it, warn once and carry on without the disk.

* **Writes** go to a private temporary file in the entry's folder and are published with
  ``os.replace``: a reader sees the old entry, the new one or none, never a torn mix, and an
  insert writes only that entry.
* **Reads** take the whole file into a fresh buffer (no ``mmap``: docs/cache.md); the caller checks the
  header and checksum (:mod:`ocr.cache.codec`) and drops a bad entry with :meth:`remove`.
* **Budget**: the bytes in use are kept in a small lock file, updated under ``flock`` together with
  each publication, so the total never exceeds ``max_bytes``. When an insert would, the oldest
  entries by modification time go first (reads refresh it: least recently used) down to 90% of
  the budget, so the directory scan that costs is rare. Leftover temporary files from a killed
  writer are deleted by that scan.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ocr.cache.codec import Buffer, payload_size

SUFFIX = ".entry"
_LOCK_FILE = ".budget.lock"
_USAGE = struct.Struct("<q")
# A read refreshes its entry's LRU clock (mtime) at most this often: a hot entry read by every
# worker costs no metadata write per read; a clock a few seconds late barely changes the LRU order.
_TOUCH_AFTER_NS = 10 * 10**9
_STALE_TMP_NS = 3600 * 10**9
TRIM_TO = 0.9


def node_folder() -> str:
    """``node-<hostname>``: the subfolder this node owns inside a cache ``dir`` (see the docstring)."""
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "unknown"
    return f"node-{host}"


class FileStore:
    """Entries as files under ``root/<2 hex>/<key>.entry``; safe for concurrent processes."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root) / node_folder()
        self.max_bytes = int(max_bytes)
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        self._dirs: set[str] = set()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{SUFFIX}"

    def probe(self) -> None:
        """Raise the ``OSError`` a write would meet: folder missing and not creatable, read-only,
        not a folder, lock file not writable. Cheap (no entry is written)."""
        self._lock()
        probe = self.root / f".probe.{os.getpid()}.tmp"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        os.unlink(probe)

    # -- reads ----------------------------------------------------------------------------------
    def read(self, key: str) -> memoryview | None:
        """The whole file as one buffer, or ``None`` when there is no entry."""
        path = self.path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size == 0:
                return memoryview(b"")
            buf = bytearray(st.st_size)
            view = memoryview(buf)
            got = 0
            while got < st.st_size:
                n = os.readv(fd, [view[got:]])
                if n == 0:
                    break
                got += n
            view = view[:got]
        finally:
            os.close(fd)
        if time.time_ns() - st.st_mtime_ns > _TOUCH_AFTER_NS:
            with contextlib.suppress(OSError):
                os.utime(path)
        return view

    # -- writes ---------------------------------------------------------------------------------
    def write(self, key: str, parts: Sequence[Buffer]) -> bool:
        """Publish ``parts`` (header + payload) as the entry for ``key``; ``False`` if it cannot fit."""
        size = payload_size(parts)
        if size > self.max_bytes:
            return False
        path = self.path(key)
        folder = path.parent
        if folder.name not in self._dirs or not folder.is_dir():  # (the folder may be removed mid-run)
            folder.mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder.name)
        tmp = folder / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "wb") as fh:
                for part in parts:
                    fh.write(part)
            with self._budget() as usage:
                old = _size(path)
                if usage[0] - old + size > self.max_bytes:
                    usage[0] = self._trim(int(self.max_bytes * TRIM_TO) - size, keep=path)
                    old = _size(path)
                os.replace(tmp, path)
                usage[0] += size - old
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def remove(self, key: str) -> None:
        path = self.path(key)
        if not path.exists():
            return
        with self._budget() as usage:
            old = _size(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            usage[0] = max(0, usage[0] - old)

    def clear(self) -> None:
        with self._budget() as usage:
            for _, _, path in self._entries():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            usage[0] = 0

    # -- inspection -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(1 for _ in self._entries())

    def total_bytes(self) -> int:
        """Bytes of all entries, from a directory scan (the budget counter is for writers)."""
        return sum(size for _, size, _ in self._entries())

    # -- budget ---------------------------------------------------------------------------------
    def _lock(self) -> int:
        if self._lock_fd is None or self._pid != os.getpid():
            # A forked child must not share its parent's open file description: flock would then
            # treat both as the same holder. Open its own.
            self._pid = os.getpid()
            self._dirs = set()
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        return self._lock_fd

    @contextlib.contextmanager
    def _budget(self) -> Iterator[list[int]]:
        """Bytes in use (a one-item list to update), held under the node-wide lock."""
        fd = self._lock()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            raw = os.pread(fd, _USAGE.size, 0)
            usage = [_USAGE.unpack(raw)[0] if len(raw) == _USAGE.size else self.total_bytes()]
            yield usage
            os.pwrite(fd, _USAGE.pack(usage[0]), 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _entries(self) -> Iterator[tuple[int, int, str]]:
        """(mtime_ns, size, path) of every entry; deletes temporary files left by killed writers."""
        try:
            folders = [e for e in os.scandir(self.root) if e.is_dir()]
        except FileNotFoundError:
            return
        now = time.time_ns()
        for folder in folders:
            with contextlib.suppress(FileNotFoundError), os.scandir(folder.path) as it:
                for entry in it:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    if entry.name.endswith(SUFFIX):
                        yield st.st_mtime_ns, st.st_size, entry.path
                    elif entry.name.endswith(".tmp") and now - st.st_mtime_ns > _STALE_TMP_NS:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)

    def _trim(self, target: int, keep: Path) -> int:
        """Delete least recently used entries until at most ``target`` bytes remain; the new total."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= target:
                break
            if path == str(keep):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                total -= size
        return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
