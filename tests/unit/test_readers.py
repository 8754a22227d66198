"""The ``sroie`` and ``json`` readers: parsing, identity for caches, configs, and agreement on real SROIE."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import hydra
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from ocr.data.datamodule import ReceiptDataModule, reader_class
from ocr.data.datasets import ReceiptDataset
from ocr.data.datasets.json_layout import JsonLayoutDataset
from ocr.data.datasets.sroie import SROIEDataset, parse_gt_line
from ocr.data.datasets.synthetic import SyntheticReceipts
from ocr.data.sample import TextSample
from ocr.errors import UserInputError
from tests.helpers import compose_config

Quad = Sequence[Sequence[float]]

#: The annotated readers, by the name of their data config (configs/data/<name>.yaml).
READERS: dict[str, type[ReceiptDataset]] = {"sroie": SROIEDataset, "json": JsonLayoutDataset}


# -- builders shared with test_bad_input ----------------------------------------------------------
def receipt_image(h: int, w: int, polygons: Sequence[Quad] = ()) -> np.ndarray:
    """White paper with a black filled shape under each polygon, so alignment can be checked."""
    image = np.full((h, w, 3), 255, np.uint8)
    for poly in polygons:
        cv2.fillPoly(image, [np.round(np.asarray(poly, np.float64)).astype(np.int32)], (0, 0, 0))
    return image


def save_image(path: Path, image: np.ndarray, orientation: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if orientation is None:
        pil.save(path, quality=95)
        return
    exif = Image.Exif()
    exif[0x0112] = orientation
    pil.save(path, quality=95, exif=exif.tobytes())


def gt_line(poly: Quad, text: str) -> str:
    return ",".join(f"{v:g}" for point in poly for v in point) + f",{text}"


def write_sroie(root: Path, name: str, image: np.ndarray | bytes | None, lines: Sequence[str] | None) -> None:
    """One receipt in the SROIE layout; ``None`` leaves that file out, bytes are written as-is."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    if isinstance(image, bytes):
        (root / "images" / f"{name}.jpg").write_bytes(image)
    elif image is not None:
        save_image(root / "images" / f"{name}.jpg", image)
    if lines is not None:
        (root / "gt" / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))


def write_json(root: Path, entries: dict[str, dict[str, object]], images: dict[str, np.ndarray]) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        save_image(root / "images" / name, image)
    (root / "annotations.json").write_text(json.dumps({"images": entries}))


def json_entry(words: Sequence[tuple[object, str]], hw: tuple[int, int] | None = None) -> dict[str, object]:
    entry: dict[str, object] = {
        "words": {f"{i + 1:04d}": {"points": p, "transcription": t} for i, (p, t) in enumerate(words)}
    }
    if hw is not None:
        entry["img_h"], entry["img_w"] = hw
    return entry


BOX_A = [[10, 10], [90, 10], [90, 30], [10, 30]]
BOX_B = [[10, 50], [60, 50], [60, 70], [10, 70]]
HEX = [[100, 20], [140, 10], [180, 20], [180, 60], [140, 70], [100, 60]]


def assert_same(a: TextSample, b: TextSample) -> None:
    assert a.name == b.name
    assert a.texts == b.texts
    assert a.ignore == b.ignore
    assert len(a.polygons) == len(b.polygons)
    for pa, pb in zip(a.polygons, b.polygons, strict=True):
        np.testing.assert_array_equal(pa, pb)


# -- tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sroie", "json", "synthetic"])
def test_each_data_config_selects_its_reader_by_target(tmp_path: Path, name: str) -> None:
    cfg = compose_config("train", tmp_path / "run", [f"data={name}"])
    cls = READERS.get(name, SyntheticReceipts)
    assert cfg.data.reader._target_ == f"{cls.__module__}.{cls.__name__}"
    assert reader_class(OmegaConf.to_container(cfg.data.reader)) is cls


def test_a_reader_argument_of_one_split_overrides_the_shared_one(tmp_path: Path) -> None:
    split = tmp_path / "split"
    write_sroie(split, "000", receipt_image(100, 200, [BOX_A]), [gt_line(BOX_A, "a")])
    (split / "labels").mkdir()
    (split / "labels" / "000.txt").write_text("")
    cfg = compose_config(
        "train",
        tmp_path / "run",
        ["data=sroie", f"data.train_root={split}", f"data.val_root={split}", "+data.val.gt_dir=labels"],
    )
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    assert dm.datasets["train"].gt_dir.name == "gt" and dm.datasets["val"].gt_dir.name == "labels"


