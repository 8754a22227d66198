"""PolygonCache: keys that never collide, bounds, corruption, concurrency, pickling, exactness."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr.bench.identity import same_bits, same_targets
from ocr.cache.client import CacheClient
from ocr.cache.codec import HEADER_SIZE, KIND_SAMPLE
from ocr.data.collate import DBCollateFN
from ocr.errors import UserInputError
from ocr.targets import DBTargetParams, DBTargets, make_db_targets
from ocr.targets.cache import CacheConfigError, PolygonCache, decode_targets, encode_targets

P = DBTargetParams()
SQUARE = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)


def key(
    polygons: list[Any],
    shape: tuple[int, int] = (64, 64),
    params: DBTargetParams = P,
    ignore: list[bool] | None = None,
) -> str:
    return PolygonCache(persist_to_disk=False)._generate_key(polygons, shape, params, ignore)


def deep_equal(a: Any, b: Any) -> bool:
    """Structural equality, arrays compared bit for bit (with dtype and shape)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and same_bits(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b


def targets_for(
    seed: int, shape: tuple[int, int] = (48, 40), n: int = 6
) -> tuple[list[np.ndarray], list[bool], DBTargets]:
    rng = np.random.default_rng(seed)
    polygons = []
    for _ in range(n):
        x, y = rng.uniform(0, shape[1] - 12), rng.uniform(0, shape[0] - 10)
        w, h = rng.uniform(8, 20), rng.uniform(8, 12)
        polygons.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32))
    ignore = [bool(v) for v in rng.integers(0, 2, n)]
    return polygons, ignore, make_db_targets(polygons, ignore, shape, P)


# -- keys -----------------------------------------------------------------------------------------
def test_keys_differ_where_sorted_coordinates_collide() -> None:
    quad = SQUARE
    ragged5 = np.array([[0, 0], [4, 0], [8, 2], [4, 6], [0, 4]], np.float32)
    flat = np.arange(18, dtype=np.float32).reshape(9, 2)
    cases = {
        "square": [quad],
        "reversed winding (same sorted coordinates)": [quad[::-1].copy()],
        "start point rotated": [np.roll(quad, 1, axis=0)],
        "x and y swapped (same multiset)": [quad[:, ::-1].copy() + np.float32([1, 0])],
        "bow-tie order of the same points": [np.array([[0, 0], [10, 10], [10, 0], [0, 10]], np.float32)],
        "two polygons": [quad, ragged5],
        "two polygons swapped": [ragged5, quad],
        "ragged 4+5": [flat[:4], flat[4:]],
        "ragged 5+4 (same concatenation)": [flat[:5], flat[5:]],
        "one 9-point polygon (same concatenation)": [flat],
        "float64 (same values)": [quad.astype(np.float64)],
        "transposed shape (same bytes)": [quad.reshape(2, 4)],
        "no polygons": [],
        "one empty polygon": [np.zeros((0, 2), np.float32)],
    }
    keys = {name: key(polys) for name, polys in cases.items()}
    duplicates = [n for n in keys if list(keys.values()).count(keys[n]) > 1]
    assert not duplicates, duplicates
    assert np.array_equal(np.sort(quad.ravel()), np.sort(quad[::-1].ravel()))  # the old scheme's collision
    # everything else the maps depend on
    extra = {
        key([quad, ragged5], ignore=[True, False]),
        key([quad, ragged5], ignore=[False, True]),
        key([quad], shape=(64, 32)),
        key([quad], shape=(32, 64)),
        key([quad], params=DBTargetParams(formula="db")),
        key([quad], params=DBTargetParams(shrink_ratio=0.5)),
        key([quad], params=DBTargetParams(min_text_size=0)),
    }
    assert len(extra) == 7 and not extra & set(keys.values())


def test_keys_are_deterministic_and_ignore_none_means_all_false() -> None:
    polys = [SQUARE, SQUARE + 3]
    assert key(polys) == key([p.copy() for p in polys]) == key(polys, ignore=[False, False])
    assert key(polys) != key(polys, ignore=[False, True])
    assert len(key(polys)) == 64 and int(key(polys), 16) >= 0


