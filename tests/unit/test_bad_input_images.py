"""Images that used to kill an epoch or silently train on a blank page: a pixel budget checked on
the header (a counted skip, bounded memory), 16-bit scans scaled to 8 bits, true skip reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import hydra
import numpy as np
import pytest
from PIL import Image

from ocr.data.collate import DBCollateFN
from ocr.data.image_io import ImageReadError, read_image
from ocr.errors import SampleError, UserInputError
from tests.helpers import compose_config
from tests.unit.test_readers import BOX_A, gt_line, receipt_image, save_image, write_sroie

RNG = np.random.default_rng(16)
GRAY8 = RNG.integers(0, 256, (48, 64), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def bomb_png(path: Path, width: int = 20_000, height: int = 10_000) -> Path:
    """200 Mpx (over Pillow's 179-Mpx bomb limit), 1 bit per pixel: a 25 MB canvas, a tiny file."""
    Image.new("1", (width, height)).save(path, optimize=False)
    return path


def test_16_bit_grayscale_png_matches_its_8_bit_copy(tmp_path: Path) -> None:
    path = tmp_path / "scan16.png"
    assert cv2.imwrite(str(path), GRAY8.astype(np.uint16) * 257)
    with Image.open(path) as probe:
        assert probe.mode.startswith("I;16"), "the file must really be 16-bit"
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], GRAY8)


def test_16_bit_rgb_png_matches_its_8_bit_copy(tmp_path: Path) -> None:
    path = tmp_path / "photo16.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(RGB8.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    eight = tmp_path / "photo8.png"
    Image.fromarray(RGB8).save(eight)
    np.testing.assert_array_equal(read_image(path), read_image(eight))


def test_12_bit_range_in_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    """A dark 16-bit scan stays dark, not white: values are scaled by 255/65535."""
    path = tmp_path / "dark16.png"
    values = np.linspace(0, 4095, 48 * 64).reshape(48, 64).astype(np.uint16)
    assert cv2.imwrite(str(path), values)
    image = read_image(path)[:, :, 0]
    np.testing.assert_array_equal(image, np.floor(values * (255 / 65535) + 0.5).astype(np.uint8))
    assert image.max() < 20


def test_image_over_pillows_bomb_limit_is_a_skip_reason_not_a_crash(tmp_path: Path) -> None:
    path = bomb_png(tmp_path / "huge.png")
    with pytest.raises(ImageReadError, match=r"20000x10000 = 200\.0 Mpx is over the pixel budget") as info:
        read_image(path)
    assert info.value.reason == "image_too_large"
    assert "data.max_image_pixels" in str(info.value)


