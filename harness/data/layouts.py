"""Built-in dataset layouts: ``mvtec``, ``folder``, ``synthetic`` (embedded); ``loco`` is plugins/harness_datasets'."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import hookimpl
from harness.config.models import SyntheticOptions
from harness.data import synthetic
from harness.data.base import IMAGE_SUFFIXES, NORMAL, Category, Record, absolute, validation_split
from harness.data.folder_options import FolderOptions
from harness.errors import DatasetError


def _images(folder: Path, pattern: str | None = None, exclude: frozenset[Path] = frozenset()) -> list[Path]:
    found = sorted(folder.glob(pattern) if pattern else folder.iterdir())
    images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p not in exclude]
    for path in images:
        if path.is_symlink() and not path.exists():
            target = os.readlink(path)
            raise DatasetError(f"{path} is a symbolic link to {target}, which does not exist; fix or remove the link")
    return [p for p in images if p.is_file()]


def _families_from(mapping: Mapping[str, object] | None) -> dict[str, str]:
    """Accept ``{family: [types]}`` or ``{type: family}`` and return ``{type: family}``."""
    result: dict[str, str] = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, (list, tuple)):
            result.update({str(t): str(key) for t in value})
        else:
            result[str(key)] = str(value)
    return result


def _root(root: Path | None, layout: str, hint: str) -> Path:
    """``dataset.root`` made absolute; missing or not a folder: a :class:`DatasetError` saying what to set."""
    if root is None:
        raise DatasetError(f"dataset.root is required for layout '{layout}'; set --set dataset.root=/path/to/{hint}")
    path = absolute(root)
    if not path.is_dir():
        raise DatasetError(f"dataset.root {path} does not exist or is not a folder; check the path")
    return path


class MVTecLayout:
    """MVTec AD's tree: ``ROOT/<category>/{train/good, test/<type>, ground_truth/<type>/<stem>_mask.png}``.

    Any tree of the same shape works (VisA converted, BTech, the embedded dataset). Defect
    families come from the ``families`` option (``{family: [types]}``) or from a
    ``families.json`` / ``families.yaml`` file in the category folder.
    """

    def __init__(
        self, root: Path | None, families: Mapping[str, object] | None = None, mask_suffix: str = "_mask"
    ) -> None:
        self.root = _root(root, "mvtec", "mvtec_ad")
        self.families = _families_from(families)
        self.mask_suffix = mask_suffix

    def categories(self) -> list[str]:
        """Sub-folders of the root that have ``train/good``."""
        return sorted(p.name for p in self.root.iterdir() if (p / "train" / NORMAL).is_dir())

    def load(self, category: str) -> Category:
        """Read one category's records."""
        base = self.root / category
        if not (base / "train" / NORMAL).is_dir():
            raise DatasetError(f"{base} has no train/good folder; is dataset.root an MVTec AD-style tree?")
        records = [Record(p, "train") for p in _images(base / "train" / NORMAL)]
        test = base / "test"
        for type_dir in sorted(p for p in test.iterdir() if p.is_dir()) if test.is_dir() else []:
            for image in _images(type_dir):
                masks: tuple[Path, ...] = ()
                if type_dir.name != NORMAL:
                    mask = base / "ground_truth" / type_dir.name / f"{image.stem}{self.mask_suffix}.png"
                    loco = base / "ground_truth" / type_dir.name / image.stem  # MVTec LOCO: a folder of masks
                    if mask.is_file():
                        masks = (mask,)
                    elif loco.is_dir():
                        masks = tuple(_images(loco))
                records.append(Record(image, "test", type_dir.name, masks))
        families = dict(self.families)
        for name in ("families.json", "families.yaml"):
            if (base / name).is_file():
                families = {**_families_from(yaml.safe_load((base / name).read_text())), **families}
        return Category(category, records, families)