polygon_lists = st.lists(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=0, max_size=5).map(
        lambda pts: np.array(pts, np.float32).reshape(-1, 2)
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(polygon_lists, polygon_lists)
def test_keys_equal_exactly_when_inputs_are_equal(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    """Tiny coordinate alphabets make permutations, regroupings and reorderings very likely."""
    equal = len(a) == len(b) and all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )
    assert (key(a) == key(b)) == equal


# -- LRU, budget, counters ------------------------------------------------------------------------
def test_lru_is_bounded_by_items_and_keeps_the_recently_used() -> None:
    cache = PolygonCache(max_size=3, persist_to_disk=False)
    stored = [targets_for(i) for i in range(5)]
    keys = [cache._generate_key(p, (48, 40), P, ig) for p, ig, _ in stored]
    for k, (_, _, t) in zip(keys[:3], stored, strict=False):
        cache.set(k, t)
    assert cache.get(keys[0]) is not None  # 0 is now the most recent: 1 goes first
    cache.set(keys[3], stored[3][2])
    cache.set(keys[4], stored[4][2])
    assert len(cache) == cache.memory_items == 3
    assert [cache.get(k) is not None for k in keys] == [True, False, False, True, True]
    assert (cache.hit_count, cache.miss_count) == (4, 2) and cache.hit_rate == pytest.approx(4 / 6)


def test_lru_is_bounded_by_bytes() -> None:
    _, _, targets = targets_for(0, shape=(256, 256), n=30)
    entry = sum(len(bytes(p)) for p in encode_targets(targets))
    cache = PolygonCache(max_size=100, persist_to_disk=False, memory_bytes=int(entry * 2.5))
    for i in range(5):
        cache.set(f"{i:064x}", targets)
    assert cache.memory_items == 2 and cache.total_bytes() <= entry * 2.5


def test_disk_byte_budget_holds_and_evicts_least_recently_used(tmp_path: Path) -> None:
    items = [targets_for(i, shape=(96, 80), n=8) for i in range(10)]
    entry = max(len(b"".join(bytes(p) for p in encode_targets(t))) for _, _, t in items) + HEADER_SIZE
    budget = int(entry * 3.5)
    cache = PolygonCache(max_size=0, cache_dir=tmp_path, max_bytes=budget)
    keys = []
    for polygons, ignore, targets in items:
        k = cache._generate_key(polygons, (96, 80), P, ignore)
        keys.append(k)
        cache.set(k, targets)
        assert cache.total_bytes() <= budget
        assert cache.get(k) is not None  # the newest entry always survives its own insert
    assert 1 <= len(cache) < len(items)
    assert cache.get(keys[0]) is None and cache.get(keys[-1]) is not None
    small = PolygonCache(max_size=0, cache_dir=tmp_path / "small", max_bytes=100)
    small.set(keys[0], items[0][2])  # larger than the whole budget: not stored, no error
    assert len(small) == 0


def test_invalidate_one_key_and_everything(tmp_path: Path) -> None:
    cache = PolygonCache(cache_dir=tmp_path)
    entries = [targets_for(i) for i in range(3)]
    keys = [cache._generate_key(p, (48, 40), P, ig) for p, ig, _ in entries]
    for k, (_, _, t) in zip(keys, entries, strict=True):
        cache.set(k, t)
    cache.invalidate(keys[0])
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is not None and len(cache) == 2
    cache.invalidate()
    assert len(cache) == 0 and cache.memory_items == 0 and cache.total_bytes() == 0


# -- corrupt entries ------------------------------------------------------------------------------
def _corruptions(data: bytes, other_key_file: bytes) -> dict[str, bytes]:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    header_flip = bytearray(data)
    header_flip[0] ^= 0xFF
    version = bytearray(data)
    version[4] += 1
    return {
        "payload bit flip": bytes(flipped),
        "truncated payload": data[:-7],
        "truncated header": data[: HEADER_SIZE // 2],
        "empty file": b"",
        "wrong magic": bytes(header_flip),
        "other format version": bytes(version),
        "appended bytes": data + b"\0" * 8,
        "another key's entry": other_key_file,
    }


def test_corrupt_or_truncated_entries_are_recomputed_never_returned(tmp_path: Path) -> None:
    writer = PolygonCache(max_size=0, cache_dir=tmp_path)
    (p1, i1, t1), (p2, i2, t2) = targets_for(1), targets_for(2)
    k1, k2 = writer._generate_key(p1, (48, 40), P, i1), writer._generate_key(p2, (48, 40), P, i2)
    writer.set(k1, t1)
    writer.set(k2, t2)
    assert writer.store is not None
    path = writer.store.path(k1)
    good, other = path.read_bytes(), writer.store.path(k2).read_bytes()
    collate = DBCollateFN(P, cache=PolygonCache(max_size=0, cache_dir=tmp_path), use_cache=True)
    sample = {
        "image": torch.zeros(3, 48, 40, dtype=torch.uint8),
        "polygons": p1,
        "ignore": i1,
        "meta": {},
        "perf": {},
    }
    for name, data in _corruptions(good, other).items():
        path.write_bytes(data)
        reader = PolygonCache(max_size=0, cache_dir=tmp_path)
        assert reader.get(k1) is None, name
        assert (reader.miss_count, reader.corrupt_count) == (1, 1), name
        assert not path.exists(), f"{name}: the bad entry must be deleted"
        path.write_bytes(data)
        batch = collate([dict(sample)])  # recomputed, and stored again intact
        assert batch["perf"]["counters"]["targets_computed"] == 1, name
        got = DBTargets(
            # binary maps travel as uint8 (0/1); back to float32 they must be the very same bits
            *(
                batch[k][0].numpy().astype(np.float32)
                for k in ("prob_maps", "prob_masks", "thresh_maps", "thresh_masks")
            )
        )
        got.ignored_count = t1.ignored_count
        assert same_targets(got, t1), name
        hit = PolygonCache(max_size=0, cache_dir=tmp_path).get(k1)
        assert hit is not None and same_targets(hit, t1), name


# -- concurrency ----------------------------------------------------------------------------------
def _versioned(key_index: int, version: int) -> DBTargets:
    """Maps fully determined by (key, version); ignored_count carries the version."""
    rng = np.random.default_rng(key_index * 1000 + version)
    shape = (96 + 8 * key_index, 128)
    t = DBTargets(*(rng.random(shape, dtype=np.float32) for _ in range(4)))
    t.prob_map[...] = t.prob_map > 0.5  # one binary map, three raw float maps
    t.ignored_count = version
    return t


def _hammer(root: str, budget: int, seed: int, ops: int, out: Any) -> None:
    cache = PolygonCache(max_size=0, cache_dir=root, max_bytes=budget)
    rng = np.random.default_rng(seed)
    torn = hits = errors = 0
    for op in range(ops):
        index = int(rng.integers(6))
        k = f"{index:064x}"
        try:
            if op % 2:
                cache.set(k, _versioned(index, seed * 100_000 + op))
            else:
                got = cache.get(k)
                if got is not None:
                    hits += 1
                    torn += not same_targets(got, _versioned(index, got.ignored_count))
        except Exception:
            errors += 1
    out.put((torn, hits, errors, cache.corrupt_count))


def test_two_processes_writing_and_reading_the_same_keys_never_see_torn_entries(tmp_path: Path) -> None:
    entry = len(b"".join(bytes(p) for p in encode_targets(_versioned(5, 0)))) + HEADER_SIZE
    budget = entry * 4  # 6 keys in a budget of 4: evictions race with the readers
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), budget, seed, 300, queue)) for seed in (1, 2)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert all(r[0] == 0 for r in results), f"torn reads: {results}"
    assert all(r[2] == 0 and r[3] == 0 for r in results), f"errors / corrupt entries: {results}"
    assert sum(r[1] for r in results) > 50  # the readers really read entries
    assert PolygonCache(max_size=0, cache_dir=tmp_path, max_bytes=budget).total_bytes() <= budget
    assert not list(tmp_path.rglob("*.tmp"))


