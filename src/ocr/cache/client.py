"""A store client: one kind of entry, its own counters, an in-process LRU, and faults that degrade.

Every client (target maps, whole samples, and any later one such as decoded images) is a
:class:`CacheClient` with its own ``name`` and entry ``kind`` over the node's folder: entries of
all clients share one byte budget (one lock file), each client counts its own hits, misses and
faults, reported as ``<name>_cache_<counter>`` (``target_cache_hits``, ``sample_cache_write_errors``).

Faults never kill a run. A cache folder that cannot be created, is read-only, is a file, whose
lock file cannot be written, or whose disk is full: the client warns once per process (naming the
path and the fix) and carries on with its in-process LRU only ("memory only"); entries already on
disk are still read when the folder is readable. Counters: ``write_errors`` (entries that could
not be written: the failed write and every one skipped after it), ``read_errors`` (entry reads
that failed: counted misses), ``corrupt`` (entries that failed their check: deleted, recomputed),
``too_large`` (entries over the whole budget), and for the sample client ``identity_errors``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocr.cache.codec import Buffer, CorruptEntry, frame, unframe
from ocr.cache.store import FileStore

log = logging.getLogger("ocr.cache")

DEFAULT_MEMORY_BYTES = 256 * 1024**2
_warned: set[tuple[str, str]] = set()


def _fix(exc: OSError) -> tuple[str, str]:
    """(what happened, how to fix it) for a file-system error on the cache folder."""
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return "the disk is full", "free space, lower data.cache.max_bytes, or move data.cache.dir"
    if code == errno.EROFS:
        return "the file system is read-only", "point data.cache.dir (or OCR_CACHE_DIR) at a writable folder"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied", "make it writable by this user or point data.cache.dir elsewhere"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "a file stands where a folder should be", "remove it or point data.cache.dir at a folder"
    if code == errno.ENOENT:
        return "the folder is missing", "create it or point data.cache.dir at an existing folder"
    return f"{type(exc).__name__}", "check the folder, or set data.cache.enabled=false"


def warn_once(name: str, action: str, path: Path, exc: OSError, consequence: str) -> None:
    what, fix = _fix(exc)
    key = (str(path), f"{action}:{exc.errno}")
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "ocr: warning: %s cache: cannot %s %s: %s (%s); %s. Fix: %s, or set data.cache.enabled=false.",
        name,
        action,
        path,
        what,
        exc.strerror or exc,
        consequence,
        fix,
    )


class CacheClient:
    """One client of a node cache folder: ``read``/``write``/``discard`` entries of one ``kind``.

    Args:
        name: counter prefix (``target`` -> ``target_cache_hits``).
        kind: the entry kind written in each header (:mod:`ocr.cache.codec`).
        cache_dir: the node folder; ``None`` keeps entries in this process only.
        max_bytes: byte budget of the folder (shared by every client of it).
        memory_items, memory_bytes: bounds of the in-process LRU (0 items disables it).
    """

    def __init__(
        self,
        name: str,
        kind: int,
        cache_dir: str | Path | None,
        max_bytes: int,
        memory_items: int = 256,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        probe: bool = True,
    ) -> None:
        self.name = name
        self.kind = kind
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_bytes = max_bytes
        self.max_items = memory_items
        self.memory_bytes = memory_bytes
        self.store = FileStore(self.cache_dir, max_bytes) if self.cache_dir is not None else None
        self.disk_writes = self.store is not None
        self.disk_reads = self.store is not None
        self._reset_process_state()
        if probe:
            self._probe()

    # -- process state ----------------------------------------------------------------------------
    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._memory: OrderedDict[str, memoryview] = OrderedDict()
        self._memory_used = 0
        self.pending: dict[str, int] = {}  # since the last drain (what a batch reports)
        self.totals: dict[str, int] = {}  # since this process started

    def check_process(self) -> None:
        """A forked DataLoader worker inherits the parent's LRU and counters: start clean."""
        if self._pid != os.getpid():
            self._reset_process_state()

    def __getstate__(self) -> dict[str, Any]:
        """The constructor's arguments, plus ``disk``: the folder access the parent still had."""
        state = {k: getattr(self, k) for k in ("name", "kind", "cache_dir", "max_bytes", "memory_bytes")}
        disk = (self.disk_reads, self.disk_writes)
        # probe only where the parent could still write: otherwise it already warned
        state.update(memory_items=self.max_items, probe=all(disk), disk=disk)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        disk = state.pop("disk")
        type(self).__init__(self, **state)  # (a subclass pickles its own constructor's arguments)
        self.disk_reads = self.disk_reads and disk[0]
        self.disk_writes = self.disk_writes and disk[1]

    # -- faults -----------------------------------------------------------------------------------
    def count(self, counter: str, n: int = 1) -> None:
        self.pending[counter] = self.pending.get(counter, 0) + n
        self.totals[counter] = self.totals.get(counter, 0) + n

    def _probe(self) -> None:
        """Find a bad folder now (in the main process, before workers fork), not on the first write."""
        if self.store is None:
            return
        try:
            self.store.probe()
        except OSError as exc:
            self._write_fault(exc, count=False)

    def _write_fault(self, exc: OSError, count: bool = True) -> None:
        assert self.store is not None
        if count:
            self.count("write_errors")
        self.disk_writes = False  # from now on every write is counted as an error and skipped
        readable = self.store.root.is_dir() and os.access(self.store.root, os.R_OK | os.X_OK)
        self.disk_reads = self.disk_reads and readable
        consequence = "reading the entries already there, writing none" if readable else "memory only"
        warn_once(self.name, "write to", self.store.root, exc, f"continuing {consequence}")

    def _read_fault(self, exc: OSError) -> None:
        assert self.store is not None
        self.count("read_errors")
        warn_once(self.name, "read from", self.store.root, exc, "that entry counts as a miss")

    # -- entries ----------------------------------------------------------------------------------
    def read(self, key: str) -> memoryview | None:
        """The verified payload of ``key`` (LRU first, then the folder), or ``None``. Not counted
        as a hit or miss: the client decides once it has decoded the payload."""
        self.check_process()
        payload = self._memory.get(key)
        if payload is not None:
            self._memory.move_to_end(key)
            return payload
        if self.store is None or not self.disk_reads:
            return None
        try:
            raw = self.store.read(key)
        except OSError as exc:
            self._read_fault(exc)
            return None
        if raw is None:
            return None
        try:
            payload = unframe(raw, self.kind, bytes.fromhex(key))
        except CorruptEntry:
            self.discard(key)
            return None
        self._remember(key, payload)
        return payload

    def write(self, key: str, parts: list[Buffer]) -> None:
        self.check_process()
        header = frame(self.kind, bytes.fromhex(key), parts)
        if self.max_items and self.memory_bytes:
            self._remember(key, memoryview(b"".join(parts)))
        if self.store is None:
            return
        if not self.disk_writes:
            self.count("write_errors")  # an entry the folder should have held: counted, not written
            return
        try:
            if not self.store.write(key, [header, *parts]):
                self.count("too_large")
        except OSError as exc:
            self._write_fault(exc)

    def discard(self, key: str) -> None:
        """Forget a bad entry (``CorruptEntry``) everywhere, and count it."""
        self.invalidate(key)  # first: in a fresh process it resets the counters the count goes to
        self.count("corrupt")

    def invalidate(self, key: str | None = None) -> None:
        """Drop one key, or every entry of the folder (all clients) and of this LRU when ``None``."""
        self.check_process()
        if key is None:
            self._memory.clear()
            self._memory_used = 0
        else:
            self._forget(key)
        if self.store is None or not self.disk_writes:
            return
        try:
            if key is None:
                self.store.clear()
            else:
                self.store.remove(key)
        except OSError as exc:
            self._write_fault(exc)

    def entries(self) -> int:
        """Entries visible to this process: in the folder when it is readable, else in the LRU."""
        self.check_process()
        return self._measure(len, len(self._memory))

    def total_bytes(self) -> int:
        return self._measure(FileStore.total_bytes, self._memory_used)

    def _measure(self, scan: Callable[[FileStore], int], in_memory: int) -> int:
        """``scan`` of the folder when it is readable (a failed scan is a read error), else ``in_memory``."""
        if self.store is not None and self.disk_reads:
            try:
                return scan(self.store)
            except OSError as exc:
                self._read_fault(exc)
        return in_memory

    def drain(self) -> dict[str, int]:
        """Counts since the last drain, as ``<name>_cache_<counter>`` (what a batch reports)."""
        self.check_process()
        out = {f"{self.name}_cache_{k}": v for k, v in self.pending.items() if v}
        self.pending = {}
        return out

    # -- in-process LRU ---------------------------------------------------------------------------
    def _remember(self, key: str, payload: memoryview) -> None:
        if not self.max_items or payload.nbytes > self.memory_bytes:
            return
        self._forget(key)
        self._memory[key] = payload
        self._memory_used += payload.nbytes
        while len(self._memory) > self.max_items or self._memory_used > self.memory_bytes:
            _, old = self._memory.popitem(last=False)
            self._memory_used -= old.nbytes

    def _forget(self, key: str) -> None:
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_used -= old.nbytes

    @property
    def memory_items(self) -> int:
        """Entries in this process's LRU."""
        self.check_process()
        return len(self._memory)

    def __repr__(self) -> str:
        where = f"dir={str(self.cache_dir)!r}" if self.store is not None else "memory only"
        return f"CacheClient({self.name!r}, {where}, writes={'on' if self.disk_writes else 'off'})"


__all__ = ["DEFAULT_MEMORY_BYTES", "CacheClient", "warn_once"]
