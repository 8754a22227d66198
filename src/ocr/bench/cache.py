"""Which on-disk store for the target cache: diskcache or files (atomic rename, plain or mmap reads).

``ocr bench cache [--data SROIE_SPLIT] [--size 1024]`` writes real cache entries (the encoded
DB targets of each receipt at ``size`` x ``size``, as the collate makes them) into each store and
measures, single process: write and read latency (a read includes the header + crc check); and
two processes hammering the same key set at once (half reads, half writes of the same and of
different keys, a byte budget that forces evictions): latency, errors (e.g. SQLite timeouts) and
torn reads (an entry that fails its crc). Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import statistics
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocr.cache.codec import KIND_TARGETS, CorruptEntry, frame, unframe
from ocr.cache.store import FileStore
from ocr.targets.cache import PolygonCache, encode_targets
from ocr.targets.db_targets import make_db_targets
from ocr.targets.maps import DBTargets
from ocr.targets.params import DBTargetParams

BACKENDS = ("files", "files_mmap", "diskcache_lrs", "diskcache_lru")


class _DiskcacheStore:
    """The same read/write interface on diskcache, with an explicit size limit and eviction policy."""

    def __init__(self, root: Path, max_bytes: int, policy: str) -> None:
        import diskcache

        self.cache = diskcache.Cache(str(root), size_limit=max_bytes, eviction_policy=policy, timeout=60)

    def write(self, key: str, parts: Sequence[Any]) -> bool:
        self.cache.set(key, b"".join(parts))
        return True

    def read(self, key: str) -> Any:
        return self.cache.get(key)

    def total_bytes(self) -> int:
        return int(self.cache.volume())


def open_store(name: str, root: Path, max_bytes: int) -> Any:
    if name == "files":
        return FileStore(root, max_bytes)
    if name == "files_mmap":
        return FileStore(root, max_bytes, use_mmap=True)
    policy = {"diskcache_lrs": "least-recently-stored", "diskcache_lru": "least-recently-used"}[name]
    return _DiskcacheStore(root, max_bytes, policy)


def make_entries(data: str | None, size: int, count: int) -> list[list[Any]]:
    """Encoded target payloads: real receipts when ``data`` is a SROIE split, else random quads."""
    params = DBTargetParams()
    shape = (size, size)
    payloads: list[list[Any]] = []
    if data:
        from ocr.bench.targets import load_sroie_items

        for _, polygons, ignore in load_sroie_items(data, size)[:count]:
            payloads.append(encode_targets(make_db_targets(polygons, ignore, shape, params)))
    rng = np.random.default_rng(0)
    while len(payloads) < count:
        polygons = []
        for _ in range(60):
            x, y = rng.uniform(0, size * 0.8, 2)
            w, h = rng.uniform(size * 0.02, size * 0.2), rng.uniform(size * 0.01, size * 0.03)
            polygons.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32))
        payloads.append(encode_targets(make_db_targets(polygons, [False] * 60, shape, params)))
    return payloads


def _key(i: int) -> str:
    return f"{i:064x}"


def _entry(i: int, payload: list[Any], version: int) -> list[Any]:
    """A framed entry; ``version`` makes two writes of one key differ, so a torn mix fails its crc."""
    header, parts = frame(KIND_TARGETS, bytes.fromhex(_key(i)), [*payload, struct.pack("<q", version)])
    return [header, *parts]


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return 1000.0 * float(np.quantile(values, q))


def _check(raw: Any, i: int) -> bool:
    try:
        unframe(raw if isinstance(raw, memoryview) else memoryview(raw), KIND_TARGETS, bytes.fromhex(_key(i)))
    except CorruptEntry:
        return False
    return True


def _hammer(
    name: str,
    root: str,
    max_bytes: int,
    payloads: list[list[Any]],
    ops: int,
    seed: int,
    start_at: float,
    results: Any,
) -> None:
    store = open_store(name, Path(root), max_bytes)
    rng = np.random.default_rng(seed)
    latencies: list[float] = []
    errors = torn = reads = hits = 0
    while time.time() < start_at:
        time.sleep(0.001)
    for op in range(ops):
        i = int(rng.integers(len(payloads)))
        t0 = time.perf_counter()
        try:
            if op % 2:
                store.write(_key(i), _entry(i, payloads[i], seed * 1_000_000 + op))
            else:
                reads += 1
                raw = store.read(_key(i))
                if raw is not None:
                    hits += 1
                    torn += not _check(raw, i)
        except Exception:  # e.g. sqlite3.OperationalError: database is locked
            errors += 1
        latencies.append(time.perf_counter() - t0)
    results.put({"latencies": latencies, "errors": errors, "torn": torn, "reads": reads, "hits": hits})


def bench_store(name: str, payloads: list[list[Any]], root: Path, ops: int = 200) -> dict[str, float | int]:
    entry_bytes = sum(len(b"".join(_entry(0, p, 0))) for p in payloads) / len(payloads)
    # no eviction in this phase (diskcache counts its SQLite file in the volume)
    budget = max(int(entry_bytes * len(payloads) * 2), 256 * 1024**2)
    store = open_store(name, root / "single", budget)
    writes, reads = [], []
    for i, payload in enumerate(payloads):
        entry = _entry(i, payload, 0)
        t0 = time.perf_counter()
        store.write(_key(i), entry)
        writes.append(time.perf_counter() - t0)
    for _ in range(3):
        for i in range(len(payloads)):
            t0 = time.perf_counter()
            raw = store.read(_key(i))
            ok = raw is not None and _check(raw, i)
            reads.append(time.perf_counter() - t0)
            if not ok:
                raise RuntimeError(f"{name}: entry {i} did not read back intact")
    del store
    # Two processes at once, a budget of 3/4 of the key set: evictions happen under the readers.
    shared = root / "shared"
    mp_budget = int(entry_bytes * len(payloads) * 0.75)
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [
        ctx.Process(
            target=_hammer, args=(name, str(shared), mp_budget, payloads, ops, seed, start_at, results)
        )
        for seed in (1, 2)
    ]
    for proc in procs:
        proc.start()
    outs = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    wall = max(sum(o["latencies"]) for o in outs)
    latencies = [v for o in outs for v in o["latencies"]]
    on_disk = open_store(name, shared, mp_budget).total_bytes()
    return {
        "write_p50_ms": _ms(writes, 0.5),
        "write_p95_ms": _ms(writes, 0.95),
        "read_p50_ms": _ms(reads, 0.5),
        "read_p95_ms": _ms(reads, 0.95),
        "mp_ops": len(latencies),
        "mp_ops_per_s": len(latencies) / wall if wall else float("nan"),
        "mp_p50_ms": _ms(latencies, 0.5),
        "mp_p95_ms": _ms(latencies, 0.95),
        "mp_read_hit_rate": sum(o["hits"] for o in outs) / max(1, sum(o["reads"] for o in outs)),
        "mp_errors": sum(o["errors"] for o in outs),
        "mp_torn_reads": sum(o["torn"] for o in outs),
        "mp_budget_bytes": mp_budget,
        "mp_bytes_on_disk": on_disk,
    }


def bench_cache(
    data: str | None, size: int = 1024, entries: int = 48, ops: int = 200, backends: Sequence[str] = BACKENDS
) -> dict[str, Any]:
    payloads = make_entries(data, size, entries)
    entry_bytes = statistics.mean(len(b"".join(_entry(0, p, 0))) for p in payloads)
    result: dict[str, Any] = {
        "size": size,
        "entries": len(payloads),
        "entry_mb": entry_bytes / 1e6,
        "ops_per_process": ops,
        "backends": {},
    }
    for name in backends:
        root = Path(tempfile.mkdtemp(prefix=f"ocr-bench-{name}-"))
        try:
            result["backends"][name] = bench_store(name, payloads, root, ops)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return result


@contextlib.contextmanager
def cache_hit_lookup(
    items: Sequence[tuple[tuple[int, int], list[np.ndarray], list[bool]]],
    params: DBTargetParams | None = None,
) -> Iterator[tuple[Callable[..., object], Callable[[], int]]]:
    """``bench_targets``' ``cache_lookup`` hook: a real :class:`PolygonCache` hit from disk.

    Every item is stored first by one cache; the timed lookups go through a second one with no
    in-process LRU (``max_size=0``), i.e. the path a fresh DataLoader worker or another rank takes:
    key, file read, header + crc check, decode into a reused buffer (as the collate does). The
    second callable counts the items whose hit is bit-identical to a fresh computation.
    """
    params = params or DBTargetParams()
    root = tempfile.mkdtemp(prefix="ocr-bench-targets-cache-")
    try:
        writer = PolygonCache(max_size=0, cache_dir=root, max_bytes=8 * 1024**3)
        for shape, polygons, ignore in items:
            key = writer._generate_key(polygons, shape, params, ignore)
            writer.set(key, make_db_targets(polygons, ignore, shape, params))
        reader = PolygonCache(max_size=0, cache_dir=root, max_bytes=8 * 1024**3)
        buffers: dict[tuple[int, int], DBTargets] = {}

        def lookup(shape: tuple[int, int], polygons: list[np.ndarray], ignore: list[bool]) -> object:
            out = buffers.setdefault(shape, DBTargets.empty(shape))
            hit = reader.get(reader._generate_key(polygons, shape, params, ignore), out)
            if hit is None:
                raise RuntimeError("cache bench: expected a hit")
            return hit

        def identical() -> int:
            count = 0
            for shape, polygons, ignore in items:
                fresh = make_db_targets(polygons, ignore, shape, params)
                hit = reader.get(reader._generate_key(polygons, shape, params, ignore))
                count += (
                    hit is not None
                    and hit.ignored_count == fresh.ignored_count
                    and all(
                        np.array_equal(a.view(np.uint32), b.view(np.uint32))
                        for a, b in zip(hit.maps(), fresh.maps(), strict=True)
                    )
                )
            return count

        yield lookup, identical
    finally:
        shutil.rmtree(root, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="SROIE split for real entries; else random")
    parser.add_argument("--size", type=int, default=1024, help="map side (entries are size x size)")
    parser.add_argument("--entries", type=int, default=48)
    parser.add_argument("--ops", type=int, default=200, help="operations per process in the 2-process phase")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = bench_cache(args.data, args.size, args.entries, args.ops, args.backends)
    print(f"{'store':<16}{'write p50':>11}{'read p50':>10}{'2-proc p50/p95 ms':>20}{'errors':>8}{'torn':>6}")
    for name, r in result["backends"].items():
        print(
            f"{name:<16}{r['write_p50_ms']:>9.2f}ms{r['read_p50_ms']:>8.2f}ms"
            f"{r['mp_p50_ms']:>11.2f} / {r['mp_p95_ms']:<6.2f}{r['mp_errors']:>8}{r['mp_torn_reads']:>6}"
        )
    return result


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONHASHSEED", "0")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    import json

    print(json.dumps(run(parser.parse_args())))
