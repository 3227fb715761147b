"""Tiny synthetic copies of the public benchmarks' trees, in exactly their published structure.

No real data: each writer draws small PNGs (a textured background; defects are bright squares with
their masks) into ``root`` and returns it. Structures follow each dataset's documentation and
anomalib's data modules (VisA ``split_csv/1cls.csv``, MVTec AD 2, MVTec 3D-AD, BTAD, KolektorSDD2,
MPDD, Real-IAD's JSON split files).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32
COUNTS = {"train": 8, "holdout": 4, "good": 4, "bad": 4}


def _image(rng: np.random.Generator, defect: bool) -> tuple[np.ndarray, np.ndarray]:
    base = np.linspace(60, 120, SIZE, dtype=np.float32)[None, :, None] + rng.normal(0, 4, (SIZE, SIZE, 3))
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    if defect:
        size = int(rng.integers(3, 10))
        top, left = rng.integers(0, SIZE - size, 2)
        mask[top : top + size, left : left + size] = True
        base[mask] = 240
    return np.clip(base, 0, 255).astype(np.uint8), mask


def _write(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _pair(rng: np.random.Generator, image: Path, mask: Path | None, defect: bool) -> None:
    pixels, region = _image(rng, defect)
    _write(image, pixels)
    if mask is not None:
        _write(mask, region.astype(np.uint8) * 255)


def write_mvtec_ad2(root: Path, categories: tuple[str, ...] = ("can", "vial")) -> Path:
    """``<cat>/{train/good, validation/good, test_public/{good,bad}, test_public/ground_truth/bad, test_private}``."""
    rng = np.random.default_rng(0)
    for category in categories:
        base = root / category
        for folder, n in (("train/good", COUNTS["train"]), ("validation/good", COUNTS["holdout"])):
            for i in range(n):
                _pair(rng, base / folder / f"{i:03d}_regular.png", None, False)
        for i in range(COUNTS["good"]):
            _pair(rng, base / "test_public" / "good" / f"{i:03d}_regular.png", None, False)
        for i in range(COUNTS["bad"]):
            name = f"{i:03d}_regular"
            _pair(
                rng,
                base / "test_public/bad" / f"{name}.png",
                base / "test_public/ground_truth/bad" / f"{name}_mask.png",
                True,
            )
        for i in range(2):
            _pair(rng, base / "test_private" / f"{i:03d}_regular.png", None, bool(i))
    return root


def write_mvtec_3d(root: Path, categories: tuple[str, ...] = ("bagel",)) -> Path:
    """``<cat>/{train,validation}/good/{rgb,xyz}``, ``test/<type>/{rgb,gt,xyz}`` (xyz as float TIFF)."""
    import tifffile

    rng = np.random.default_rng(1)
    for category in categories:
        base = root / category
        folders = [("train/good", COUNTS["train"], False), ("validation/good", COUNTS["holdout"], False)]
        folders += [("test/good", COUNTS["good"], False), ("test/crack", 2, True), ("test/hole", 2, True)]
        for folder, n, defect in folders:
            for i in range(n):
                gt = base / folder / "gt" / f"{i:03d}.png" if folder.startswith("test") else None
                _pair(rng, base / folder / "rgb" / f"{i:03d}.png", gt, defect)
                (base / folder / "xyz").mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(base / folder / "xyz" / f"{i:03d}.tiff", rng.random((SIZE, SIZE, 3), dtype=np.float32))
    return root


def write_btech(root: Path, categories: tuple[str, ...] = ("01", "02")) -> Path:
    """``01|02|03/{train/ok, test/ok, test/ko, ground_truth/ko}`` (01: BMP images, PNG masks)."""
    rng = np.random.default_rng(2)
    for category in categories:
        base = root / category
        suffix = ".bmp" if category in ("01", "03") else ".png"
        for i in range(COUNTS["train"] + COUNTS["holdout"]):
            _pair(rng, base / "train/ok" / f"{i:04d}{suffix}", None, False)
        for i in range(COUNTS["good"]):
            _pair(rng, base / "test/ok" / f"{i:04d}{suffix}", None, False)
        for i in range(COUNTS["bad"]):
            _pair(rng, base / "test/ko" / f"{i:04d}{suffix}", base / "ground_truth/ko" / f"{i:04d}.png", True)
    return root


def write_kolektor_sdd2(root: Path) -> Path:
    """``{train,test}/NNNNN.png`` with ``NNNNN_GT.png`` for every image (all black for defect-free ones)."""
    rng = np.random.default_rng(3)
    number = 10000
    plan = {"train": [False] * (COUNTS["train"] + COUNTS["holdout"]) + [True, True], "test": [False] * 4 + [True] * 4}
    for split, defects in plan.items():
        for defect in defects:
            _pair(rng, root / split / f"{number}.png", root / split / f"{number}_GT.png", defect)
            number += 1
    return root


def write_mpdd(root: Path, categories: tuple[str, ...] = ("bracket_black",)) -> Path:
    """MVTec AD's tree: ``<cat>/{train/good, test/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``."""
    rng = np.random.default_rng(4)
    for category in categories:
        base = root / category
        for i in range(COUNTS["train"] + COUNTS["holdout"]):
            _pair(rng, base / "train/good" / f"{i:03d}.png", None, False)
        for i in range(COUNTS["good"]):
            _pair(rng, base / "test/good" / f"{i:03d}.png", None, False)
        for defect in ("hole", "scratches"):
            for i in range(2):
                _pair(
                    rng,
                    base / "test" / defect / f"{i:03d}.png",
                    base / "ground_truth" / defect / f"{i:03d}_mask.png",
                    True,
                )
    return root