class FolderLayout:
    """A generic folder tree: one folder of normal images and one folder per defect type.

    Options:
        normal_dir: folder of defect-free images, relative to the root.
        abnormal_dirs: ``{defect_type: folder}`` (or a list of folders, named by folder).
        normal_test_dir: folder of defect-free test images; without it, ``test_normal_fraction``
            of ``normal_dir`` (seeded by ``split_seed``) becomes the test normals.
        image_pattern: glob for image files, e.g. ``"*.jpg"`` when masks lie beside images.
        mask_dir: folder holding masks (default: each image's own folder).
        mask_pattern: mask file name from the image's ``{stem}``, e.g. ``"{stem}.png"``.
        category: the category name (default: the root folder's name).
        families: ``{family: [types]}``.
    """

    options_model = FolderOptions

    def __init__(
        self,
        root: Path | None,
        normal_dir: str | None = None,
        abnormal_dirs: Mapping[str, str] | Sequence[str] | None = None,
        normal_test_dir: str | None = None,
        test_normal_fraction: float = 0.2,
        split_seed: int = 0,
        image_pattern: str | None = None,
        mask_dir: str | None = None,
        mask_pattern: str | None = None,
        category: str | None = None,
        families: Mapping[str, object] | None = None,
    ) -> None:
        self.root = _root(root, "folder", "images")
        if not normal_dir:
            raise DatasetError("layout 'folder' needs dataset.options.normal_dir (the folder of defect-free images)")
        if isinstance(abnormal_dirs, Mapping):
            self.abnormal_dirs = {str(k): str(v) for k, v in abnormal_dirs.items()}
        else:
            self.abnormal_dirs = {Path(d).name: str(d) for d in abnormal_dirs or ()}
        if not 0 < test_normal_fraction < 1:
            raise DatasetError(f"dataset.options.test_normal_fraction must be in (0, 1), got {test_normal_fraction}")
        self.normal_dir, self.normal_test_dir = normal_dir, normal_test_dir
        self.test_normal_fraction, self.split_seed = test_normal_fraction, split_seed
        self.image_pattern, self.mask_dir, self.mask_pattern = image_pattern, mask_dir, mask_pattern
        self.name = category or self.root.name
        self.families = _families_from(families)

    def categories(self) -> list[str]:
        """A folder tree is one category."""
        return [self.name]

    def _mask_for(self, image: Path) -> tuple[Path, ...]:
        if not self.mask_pattern:
            return ()
        folder = self.root / self.mask_dir if self.mask_dir else image.parent
        mask = folder / self.mask_pattern.format(stem=image.stem, name=image.name)
        return (mask,) if mask.is_file() and mask != image else ()

    def _list(self, relative: str, key: str) -> list[Path]:
        folder = self.root / relative
        if not folder.is_dir():
            raise DatasetError(f"dataset.options.{key}: folder {folder} does not exist; check the path")
        found = _images(folder, self.image_pattern)
        masks = {m for p in found for m in self._mask_for(p)} if self.mask_dir is None else set()
        images = [p for p in found if p not in masks]
        self._refuse_masks_as_images(folder, images, key)
        return images

    def _refuse_masks_as_images(self, folder: Path, images: list[Path], key: str) -> None:
        """Stop when files listed as images are masks: under mask_dir, named by mask_pattern, or beside a twin."""
        option = f"dataset.options.{key}"
        if self.mask_dir is not None:
            mask_folder = self.root / self.mask_dir
            if folder == mask_folder or mask_folder in folder.parents:
                raise DatasetError(
                    f"{option}: {folder} lies in mask_dir {mask_folder}: its files are masks; point it at images"
                )
        names = {p.name for p in images}
        if self.mask_pattern:
            named = [p for p in images if self.mask_pattern.format(stem=p.stem, name=p.name) in names - {p.name}]
            if named:
                raise DatasetError(
                    f"{option}: {len(named)} images in {folder} have a mask by mask_pattern beside them in the same "
                    f"folder (e.g. {named[0].name}); set image_pattern (e.g. '*{named[0].suffix}') so masks are not "
                    "taken as images"
                )
        twins = [stem for stem, count in Counter(image.stem for image in images).items() if count > 1]
        if twins:
            shown = [p for p in images if p.stem == twins[0]]
            raise DatasetError(
                f"{option}: {len(twins)} images in {folder} share their name with another file "
                f"({', '.join(p.name for p in shown)}): masks beside images? set image_pattern "
                f"(e.g. '*{shown[0].suffix}') and mask_pattern"
            )

    def _require_masks_found(self, records: list[Record]) -> None:
        """A mask_pattern that finds no mask for any defect image is a mistake, not an unlabelled dataset."""
        defects = [r for r in records if r.label]
        if self.mask_pattern and defects and not any(r.mask_paths for r in defects):
            folder = self.root / self.mask_dir if self.mask_dir else defects[0].path.parent
            example = folder / self.mask_pattern.format(stem=defects[0].path.stem, name=defects[0].path.name)
            raise DatasetError(
                f"dataset.options.mask_pattern '{self.mask_pattern}' matches no file for the {len(defects)} defect "
                f"images (e.g. {example} does not exist); fix mask_pattern or mask_dir, or drop mask_pattern"
            )

    def load(self, category: str) -> Category:
        """Read the tree; split the normals when there is no separate test folder."""
        normals = self._list(self.normal_dir, "normal_dir")
        if self.normal_test_dir:
            train, test_normals = normals, self._list(self.normal_test_dir, "normal_test_dir")
        else:  # the same seeded split as a detector's validation share
            fraction, seed = self.test_normal_fraction, self.split_seed
            train, test_normals = validation_split(normals, fraction, seed, owner="layout 'folder'")
        records = [Record(p, "train") for p in train] + [Record(p, "test") for p in test_normals]
        for defect_type, relative in self.abnormal_dirs.items():
            for image in self._list(relative, f"abnormal_dirs.{defect_type}"):
                records.append(Record(image, "test", defect_type, self._mask_for(image)))
        self._require_masks_found(records)
        return Category(self.name, records, dict(self.families))


def synthetic_layout(root: Path | None = None, **options: Any) -> MVTecLayout:
    """The embedded dataset, generated on first use (see :mod:`harness.data.synthetic`).

    Options: :class:`~harness.config.models.SyntheticOptions` (``n_train``, ``n_test_good``, ``n_per_defect``,
    ``size`` in pixels, ``seed``); an unknown or mistyped one is a :class:`pydantic.ValidationError`.
    """
    if root is not None:
        raise DatasetError("layout 'synthetic' takes no dataset.root; drop the root or choose layout mvtec/folder")
    return MVTecLayout(synthetic.ensure_generated(**SyntheticOptions(**options).model_dump()))


@hookimpl
def harness_datasets() -> dict[str, object]:
    """The built-in layouts."""
    return {"mvtec": MVTecLayout, "folder": FolderLayout, "synthetic": synthetic_layout}
