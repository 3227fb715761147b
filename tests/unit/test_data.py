import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data.base import load_image
from harness.data.layouts import FolderLayout, MVTecLayout
from harness.data.synthetic import FAMILIES, generate
from harness.errors import DatasetError

MAGNETIC_TILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "magnetic_tile"


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_synthetic_dataset_is_deterministic_per_seed(tmp_path):
    params = {"categories": ("weave",), "n_train": 3, "n_test_good": 2, "n_per_defect": 1, "size": 48}
    generate(tmp_path / "a", seed=0, **params)
    generate(tmp_path / "b", seed=0, **params)
    generate(tmp_path / "c", seed=1, **params)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_synthetic_categories_have_types_families_and_masks(synthetic_root):
    layout = MVTecLayout(synthetic_root)
    assert layout.categories() == ["disc", "grain", "weave"]
    category = layout.load("disc")
    assert category.defect_types == sorted(FAMILIES)
    assert category.families == FAMILIES
    anomalous = [r for r in category.records if r.label]
    assert anomalous and all(len(r.mask_paths) == 1 and r.mask_paths[0].is_file() for r in anomalous)
    masks = [np.asarray(Image.open(r.mask_paths[0])) > 0 for r in anomalous]
    assert all(m.any() for m in masks)


def test_folder_layout_splits_normals_and_finds_masks(tmp_path):
    for folder, n in (("ok", 10), ("dent", 3)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / folder / f"{i}.jpg")
            if folder == "dent":
                Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / folder / f"{i}.png")
    layout = FolderLayout(
        tmp_path,
        normal_dir="ok",
        abnormal_dirs={"dent": "dent"},
        test_normal_fraction=0.3,
        mask_pattern="{stem}.png",
        category="parts",
    )
    category = layout.load("parts")
    assert len(category.split("train")) == 7
    test = category.split("test")
    assert sum(r.label for r in test) == 3 and len(test) == 6
    assert all(r.mask_paths and r.mask_paths[0].suffix == ".png" for r in test if r.label)
    assert not any(p.suffix == ".png" for r in category.records for p in [r.path])  # masks are not images


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        MVTecLayout(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="normal_dir"):
        FolderLayout(tmp_path, normal_dir="missing").load("x")


def test_corrupt_image_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png"):
        load_image(path, (8, 8))


@pytest.mark.skipif(not MAGNETIC_TILE.is_dir(), reason="../shared/data/magnetic_tile not present")
def test_magnetic_tile_loads_through_the_folder_layout():
    types = ["Blowhole", "Break", "Crack", "Fray", "Uneven"]
    layout = FolderLayout(
        MAGNETIC_TILE,
        normal_dir="MT_Free/Imgs",
        abnormal_dirs={t.lower(): f"MT_{t}/Imgs" for t in types},
        image_pattern="*.jpg",
        mask_pattern="{stem}.png",
        category="magnetic_tile",
    )
    category = layout.load("magnetic_tile")
    assert len(category.split("train")) + sum(1 for r in category.split("test") if not r.label) == 952
    assert sum(r.label for r in category.records) == 115 + 85 + 57 + 32 + 103
    assert all(len(r.mask_paths) == 1 for r in category.records if r.label)