# -- pickling -------------------------------------------------------------------------------------
def test_pickled_cache_carries_config_only_and_reopens_the_store(tmp_path: Path) -> None:
    cache = PolygonCache(max_size=8, cache_dir=tmp_path, max_bytes=10**8)
    polygons, ignore, targets = targets_for(3, shape=(256, 256), n=20)
    k = cache._generate_key(polygons, (256, 256), P, ignore)
    cache.set(k, targets)
    assert cache.get(k) is not None and cache.memory_items == 1
    blob = pickle.dumps(cache)
    assert len(blob) < 1000, "the LRU contents must not travel to the workers"
    clone = pickle.loads(blob)
    assert (clone.memory_items, clone.hit_count, clone.miss_count) == (0, 0, 0)
    assert (clone.max_size, clone.max_bytes, clone.cache_dir) == (8, 10**8, tmp_path)
    hit = clone.get(k)
    assert hit is not None and same_targets(hit, targets)
    collate = pickle.loads(pickle.dumps(DBCollateFN(P, cache=cache, use_cache=True)))
    assert collate.use_cache and collate.cache.memory_items == 0


def test_a_forked_copy_starts_with_an_empty_lru_and_zero_counters(tmp_path: Path) -> None:
    cache = PolygonCache(cache_dir=tmp_path)
    polygons, ignore, targets = targets_for(4)
    k = cache._generate_key(polygons, (48, 40), P, ignore)
    cache.set(k, targets)
    cache.get(k)
    cache._pid = -1  # what a DataLoader worker forked from this process sees
    assert cache.memory_items == 0 and cache.hit_count == 0
    assert cache.get(k) is not None and cache.hit_count == 1  # from disk