@pytest.mark.parametrize(
    ("reader", "line"),
    [
        (
            "sroie",
            "data.reader=sroie: a reader is now selected by class; pick the shipped config with "
            "data=sroie, or write reader: {_target_: ocr.data.datasets.sroie.SROIEDataset}",
        ),
        (
            {"_target_": "ocr.data.datasets.nope.Nope"},
            "data.reader._target_=ocr.data.datasets.nope.Nope: cannot import it",
        ),
        (
            {"_target_": "ocr.data.sample.TextSample"},
            "not a reader (a subclass of ocr.data.datasets.ReceiptDataset)",
        ),
        ({"image_dir": "images"}, "a mapping whose _target_ is a reader class"),
    ],
    ids=["old-name", "missing-module", "not-a-reader", "no-target"],
)
def test_a_wrong_reader_is_one_clear_line(reader: object, line: str) -> None:
    with pytest.raises(UserInputError) as info:
        ReceiptDataModule(reader=reader)  # type: ignore[arg-type]
    assert line in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_reader_argument_names_the_reader_and_the_key(tmp_path: Path) -> None:
    dm = ReceiptDataModule(
        reader={"_target_": "ocr.data.datasets.sroie.SROIEDataset", "gt_folder": "gt"}, root=str(tmp_path)
    )
    with pytest.raises(UserInputError, match="SROIEDataset: got an unexpected keyword argument 'gt_folder'"):
        dm.setup("validate")


def test_gt_line_keeps_commas_in_the_transcript() -> None:
    ann = parse_gt_line("72,25,326,25,326,64,72,64,NO.53 55,57 & 59, JALAN", "x.txt:1")
    assert ann.points == [72, 25, 326, 25, 326, 64, 72, 64]
    assert ann.text == "NO.53 55,57 & 59, JALAN"
    assert parse_gt_line("1,2,3,4,5,6,7,8", "x.txt:2").text == ""
    assert parse_gt_line("1,2,3,4,TOTAL", "x.txt:3").points is None


def test_both_readers_read_the_same_receipt(tmp_path: Path) -> None:
    image = receipt_image(100, 200, [BOX_A, BOX_B])
    write_sroie(tmp_path / "s", "000", image, [gt_line(BOX_A, "TOTAL, RM 5.00"), gt_line(BOX_B, "###")])
    write_json(
        tmp_path / "j",
        {"000.jpg": json_entry([(BOX_A, "TOTAL, RM 5.00"), (BOX_B, "###")], (100, 200))},
        {"000.jpg": image},
    )
    a = SROIEDataset(root=tmp_path / "s").load(0)
    b = JsonLayoutDataset(root=tmp_path / "j").load(0)
    assert_same(a, b)
    assert a.texts == ["TOTAL, RM 5.00", "###"]
    assert a.ignore == [False, True], "### marks a don't-care region in both readers"
    assert a.image.shape == (100, 200, 3) and a.polygons[0].dtype == np.float32
    assert a.meta["issues"] == {} and b.meta["issues"] == {}


def test_json_polygons_may_have_more_than_four_points(tmp_path: Path) -> None:
    write_json(
        tmp_path, {"a.jpg": json_entry([(HEX, "curved"), (BOX_A, "box")])}, {"a.jpg": receipt_image(100, 200)}
    )
    sample = JsonLayoutDataset(root=tmp_path).load(0)
    assert [len(p) for p in sample.polygons] == [6, 4]
    np.testing.assert_array_equal(sample.polygons[0], np.asarray(HEX, np.float32))