def write_visa(root: Path, objects: tuple[str, ...] = ("candle", "pcb1")) -> Path:
    """``<object>/Data/{Images,Masks}/{Normal,Anomaly}`` with ``split_csv/1cls.csv`` listing them."""
    rng = np.random.default_rng(5)
    rows = []
    for name in objects:
        for i in range(COUNTS["train"] + COUNTS["holdout"] + COUNTS["good"]):
            image = f"{name}/Data/Images/Normal/{i:04d}.JPG"
            _pair(rng, root / image, None, False)
            split = "train" if i < COUNTS["train"] + COUNTS["holdout"] else "test"
            rows.append({"object": name, "split": split, "label": "normal", "image": image, "mask": ""})
        for i in range(COUNTS["bad"]):
            image, mask = f"{name}/Data/Images/Anomaly/{i:03d}.JPG", f"{name}/Data/Masks/Anomaly/{i:03d}.png"
            _pair(rng, root / image, root / mask, True)
            rows.append({"object": name, "split": "test", "label": "anomaly", "image": image, "mask": mask})
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["object", "split", "label", "image", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def _real_iad_object(rng, base: Path, category: str, sample: int, defect: str | None) -> list[dict]:
    folder = f"OK/S{sample:04d}" if defect is None else f"NG/{defect}/S{sample:04d}"
    entries = []
    for view in range(1, 6):  # five cameras C1..C5: each view is one sample
        state = "OK" if defect is None else f"NG_{defect}"
        name = f"{category}_{sample:04d}_{state}_C{view}_20230922093446"
        image, mask = f"{folder}/{name}.jpg", f"{folder}/{name}.png" if defect else None
        _pair(rng, base / image, base / mask if mask else None, defect is not None)
        entries.append({"category": category, "anomaly_class": defect or "OK", "image_path": image, "mask_path": mask})
    return entries


def write_real_iad(root: Path, categories: tuple[str, ...] = ("audiojack",)) -> Path:
    """``realiad_1024/<cat>/{OK,NG/<type>}/S####/*_C{1..5}_*.jpg`` and ``realiad_jsons/realiad_jsons/<cat>.json``."""
    rng = np.random.default_rng(6)
    for category in categories:
        base = root / "realiad_1024" / category
        train = [e for s in range(1, 4) for e in _real_iad_object(rng, base, category, s, None)]
        test = [e for s in range(4, 5) for e in _real_iad_object(rng, base, category, s, None)]
        test += [e for s, d in ((5, "AK"), (6, "HS")) for e in _real_iad_object(rng, base, category, s, d)]
        splits = root / "realiad_jsons" / "realiad_jsons"
        splits.mkdir(parents=True, exist_ok=True)
        meta = {"prefix": "", "normal_class": "OK", "pre_transform": None}
        (splits / f"{category}.json").write_text(json.dumps({"meta": meta, "train": train, "test": test}))
    return root


WRITERS = {
    "visa": write_visa,
    "mvtec_ad2": write_mvtec_ad2,
    "mvtec_3d": write_mvtec_3d,
    "btech": write_btech,
    "kolektor_sdd2": write_kolektor_sdd2,
    "mpdd": write_mpdd,
    "real_iad": write_real_iad,
}
"""Layout name -> fixture writer."""