# -- exactness ------------------------------------------------------------------------------------
points = st.lists(
    st.tuples(st.floats(-10, 90, width=32), st.floats(-10, 70, width=32)), min_size=1, max_size=7
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    polygons=st.lists(points, max_size=6),
    flags=st.lists(st.booleans(), min_size=6, max_size=6),
    formula=st.sampled_from(["db", "exact"]),
    shape=st.tuples(st.integers(1, 72), st.integers(1, 88)),
)
def test_cached_targets_are_bit_identical_to_recomputed(
    tmp_path_factory: pytest.TempPathFactory,
    polygons: list[list[tuple[float, float]]],
    flags: list[bool],
    formula: str,
    shape: tuple[int, int],
) -> None:
    root = tmp_path_factory.mktemp("exact")
    params = DBTargetParams(formula=formula)  # type: ignore[arg-type]
    arrays = [np.array(p, np.float32) for p in polygons]
    ignore = flags[: len(arrays)]
    fresh = make_db_targets(arrays, ignore, shape, params)
    writer = PolygonCache(max_size=4, cache_dir=root)
    k = writer._generate_key(arrays, shape, params, ignore)
    assert writer.get(k) is None
    writer.set(k, fresh)
    memory = writer.get(k)  # LRU path
    out = DBTargets.empty(shape)
    disk = PolygonCache(max_size=0, cache_dir=root).get(k, out)  # disk path
    assert memory is not None and disk is out
    assert same_targets(memory, fresh) and same_targets(disk, fresh)
    # only the maps an evaluation batch carries, straight into uint8 slots; the others untouched
    slots = DBTargets(
        np.full(shape, 9, np.uint8), np.full(shape, 9, np.uint8), *DBTargets.empty(shape).maps()[2:]
    )
    slots.thresh_map.fill(np.nan)
    got = PolygonCache(max_size=0, cache_dir=root).get(k, slots, maps=["prob_map", "prob_mask"])
    assert got is slots and got.ignored_count == fresh.ignored_count
    assert np.array_equal(slots.prob_map, fresh.prob_map.astype(np.uint8))
    assert np.array_equal(slots.prob_mask, fresh.prob_mask.astype(np.uint8))
    assert np.isnan(slots.thresh_map).all()