@pytest.mark.parametrize("reader", ["sroie", "json"])
def test_identity_follows_the_content_of_image_and_gt(tmp_path: Path, reader: str) -> None:
    """Path, size and a hash of the bytes: an edit with the mtime kept changes it, a touch does not."""
    import xxhash

    image = receipt_image(40, 60)
    if reader == "sroie":
        write_sroie(tmp_path, "000", image, [gt_line(BOX_A, "a")])
        gt = tmp_path / "gt" / "000.txt"
    else:
        write_json(tmp_path, {"000.jpg": json_entry([(BOX_A, "a")])}, {"000.jpg": image})
        gt = tmp_path / "annotations.json"
    dataset = READERS[reader](root=tmp_path)
    before = dataset.identity(0)
    img = tmp_path / "images" / "000.jpg"
    data = img.read_bytes()
    assert (str(img.resolve()), len(data), xxhash.xxh3_128_hexdigest(data)) in before
    st = gt.stat()
    os.utime(gt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert READERS[reader](root=tmp_path).identity(0) == before, "a touch changes no content"
    text = gt.read_text()
    gt.write_text(text.replace("a", "b") if reader == "sroie" else text.replace('"a"', '"b"'))
    os.utime(gt, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert READERS[reader](root=tmp_path).identity(0) != before, "an edit must change the cache key"


@pytest.mark.parametrize("reader", ["sroie", "json"])
def test_configs_select_a_split_by_its_folder(tmp_path: Path, reader: str) -> None:
    split = tmp_path / "split"
    image = receipt_image(100, 200, [BOX_A])
    if reader == "sroie":
        write_sroie(split, "000", image, [gt_line(BOX_A, "a")])
    else:
        write_json(split, {"000.jpg": json_entry([(BOX_A, "a")])}, {"000.jpg": image})
    cfg = compose_config(
        "validate", tmp_path / "run", [f"data={reader}", f"data.root={split}", "ckpt_path=x"]
    )
    assert cfg.data.reader._target_.endswith(READERS[reader].__name__) and cfg.data.train_root is None
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("validate")
    assert type(dm.datasets["val"]) is READERS[reader] and len(dm.datasets["val"]) == 1
    cfg = compose_config(
        "train", tmp_path / "run2", [f"data={reader}", f"data.train_root={split}", f"data.val_root={split}"]
    )
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    assert set(dm.datasets) == {"train", "val"}


@pytest.mark.parametrize("split", ["train", "val"])
def test_readers_agree_on_real_sroie(sroie_root: Path, split: str) -> None:
    """Same images, polygons, texts and ignore flags from gt/*.txt and from annotations.json."""
    txt = SROIEDataset(sroie_root / split)
    js = JsonLayoutDataset(sroie_root / split)
    assert len(txt) == len(js) > 0
    assert [txt.describe(i) for i in range(len(txt))] == [js.describe(i) for i in range(len(js))]
    for i in range(len(txt)):
        with Image.open(txt.image_paths[i]) as img:  # header only: sizes without decoding
            hw = (img.height, img.width)
        a, b = txt.annotations(i, hw), js.annotations(i, hw)
        assert a.texts == b.texts, txt.describe(i)
        assert a.ignore == b.ignore
        assert len(a.polygons) == len(b.polygons) > 0, txt.describe(i)
        for pa, pb in zip(a.polygons, b.polygons, strict=True):
            np.testing.assert_array_equal(pa, pb)
    # Full decode + clean through load(): every val receipt, every 5th train one (time budget).
    for i in range(0, len(txt), 1 if split == "val" else 5):
        assert_same(txt.load(i), js.load(i))


def test_real_sroie_batch_through_the_datamodule(sroie_root: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        "validate",
        tmp_path,
        [
            "data=sroie",
            f"data.root={sroie_root / 'val'}",
            "data.image_size=256",
            "data.loader.num_workers=0",
            "data.cache.enabled=false",
            "ckpt_path=x",
        ],
    )
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    assert batch["images"].shape == (4, 3, 256, 256)
    assert batch["perf"]["counters"]["skipped_samples"] == 0
    assert batch["prob_maps"].sum() > 0


def test_listed_issue_takes_the_sample_count_of_a_reader_that_counts_issues_apart() -> None:
    """A user's reader may keep the issues out of ``__len__`` and pass its own sample count."""
    from ocr.data.datasets.listing import ListingIssue

    class TwoReceipts(ReceiptDataset):
        def __len__(self) -> int:
            return 2  # the issues are not counted here

        def load(self, index: int) -> TextSample:  # pragma: no cover - not called
            raise NotImplementedError

    reader = TwoReceipts()
    reader.listing_issues = [ListingIssue("unsupported_suffix", "a.gif", "not an image")]
    assert reader.listed_issue(1, samples=2) is None
    issue = reader.listed_issue(2, samples=2)
    assert issue is not None and issue.where == "a.gif"
    assert reader.listed_issue(1) is reader.listing_issues[0]  # the default: len(self) counts both