def test_worker_memory_stays_bounded_on_a_huge_image(tmp_path: Path) -> None:
    """Only the header is read: a 200-Mpx image (600 MB as RGB) costs no pixel memory."""
    path = bomb_png(tmp_path / "huge.png")
    code = (
        "import resource, sys\n"
        "from ocr.data.image_io import ImageReadError, read_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    read_image({str(path)!r})\n"
        "except ImageReadError as exc:\n"
        "    assert exc.reason == 'image_too_large', exc\n"
        "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before_kb, after_kb = map(int, out.stdout.split())
    assert after_kb - before_kb < 64 * 1024, (
        f"reading the header grew RSS by {(after_kb - before_kb) >> 10} MB"
    )


def test_jpeg_over_the_configured_budget_is_skipped_and_counted(tmp_path: Path) -> None:
    split = tmp_path / "split"
    big = receipt_image(400, 300, [BOX_A])  # 0.12 Mpx
    write_sroie(split, "big", big, [gt_line(BOX_A, "TOTAL")])
    write_sroie(split, "small", receipt_image(100, 200, [BOX_A]), [gt_line(BOX_A, "TOTAL")])
    cfg = compose_config(
        "validate", tmp_path / "run", ["data=sroie", f"data.root={split}", "data.max_image_pixels=100000"]
    )
    dm = hydra.utils.instantiate(cfg.data, _convert_="all")
    dm.setup("validate")
    dataset = dm.datasets["val"]
    batch = DBCollateFN()([dataset[i] for i in range(len(dataset))])
    counters, where = batch["perf"]["counters"], batch["perf"]["issues"]
    assert counters["skipped_image_too_large"] == 1 and counters["samples"] == 1
    assert where["skipped_image_too_large"] == ["big.jpg"]
    assert batch["images"].shape[0] == 1


@pytest.mark.parametrize("value", [0, -5, "many", True])
def test_pixel_budget_must_be_a_positive_number(tmp_path: Path, value: object) -> None:
    """Rejected before any data is read: by the config schema when composing (a non-integer), or by
    the range check / the data module (an integer below 1)."""
    from ocr.schema import check_config, composition_error

    with pytest.raises(Exception) as info:
        cfg = compose_config("validate", tmp_path / "run", ["data=sroie", f"data.max_image_pixels={value}"])
        check_config(cfg)
        hydra.utils.instantiate(cfg.data, _convert_="all")
    chain: BaseException | None = info.value
    while chain is not None and not isinstance(chain, UserInputError):
        chain = chain.__cause__ or chain.__context__
    error = chain or composition_error(info.value)
    # the key as the user writes it, once prefixed (not "model.data.max_image_pixels")
    assert error is not None and str(error).startswith("data.max_image_pixels="), str(error)


def test_symlink_loop_is_named_as_such_not_as_a_missing_image(tmp_path: Path) -> None:
    split = tmp_path / "split"
    write_sroie(split, "good", receipt_image(100, 200, [BOX_A]), [gt_line(BOX_A, "A")])
    (split / "gt" / "loop.txt").write_text(gt_line(BOX_A, "B") + "\n")
    loop = split / "images" / "loop.jpg"
    loop.symlink_to(loop)
    dangling = split / "images" / "gone.jpg"
    dangling.symlink_to(tmp_path / "nowhere.jpg")
    (split / "gt" / "gone.txt").write_text(gt_line(BOX_A, "C") + "\n")
    # the same on the annotation side: a gt file that is a link loop, one that is a dangling link
    write_sroie(split, "gtloop", receipt_image(100, 200, [BOX_A]), [])
    (split / "gt" / "gtloop.txt").unlink()
    (split / "gt" / "gtloop.txt").symlink_to(split / "gt" / "gtloop.txt")
    write_sroie(split, "gtgone", receipt_image(100, 200, [BOX_A]), [])
    (split / "gt" / "gtgone.txt").unlink()
    (split / "gt" / "gtgone.txt").symlink_to(tmp_path / "nowhere.txt")
    from ocr.data.datasets import SROIEDataset
    from ocr.data.transforms import ReceiptTransform, TransformConfig

    dataset = SROIEDataset(root=split)
    dataset.transform = ReceiptTransform(TransformConfig(image_size=64), train=False)
    batch = DBCollateFN()([dataset[i] for i in range(len(dataset))])
    counters, where = batch["perf"]["counters"], batch["perf"]["issues"]
    assert sorted(where["skipped_symlink_loop"]) == ["gtloop.txt", "loop.jpg"]
    assert where["skipped_missing_image"] == ["gone.jpg"]
    assert where["skipped_missing_gt"] == ["gtgone.txt"]
    index = next(i for i in range(len(dataset)) if dataset.describe(i) == "gtgone.jpg")
    with pytest.raises(SampleError, match=r"symbolic link to .*nowhere\.txt, which does not exist"):
        dataset.load(index)
    with pytest.raises(ImageReadError, match=r"symbolic link to .*nowhere\.jpg, which does not exist"):
        read_image(dangling)
    assert counters["samples"] == 1


def test_exif_and_modes_still_decode(tmp_path: Path) -> None:
    """The high-bit-depth path leaves ordinary 8-bit images untouched (orientation applied)."""
    path = tmp_path / "rot.jpg"
    save_image(path, receipt_image(40, 80), orientation=6)
    assert read_image(path).shape == (80, 40, 3)
