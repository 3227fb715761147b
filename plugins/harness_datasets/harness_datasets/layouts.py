"""Layouts of the field's public benchmarks, each reading the dataset's own tree and split files.

``loco`` (MVTec LOCO AD), ``visa`` (VisA's ``split_csv/1cls.csv``), ``mvtec_ad2`` (MVTec AD 2),
``mvtec_3d`` (MVTec 3D-AD, its RGB images), ``btech`` (BTAD), ``kolektor_sdd2`` (KolektorSDD2),
``mpdd`` (MVTec-like) and ``real_iad`` (Real-IAD's JSON split files). README, "Datasets", cites each
and names its download page.

Held-out normals: where a benchmark ships its own defect-free validation images (MVTec AD 2 and
MVTec 3D-AD ``validation/good``), they become records of the split ``"holdout"``; the training
subset then calibrates on exactly those, instead of carving a share out of the training images
(:meth:`harness.scoring.TrainingSubset.split`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from harness import DatasetError, hookimpl
from harness.datasets import IMAGE_SUFFIXES, NORMAL, Category, MVTecLayout, Record
from harness.datasets import families_from as _families_from
from harness.datasets import images_in as _images
from harness_datasets.options import (
    FamiliesOptions,
    KolektorSDD2Options,
    MVTecAD2Options,
    RealIADOptions,
    VisAOptions,
)

if TYPE_CHECKING:
    import pandas as pd

HOLDOUT = "holdout"
"""Split of the defect-free validation images a benchmark provides for calibration."""
UNLABELLED = "unlabelled"
"""Split of images scored without labels (MVTec AD 2's private test sets); their defect type is unused."""


def _root(root: Path | None, layout: str, hint: str) -> Path:
    if root is None:
        raise DatasetError(f"dataset.root is required for layout '{layout}'; set --set dataset.root=/path/to/{hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"dataset.root {path} does not exist or is not a folder; check the path")
    return path


def _same_stem(folder: Path, stem: str, suffix: str = "") -> tuple[Path, ...]:
    """The file ``folder/<stem><suffix>.*`` with an image suffix, as a 0- or 1-tuple."""
    for extension in (".png", *IMAGE_SUFFIXES):
        candidate = folder / f"{stem}{suffix}{extension}"
        if candidate.is_file():
            return (candidate,)
    return ()


def _has_defect_pixel(mask: Path) -> bool:
    try:
        with Image.open(mask) as image:
            return bool(np.asarray(image.convert("L")).any())
    except OSError as exc:
        raise DatasetError(f"cannot read mask {mask}: {exc}; replace or remove the file") from None


class _SubfolderCategories:
    """Categories are the root's sub-folders holding ``marker`` (a relative folder)."""

    root: Path
    marker: str

    def categories(self) -> list[str]:
        """Sub-folders of the root with the layout's marker folder."""
        return sorted(p.name for p in self.root.iterdir() if (p / self.marker).is_dir())

    def _base(self, category: str) -> Path:
        base = self.root / category
        if not (base / self.marker).is_dir():
            raise DatasetError(f"{base} has no {self.marker} folder; is dataset.root the right tree for this layout?")
        return base


class MVTecAD2Layout(_SubfolderCategories):
    """MVTec AD 2: ``<cat>/{train/good, validation/good, test_public/{good,bad}, test_public/ground_truth/bad}``.

    ``validation/good`` are the held-out normals thresholds are calibrated on (never carved from
    train). With ``private: true`` the private test sets (``test_private``, ``test_private_mixed``),
    which carry no labels, are scored too as the split ``"unlabelled"``: cached and exported with
    ``harness export`` for MVTec AD 2's evaluation server, never part of a metric.
    """

    marker = "train/good"
    options_model = MVTecAD2Options
    PRIVATE = ("test_private", "test_private_mixed")

    def __init__(self, root: Path | None, families: Mapping[str, object] | None = None, private: bool = False) -> None:
        self.root = _root(root, "mvtec_ad2", "mvtec_ad_2")
        self.families = _families_from(families)
        self.private = bool(private)

    def load(self, category: str) -> Category:
        """Train, held-out and public test records of one scenario."""
        base = self._base(category)
        records = [Record(p, "train") for p in _images(base / "train" / NORMAL)]
        records += [Record(p, HOLDOUT) for p in _images(base / "validation" / NORMAL)]
        public = base / "test_public"
        records += [Record(p, "test") for p in _images(public / NORMAL)] if (public / NORMAL).is_dir() else []
        for image in _images(public / "bad") if (public / "bad").is_dir() else []:
            masks = _same_stem(public / "ground_truth" / "bad", image.stem, "_mask")
            records.append(Record(image, "test", "bad", masks))
        for folder in (base / name for name in self.PRIVATE if self.private):
            records += [Record(p, UNLABELLED) for p in _images(folder)] if folder.is_dir() else []
        return Category(category, records, dict(self.families))


class MVTec3DLayout(_SubfolderCategories):
    """MVTec 3D-AD, its RGB images: ``<cat>/{train,validation}/good/rgb``, ``test/<type>/{rgb,gt,xyz}``.

    Masks are ``test/<type>/gt/<stem>.png``; ``validation/good/rgb`` are the held-out normals.
    The point clouds (``xyz/<stem>.tiff``) lie beside each image; :func:`mvtec3d_xyz` names them and
    each record offers its cloud as the input ``xyz`` (to models declaring ``inputs=("xyz",)``).
    """

    marker = "train/good/rgb"
    options_model = FamiliesOptions

    def __init__(self, root: Path | None, families: Mapping[str, object] | None = None) -> None:
        self.root = _root(root, "mvtec_3d", "mvtec_3d_anomaly_detection")
        self.families = _families_from(families)

    def load(self, category: str) -> Category:
        """Train, held-out and test records of one category (RGB images)."""
        base = self._base(category)
        records = [Record(p, "train", inputs=_xyz(p)) for p in _images(base / "train" / NORMAL / "rgb")]
        validation = base / "validation" / NORMAL / "rgb"
        records += [Record(p, HOLDOUT, inputs=_xyz(p)) for p in _images(validation)] if validation.is_dir() else []
        test = base / "test"
        for type_dir in sorted(p for p in test.iterdir() if (p / "rgb").is_dir()) if test.is_dir() else []:
            for image in _images(type_dir / "rgb"):
                masks = _same_stem(type_dir / "gt", image.stem) if type_dir.name != NORMAL else ()
                records.append(Record(image, "test", type_dir.name, masks, inputs=_xyz(image)))
        return Category(category, records, dict(self.families))


def _xyz(rgb_path: Path) -> tuple[tuple[str, Path], ...]:
    """The record's ``inputs``: its point cloud, offered to models that ask for ``xyz``."""
    cloud = mvtec3d_xyz(rgb_path)
    return (("xyz", cloud),) if cloud is not None else ()


def mvtec3d_xyz(rgb_path: Path) -> Path | None:
    """The organised point cloud (``xyz/<stem>.tiff``, H x W x 3 float) beside an MVTec 3D-AD RGB image."""
    candidate = rgb_path.parent.parent / "xyz" / f"{rgb_path.stem}.tiff"
    return candidate if candidate.is_file() else None


class BTechLayout(_SubfolderCategories):
    """BTAD (BeanTech): ``01|02|03/{train/ok, test/ok, test/ko, ground_truth/ko/<stem>.png|.bmp}``."""

    marker = "train/ok"
    options_model = FamiliesOptions

    def __init__(self, root: Path | None, families: Mapping[str, object] | None = None) -> None:
        self.root = _root(root, "btech", "BTech_Dataset_transformed")
        self.families = _families_from(families)

    def load(self, category: str) -> Category:
        """Train and test records of one product; ``ko`` images are the defective ones."""
        base = self._base(category)
        records = [Record(p, "train") for p in _images(base / "train" / "ok")]
        ok, ko = base / "test" / "ok", base / "test" / "ko"
        records += [Record(p, "test") for p in _images(ok)] if ok.is_dir() else []
        for image in _images(ko) if ko.is_dir() else []:
            records.append(Record(image, "test", "ko", _same_stem(base / "ground_truth" / "ko", image.stem)))
        return Category(category, records, dict(self.families))


class KolektorSDD2Layout:
    """KolektorSDD2: ``{train,test}/NNNNN.png`` with ``NNNNN_GT.png``; defective when the mask has a defect pixel.

    Defective training images are left out of training (``train_defects: drop``, the unsupervised
    setting) or moved to the test set (``train_defects: test``).
    """

    options_model = KolektorSDD2Options

    def __init__(self, root: Path | None, train_defects: str = "drop", category: str = "kolektor_sdd2") -> None:
        self.root = _root(root, "kolektor_sdd2", "KolektorSDD2")
        if train_defects not in ("drop", "test"):
            raise DatasetError(f"dataset.options.train_defects must be 'drop' or 'test', got {train_defects!r}")
        for split in ("train", "test"):
            if not (self.root / split).is_dir():
                raise DatasetError(f"{self.root} has no {split}/ folder; is dataset.root the KolektorSDD2 folder?")
        self.train_defects, self.name = train_defects, category

    def categories(self) -> list[str]:
        """KolektorSDD2 is one category."""
        return [self.name]

    def _pairs(self, split: str) -> list[tuple[Path, Path | None]]:
        folder = self.root / split
        images = [p for p in _images(folder) if not p.stem.endswith("_GT")]
        return [(p, next(iter(_same_stem(folder, p.stem, "_GT")), None)) for p in images]

    def load(self, category: str) -> Category:
        """Records of both splits, labelled by their masks."""
        records = []
        for split in ("train", "test"):
            for image, mask in self._pairs(split):
                defective = mask is not None and _has_defect_pixel(mask)
                if not defective:
                    records.append(Record(image, split))
                elif split == "test" or self.train_defects == "test":
                    records.append(Record(image, "test", "defect", (mask,)))
        return Category(self.name, records)


LOCO_FAMILIES = {"logical_anomalies": "logical", "structural_anomalies": "structural"}


class LocoLayout(MVTecLayout):
    """MVTec LOCO AD: the MVTec tree plus ``validation/good``, and masks as folders of PNGs.

    ``ground_truth/<type>/<stem>/000.png, 001.png, ...`` are united into one mask per image.
    The defect-free ``validation/good`` images join the training normals (they are normals the
    benchmark sets aside for model selection; the harness's own holdout then splits them all).
    Families: ``logical_anomalies`` -> logical, ``structural_anomalies`` -> structural.
    """

    def __init__(self, root: Path | None, families: Mapping[str, object] | None = None) -> None:
        super().__init__(root, families)
        self.families = {**LOCO_FAMILIES, **self.families}

    def load(self, category: str) -> Category:
        """Read one category; validation normals become training records."""
        loaded = super().load(category)
        folder = self.root / category / "validation" / NORMAL
        validation = [Record(p, "train") for p in _images(folder)] if folder.is_dir() else []
        return Category(category, loaded.split("train") + validation + loaded.split("test"), loaded.families)


class MPDDLayout(MVTecLayout):
    """MPDD (Metal Parts Defect Detection): MVTec AD's tree, ``<cat>/{train/good, test/<type>, ground_truth}``."""


class VisALayout:
    """VisA from its split file ``split_csv/1cls.csv`` (columns ``object, split, label, image, mask``).

    Paths in the CSV are relative to the root; ``label`` is ``normal`` or ``anomaly`` (VisA gives
    no defect type there, so every defective image has the type ``anomaly``).
    """

    options_model = VisAOptions

    def __init__(
        self, root: Path | None, split_file: str = "split_csv/1cls.csv", families: Mapping[str, object] | None = None
    ) -> None:
        self.root = _root(root, "visa", "VisA_20220922")
        self.split_file = self.root / split_file
        if not self.split_file.is_file():
            raise DatasetError(f"VisA split file {self.split_file} not found; set dataset.options.split_file")
        with self.split_file.open(newline="") as handle:
            self.rows = list(csv.DictReader(handle))
        missing = {"object", "split", "label", "image", "mask"} - set(self.rows[0] if self.rows else {})
        if missing:
            raise DatasetError(f"{self.split_file} lacks the column(s) {sorted(missing)}; expected VisA's 1cls.csv")
        self.families = _families_from(families)

    def categories(self) -> list[str]:
        """The objects named in the split file."""
        return sorted({row["object"] for row in self.rows})

    def load(self, category: str) -> Category:
        """Records of one object as the split file lists them."""
        records = []
        for row in (r for r in self.rows if r["object"] == category):
            image = self.root / row["image"]
            if row["label"] == "normal":
                records.append(Record(image, row["split"]))
                continue
            if row["split"] == "train":
                raise DatasetError(f"{self.split_file}: anomalous training image {row['image']}; fix the split file")
            masks = (self.root / row["mask"],) if row["mask"] else ()
            records.append(Record(image, row["split"], "anomaly", masks))
        return Category(category, records, dict(self.families))


class RealIADLayout:
    """Real-IAD from its JSON split files: ``<splits>/<category>.json`` with ``meta``, ``train``, ``test``.

    Each entry (``category, anomaly_class, image_path, mask_path``) is one view of one object and
    becomes one sample. ``image_path`` and ``mask_path`` are relative to ``<images>/<category>``
    (``meta.prefix``, when set, replaces ``<category>``) and keep the object folder
    (``OK/S0001/...``, ``NG/<type>/S0032/...``) so that :func:`real_iad_object` can aggregate results
    per object. ``anomaly_class`` equal to ``meta.normal_class`` (``OK``) is normal, other codes are
    defect types. Other split sets (``realiad_jsons_sv``, ``realiad_jsons_fuiad_0.1``) via ``splits``.
    """

    options_model = RealIADOptions

    def __init__(
        self, root: Path | None, images: str = "realiad_1024", splits: str = "realiad_jsons/realiad_jsons"
    ) -> None:
        self.root = _root(root, "real_iad", "Real-IAD")
        self.images, self.splits = self.root / images, self.root / splits
        for folder, key in ((self.images, "images"), (self.splits, "splits")):
            if not folder.is_dir():
                raise DatasetError(f"dataset.options.{key}: folder {folder} does not exist; check the path")

    def categories(self) -> list[str]:
        """Categories with a split file."""
        return sorted(p.stem for p in self.splits.glob("*.json"))

    def load(self, category: str) -> Category:
        """Records of every view listed in the category's split file."""
        path = self.splits / f"{category}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read Real-IAD split file {path}: {exc}") from None
        meta = data.get("meta", {})
        base = self.images / (str(meta.get("prefix") or "") or category)
        normal = str(meta.get("normal_class", "OK"))
        records = []
        for split in ("train", "test"):
            for entry in data.get(split, []):
                image = base / entry["image_path"]
                defect = NORMAL if entry["anomaly_class"] == normal else str(entry["anomaly_class"])
                masks = (base / entry["mask_path"],) if entry.get("mask_path") else ()
                records.append(Record(image, split, defect, masks if defect != NORMAL else ()))
        return Category(category, records)


def real_iad_object(path: Path | str) -> str:
    """The object a Real-IAD view belongs to: its sample folder (``S0001``) under the category."""
    parts = Path(path).parts
    return next((part for part in reversed(parts[:-1]) if part[:1] == "S" and part[1:].isdigit()), Path(path).stem)


def per_object(scores: pd.DataFrame) -> pd.DataFrame:
    """Real-IAD results per object: a view table (``path, score, label``) reduced to one row per object.

    An object is anomalous when any of its views is, and scores as its most anomalous view (the
    Real-IAD paper's sample-level evaluation takes the maximum over the five views).
    """
    objects = scores.assign(object=[real_iad_object(p) for p in scores["path"]])
    grouped = objects.groupby("object", sort=True)
    return grouped.agg(score=("score", "max"), label=("label", "max"), views=("score", "size")).reset_index()


@hookimpl
def harness_datasets() -> dict[str, object]:
    """The public-benchmark layouts."""
    return {
        "loco": LocoLayout,
        "visa": VisALayout,
        "mvtec_ad2": MVTecAD2Layout,
        "mvtec_3d": MVTec3DLayout,
        "btech": BTechLayout,
        "kolektor_sdd2": KolektorSDD2Layout,
        "mpdd": MPDDLayout,
        "real_iad": RealIADLayout,
    }