def test_odd_float_values_round_trip_exactly() -> None:
    """NaN payloads, -0.0 and denormals: bit patterns, not values, are stored."""
    shape = (9, 7)
    maps = [np.zeros(shape, np.float32) for _ in range(4)]
    maps[0].view(np.uint32)[0, :3] = (0x7FC00001, 0x80000000, 0x00000001)  # NaN payload, -0.0, denormal
    maps[1][...] = 1.0
    maps[1][4, 4] = -0.0  # "almost binary": must not take the bit encoding
    maps[2][...] = np.random.default_rng(0).random(shape, dtype=np.float32)  # dense: raw
    maps[3][2:5, 1:6] = 0.25  # sparse against 0
    targets = DBTargets(*maps, ignored_count=3)
    payload = memoryview(b"".join(bytes(p) for p in encode_targets(targets)))
    assert same_targets(decode_targets(payload), targets)


@pytest.mark.parametrize("size", [640, 1024])
def test_cached_sroie_targets_are_bit_identical(sroie_root: Path, tmp_path: Path, size: int) -> None:
    from ocr.bench.targets import load_sroie_items

    cache = PolygonCache(max_size=0, cache_dir=tmp_path)
    for _shape, polygons, ignore in load_sroie_items(sroie_root / "val", size)[:4]:
        square = (size, size)  # padded, as the collate sees them
        fresh = make_db_targets(polygons, ignore, square, P)
        k = cache._generate_key(polygons, square, P, ignore)
        cache.set(k, fresh)
        hit = PolygonCache(max_size=0, cache_dir=tmp_path).get(k)
        assert hit is not None and same_targets(hit, fresh)


# -- configuration --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": False},
        {"max_bytes": True},
        {"max_bytes": 0},
        {"max_bytes": 1.5e9},
        {"max_bytes": "2GB"},
        {"max_size": True},
        {"max_size": -1},
        {"persist_to_disk": "yes"},
        {"persist_to_disk": 1},
        {"persist_to_disk": True, "cache_dir": None},
        {"cache_dir": 42},
    ],
)
def test_config_types_are_strict(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"cache_dir": tmp_path, **kwargs}
    with pytest.raises(CacheConfigError) as info:
        PolygonCache(**args)
    assert isinstance(info.value, TypeError) and isinstance(info.value, UserInputError)


def test_memory_only_cache_needs_no_directory() -> None:
    cache = PolygonCache(max_size=2, persist_to_disk=False)
    polygons, ignore, targets = targets_for(5)
    k = cache._generate_key(polygons, (48, 40), P, ignore)
    cache.set(k, targets)
    assert cache.get(k) is not None and len(cache) == 1 and "memory only" in repr(cache)
    assert os.getpid() == cache._pid


def test_one_api_only() -> None:
    """The seed's API, complete, and no second spelling of the same operations."""
    for name in ("get", "set", "invalidate", "__len__", "_generate_key", "hit_rate", "hit_count"):
        assert hasattr(PolygonCache(persist_to_disk=False), name), name
    assert PolygonCache(persist_to_disk=False).max_bytes == 2 * 1024**3
    assert not hasattr(PolygonCache, "lookup") and not hasattr(PolygonCache, "store")


# -- whole-sample cache ---------------------------------------------------------------------------
def _synthetic(image_size: int = 128) -> Any:
    from ocr.data.datasets import SyntheticReceipts
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    dataset = SyntheticReceipts(num_samples=3, seed=7)
    dataset.prepare()
    dataset.transform = ReceiptTransform(TransformConfig(image_size=image_size), train=False)
    return dataset


def _stacked(samples: list[dict[str, Any]], cache: PolygonCache | None = None) -> dict[str, Any]:
    return DBCollateFN(P, cache=cache, use_cache=cache is not None)(samples)


