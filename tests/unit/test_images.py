"""Images of every mode read as the right 8-bit pixels; masks, headers, bombs and roots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data.base import Category, Record, load_image, load_mask
from harness.data.checks import check_category
from harness.data.layouts import MVTecLayout
from harness.errors import DatasetError

GREY = np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8)
RGB = np.dstack([GREY, 255 - GREY, GREY // 2])


def _palette_image() -> Image.Image:
    image = Image.fromarray(GREY, "P")
    image.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    return image


CASES = {
    # name: (image, suffix, expected RGB)
    "8-bit grey": (Image.fromarray(GREY, "L"), ".png", np.dstack([GREY] * 3)),
    "16-bit grey png": (Image.fromarray(GREY.astype(np.uint16) * 257), ".png", np.dstack([GREY] * 3)),
    "16-bit grey tiff": (Image.fromarray(GREY.astype(np.uint16) * 257), ".tif", np.dstack([GREY] * 3)),
    "32-bit integer": (Image.fromarray(GREY.astype(np.int32) * 257), ".tif", np.dstack([GREY] * 3)),
    "float in [0, 1]": (Image.fromarray(GREY.astype(np.float32) / 255, "F"), ".tif", np.dstack([GREY] * 3)),
    "palette": (_palette_image(), ".png", RGB),
    "rgba (alpha dropped)": (Image.fromarray(np.dstack([RGB, GREY]), "RGBA"), ".png", RGB),
    "la (alpha dropped)": (Image.fromarray(np.dstack([GREY, 255 - GREY]), "LA"), ".png", np.dstack([GREY] * 3)),
    "cmyk": (Image.fromarray(RGB).convert("CMYK"), ".tif", RGB),
    "rgb": (Image.fromarray(RGB), ".png", RGB),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_round_trips_to_its_8_bit_pixels(tmp_path, case):
    image, suffix, expected = CASES[case]
    path = tmp_path / f"image{suffix}"
    image.save(path)
    loaded = load_image(path, (8, 8))
    assert loaded.dtype == np.uint8 and loaded.shape == (8, 8, 3)
    assert np.array_equal(loaded, expected), case


def test_16_bit_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 1000, 32896, 65535]], dtype=np.uint16)).save(path)
    assert list(load_image(path, (1, 4))[0, :, 0]) == [0, 4, 128, 255]


@pytest.mark.parametrize(
    "mask",
    [
        Image.fromarray(np.eye(8, dtype=np.uint8) * 255),
        Image.fromarray(np.eye(8, dtype=np.uint16)),  # 16-bit with value 1
        Image.fromarray(np.eye(8, dtype=bool)),
        Image.fromarray(np.dstack([np.eye(8, dtype=np.uint8) * 200] * 3)),
    ],
    ids=["8-bit", "16-bit value 1", "two-level", "rgb"],
)
def test_masks_of_any_mode_mark_non_zero_pixels(tmp_path, mask):
    path = tmp_path / "mask.png"
    mask.save(path)
    assert np.array_equal(load_mask([path], (8, 8)), np.eye(8, dtype=bool))


def test_a_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(GREY).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 64 pixels: above the limit, below twice it
    with pytest.raises(DatasetError, match=r"big\.png has 64 pixels, above Pillow's decompression-bomb limit"):
        load_image(path, (8, 8))


def _category(tmp_path: Path, mask_size=(8, 8), masks=(True, True)) -> Category:
    records = []
    for i in range(2):
        image = tmp_path / f"train{i}.png"
        Image.fromarray(GREY).save(image)
        records.append(Record(image, "train"))
    for i, has_mask in enumerate(masks):
        image, mask = tmp_path / f"defect{i}.png", tmp_path / f"defect{i}_mask.png"
        Image.fromarray(GREY).save(image)
        Image.fromarray(np.zeros(mask_size[::-1], np.uint8)).save(mask)
        records.append(Record(image, "test", "dent", (mask,) if has_mask else ()))
    return Category("parts", records)


def test_check_category_accepts_a_good_category(tmp_path):
    check_category(_category(tmp_path))


def test_check_category_names_a_mask_of_another_size(tmp_path):
    with pytest.raises(DatasetError, match=r"defect0_mask\.png is 9x8 pixels but its image .*defect0\.png is 8x8"):
        check_category(_category(tmp_path, mask_size=(9, 8)))


def test_check_category_names_a_defect_without_mask(tmp_path):
    with pytest.raises(DatasetError, match=r"defect image .*defect1\.png has no mask while 1 other"):
        check_category(_category(tmp_path, masks=(True, False)))


def test_check_category_reads_headers_only(tmp_path, monkeypatch):
    category = _category(tmp_path)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("an image was decoded"))
    check_category(category)


def _tree(root: Path) -> Path:
    for folder in ("widget/train/good", "widget/test/good", "widget/test/dent", "widget/ground_truth/dent"):
        (root / folder).mkdir(parents=True)
    for folder in ("train/good", "test/good", "test/dent"):
        Image.fromarray(GREY).save(root / "widget" / folder / "000.png")
    Image.fromarray(GREY).save(root / "widget" / "ground_truth" / "dent" / "000_mask.png")
    return root


def test_relative_and_symlinked_roots_give_the_same_fingerprint(tmp_path, monkeypatch):
    real = _tree(tmp_path / "real")
    reference = MVTecLayout(real).load("widget").fingerprint()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    relative = MVTecLayout(Path("real")).load("widget")
    assert all(r.path.is_absolute() for r in relative.records)
    assert relative.fingerprint() == reference
    assert MVTecLayout(Path("link")).load("widget").fingerprint() == reference


def test_symlinked_category_and_image_files_are_found(tmp_path):
    real = _tree(tmp_path / "real")
    data = tmp_path / "data"
    data.mkdir()
    (data / "widget").symlink_to(real / "widget", target_is_directory=True)
    extra = real / "widget" / "test" / "good" / "000.png"
    os.symlink(extra, real / "widget" / "test" / "good" / "001.png")
    category = MVTecLayout(data).load("widget")
    assert len(category.split("test")) == 3
    assert all(str(r.path).startswith(str(data)) for r in category.records)  # kept under the link


def test_a_broken_symbolic_link_is_named(tmp_path):
    real = _tree(tmp_path / "real")
    (real / "widget" / "test" / "good" / "002.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(DatasetError, match=r"002\.png is a symbolic link to .*missing\.png, which does not exist"):
        MVTecLayout(real).load("widget")
