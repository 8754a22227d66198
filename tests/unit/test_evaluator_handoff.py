"""The uint8 hand-off keeps DB binarisation exact; the default pool size follows the cores."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ocr.evaluation.config import EvaluatorConfig, default_workers
from ocr.evaluation.handoff import decode_map, encode_maps, pack_polygons, resolve_handoff, unpack_polygons


def _hard_maps() -> torch.Tensor:
    """Random probabilities plus, for every threshold on the 0.01 grid, its float32 neighbours."""
    rng = np.random.default_rng(0)
    values = [rng.random(20_000, dtype=np.float32)]
    for t in np.arange(0.0, 1.0001, 0.005):
        t32 = np.float32(t)
        values.append(np.array([np.nextafter(t32, np.float32(-1)), t32, np.nextafter(t32, np.float32(2))]))
    flat = np.clip(np.concatenate(values), 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(flat).reshape(1, 1, -1)


@pytest.mark.parametrize("thresh", [round(0.01 * k, 2) for k in range(1, 100)] + [0.3, 0.2, 0.6, 0.005])
def test_uint8_binarisation_is_exact(thresh: float) -> None:
    prob = _hard_maps()[0]
    codes = encode_maps(prob, "uint8", thresh)
    assert codes.dtype == torch.uint8
    decoded = decode_map(codes[0].numpy(), "uint8")
    reference = np.greater(prob[0].numpy(), thresh)  # what DBPostProcessor thresholds
    assert np.array_equal(np.greater(decoded, thresh), reference)
    # scores (means of the map) move by less than one code
    assert np.abs(decoded - prob[0].numpy()).max() < 1 / 255 + 1e-7


def test_plain_rounding_is_not_exact() -> None:
    """The threshold fix-up is what makes it exact: rounding alone flips pixels just above 0.31."""
    prob = _hard_maps()[0, 0].numpy()
    rounded = np.round(prob * 255).astype(np.uint8).astype(np.float32) / 255
    assert not np.array_equal(rounded > 0.31, prob > 0.31)


def test_float32_is_a_view_and_auto_picks_by_device() -> None:
    prob = torch.rand(1, 4, 4)
    raw = encode_maps(prob, "float32", 0.3)[0].numpy()
    assert decode_map(raw, "float32") is raw
    assert resolve_handoff("auto", torch.device("cpu")) == "float32"
    assert resolve_handoff("auto", torch.device("cuda", 0)) == "uint8"
    assert resolve_handoff("float16", torch.device("cpu")) == "float16"


def test_default_workers_are_the_cores_left_per_rank() -> None:
    assert default_workers(loader_workers=2, local_ranks=2, cores=8) == 2
    assert default_workers(loader_workers=0, local_ranks=1, cores=16) == 16
    assert default_workers(loader_workers=4, local_ranks=1, cores=2) == 1  # at least one
    assert default_workers(loader_workers=3, local_ranks=2, cores=16) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"workers": -1},
        {"workers": True},
        {"handoff": "int4"},
        {"slots": 0},
        {"timeout_s": 0},
        {"copy_thread": 1},
    ],
)
def test_bad_evaluator_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"model\.evaluator"):
        EvaluatorConfig(**kwargs)  # type: ignore[arg-type]


def test_metas_reach_the_queue_without_torch_tensors() -> None:
    """A DataLoader's default_convert turns GT arrays into tensors; they must travel as numpy
    (a pickled CPU tensor takes torch's shared-memory file path: tens of ms per image)."""
    import torch

    from ocr.evaluation.pool import _plain

    quads = [np.zeros((4, 2), np.float32), np.ones((4, 2), np.float32)]
    as_numpy = {"gt_polygons": quads, "gt_texts": ["a", "b"], "scale": 0.5}
    assert _plain(as_numpy["gt_polygons"]) is quads  # nothing to convert: not copied
    converted = _plain({**as_numpy, "gt_polygons": [torch.from_numpy(q) for q in quads]})
    assert all(type(q) is np.ndarray for q in converted["gt_polygons"])
    assert all(np.array_equal(a, b) for a, b in zip(converted["gt_polygons"], quads, strict=True))
    assert converted["gt_texts"] == ["a", "b"] and converted["scale"] == 0.5


def test_packed_polygons_come_back_bit_for_bit_in_their_dtype() -> None:
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.int32):
        polygons = [(rng.random((k, 2)) * 900).astype(dtype) for k in (4, 4, 7, 3, 12)]
        packed = pack_polygons(polygons)
        assert isinstance(packed, tuple)
        back = unpack_polygons(pickle.loads(pickle.dumps(packed)))
        assert len(back) == len(polygons)
        for a, b in zip(polygons, back, strict=True):
            assert b.dtype == a.dtype and b.shape == a.shape
            assert a.tobytes() == b.tobytes()


def test_polygons_that_cannot_be_packed_exactly_travel_as_they_are() -> None:
    mixed = [np.zeros((4, 2), np.float32), np.zeros((4, 2), np.float64)]
    assert pack_polygons(mixed) is mixed  # one array would change a dtype
    flat = [np.zeros(8, np.float32)]
    assert pack_polygons(flat) is flat  # not (N, 2)
    assert pack_polygons([]) == []
    assert unpack_polygons([]) == []


@pytest.mark.parametrize("shape", [(1024, 480), (7,), (3, 5), (0, 4), (0,)])
def test_uint8_decoding_is_the_table_lookup_bit_for_bit(shape: tuple[int, ...]) -> None:
    raw = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    decoded = decode_map(raw, "uint8")
    assert decoded.dtype == np.float32 and decoded.shape == raw.shape
    assert decoded.tobytes() == (np.arange(256, dtype=np.float32) / np.float32(255.0))[raw].tobytes()
    if raw.ndim == 2 and raw.shape[1] > 1:  # a strided view decodes the same
        view = raw[:, ::2]
        assert decode_map(view, "uint8").tobytes() == decode_map(view.copy(), "uint8").tobytes()
