"""`harness validate` prints what it found, and refuses folder layouts that would take masks as images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

PROTOCOL = """protocol: kde_vs_test
dataset:
  synthetic: {n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}
  categories: [weave, disc]
  image_size: 32
models: [fixed_scores]
"""

FOLDER = """protocol: kde_vs_test
dataset:
  layout: folder
  root: data
  image_size: 16
  options: {options}
models: [fixed_scores]
"""


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


def _tile_tree(root, masks_beside=True, suffix=".jpg"):
    """MT-like tree: images and their masks in one folder per class."""
    for folder, count in (("free", 10), ("crack", 3)):
        for i in range(count):
            _write(root / folder / f"{i}{suffix}", 40 + i)
            if masks_beside:
                _write(root / folder / f"{i}.png", 0)


def _validate(cli, tmp_path, text, *args):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return cli("validate", str(path), *args)


def test_validate_prints_counts_per_category(cli, tmp_path):
    code, stdout, stderr = _validate(cli, tmp_path, PROTOCOL)
    assert code == 0, stderr
    header, *rows = stdout.strip().splitlines()[1:]
    assert header.split() == ["category", "train", "held-out", "test", "normal", "defect", "masks", "defect", "types"]
    assert rows[0].split()[:6] == ["disc", "12", "4", "6", "10", "10"]  # 16 normals: 12 fit, 4 held out
    assert "crack, hole, scratch, spot, stain" in rows[0]


OPTIONS = "{normal_dir: free, abnormal_dirs: {crack: crack}"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("}", "share their name with another file (0.jpg, 0.png): masks beside images? set image_pattern"),
        (", mask_pattern: '{stem}_m.png', image_pattern: '*.jpg'}", "mask_pattern '{stem}_m.png' matches no file"),
        (", mask_dir: free, mask_pattern: '{stem}.png'}", "normal_dir: "),
    ],
    ids=["masks taken as images", "mask pattern matches nothing", "images under the mask folder"],
)
def test_folder_layout_traps_are_errors(cli, tmp_path, extra, expected):
    _tile_tree(tmp_path / "data")
    code, stdout, stderr = _validate(cli, tmp_path, FOLDER.format(options=OPTIONS + extra))
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stdout + stderr


def test_mask_named_by_pattern_inside_a_separate_mask_dir_setup_is_an_error(cli, tmp_path):
    _tile_tree(tmp_path / "data")
    _write(tmp_path / "data" / "masks" / "0.png", 0)
    options = OPTIONS + ", mask_dir: masks, mask_pattern: '{stem}.png'}"
    code, _, stderr = _validate(cli, tmp_path, FOLDER.format(options=options))
    assert code == 2 and "have a mask by mask_pattern beside them" in stderr and "image_pattern" in stderr


def test_folder_layout_with_image_pattern_finds_its_masks(cli, tmp_path):
    _tile_tree(tmp_path / "data")
    options = OPTIONS + ", image_pattern: '*.jpg', mask_pattern: '{stem}.png'}"
    code, stdout, stderr = _validate(cli, tmp_path, FOLDER.format(options=options))
    assert code == 0, stderr
    row = stdout.strip().splitlines()[-1].split()
    assert row[:6] == ["data", "6", "2", "2", "3", "3"]  # 10 normals: 2 test, 8 train of which 2 held out