def test_sample_cache_hits_are_bit_identical_to_the_live_samples(tmp_path: Path) -> None:
    from ocr.data.sample_cache import CachedImage, CachedSampleDataset

    live = _synthetic()
    cached = CachedSampleDataset(_synthetic(), CacheClient("sample", KIND_SAMPLE, tmp_path, 10**8, 0))
    first = [cached[i] for i in range(3)]
    second = [cached[i] for i in range(3)]
    assert [s["perf"]["counters"] for s in first] == [{"sample_cache_misses": 1}] * 3
    assert [s["perf"]["counters"] for s in second] == [{"sample_cache_hits": 1}] * 3
    assert all(s["perf"]["decode"] == 0.0 for s in second)
    # a hit is the cached uint8 crop, written into its batch slot by the collate as it is
    assert all(isinstance(s["image"], CachedImage) for s in second)
    for hit, fresh in zip(second, (live[i] for i in range(3)), strict=True):
        image = hit["image"].tensor()
        assert image.dtype == fresh["image"].dtype == torch.uint8
        assert image.numpy().tobytes() == fresh["image"].numpy().tobytes()
    reference = _stacked([live[i] for i in range(3)])
    targets = PolygonCache(max_size=0, cache_dir=tmp_path)
    cold, warm = _stacked(first, targets), _stacked(second, targets)
    # the maps come from the target client, one layer below: computed once, then hits
    assert (
        cold["perf"]["counters"]["target_cache_misses"],
        cold["perf"]["counters"]["targets_computed"],
    ) == (3, 3)
    assert (warm["perf"]["counters"]["target_cache_hits"], warm["perf"]["counters"]["targets_computed"]) == (
        3,
        0,
    )
    assert (
        warm["perf"]["counters"]["sample_cache_hits"] == 3
        and "target_cache_misses" not in warm["perf"]["counters"]
    )
    for batch in (cold, warm):
        for name in ("images", "prob_maps", "prob_masks", "thresh_maps", "thresh_masks"):
            a, b = batch[name].numpy(), reference[name].numpy()
            assert same_bits(a, b), name
        for name in ("polygons", "ignore", "meta", "index"):
            assert deep_equal(batch[name], reference[name]), name
    assert cached.exact


def test_cached_image_fills_every_pixel_of_a_dirty_slot() -> None:
    from ocr.data.sample_cache import CachedImage

    crop = np.random.default_rng(0).integers(1, 256, (3, 5, 7), dtype=np.uint8)
    expected = np.zeros((3, 12, 16), np.uint8)
    expected[:, 4:9, 6:13] = crop
    slot = np.full((3, 12, 16), 77, np.uint8)  # a reused batch buffer holds old pixels
    CachedImage(crop, (12, 16, 4, 6)).write_into(slot)
    assert np.array_equal(slot, expected)
    with pytest.raises(ValueError, match="uint8"):
        CachedImage(crop, (12, 16, 4, 6)).write_into(np.zeros((3, 12, 16), np.float32))


def test_sample_cache_keys_follow_identity_and_transform(tmp_path: Path) -> None:
    from ocr.data.sample_cache import CachedSampleDataset

    cache = CacheClient("sample", KIND_SAMPLE, tmp_path, 10**8)
    a = CachedSampleDataset(_synthetic(128), cache)
    assert a.key(0) == CachedSampleDataset(_synthetic(128), cache).key(0)
    assert len({a.key(0), a.key(1), CachedSampleDataset(_synthetic(96), cache).key(0)}) == 3


def test_corrupt_sample_entry_is_recomputed(tmp_path: Path) -> None:
    from ocr.data.sample_cache import CachedSampleDataset

    cache = CacheClient("sample", KIND_SAMPLE, tmp_path, 10**8, 0)
    cached = CachedSampleDataset(_synthetic(), cache)
    live = cached[0]
    assert cache.store is not None
    path = cache.store.path(cached.key(0))
    path.write_bytes(path.read_bytes()[:-100])
    again = cached[0]
    assert again["perf"]["counters"] == {"sample_cache_misses": 1, "sample_cache_corrupt": 1}
    assert torch.equal(again["image"], live["image"])
    assert cached[0]["perf"]["counters"] == {"sample_cache_hits": 1}


def test_sample_cache_refuses_random_augmentation(tmp_path: Path) -> None:
    from ocr.data.sample_cache import CachedSampleDataset
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    dataset = _synthetic()
    dataset.transform = ReceiptTransform(TransformConfig(image_size=128), train=True, seed=0)
    with pytest.raises(ValueError, match="deterministic"):
        CachedSampleDataset(dataset, CacheClient("sample", KIND_SAMPLE, tmp_path, 10**8))
