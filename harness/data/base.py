"""Dataset records and categories: what the harness knows about each image (the model does not)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import DatasetError
from harness.types import Sample

T = TypeVar("T")

NORMAL = "good"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Record:
    """One image of a category with its ground truth. Never given to a detector.

    Attributes:
        path: the image file.
        split: "train" (defect-free training images) or "test".
        defect_type: "good" for defect-free images, else the defect type.
        mask_paths: pixel masks of the defect (several for MVTec LOCO-style trees), or none.
        inputs: other per-image files a layout offers, by input name (MVTec 3D-AD: ``("xyz", path)``);
            handed only to models that ask for them (``ModelSpec.inputs``), under opaque names.

    """

    path: Path
    split: str
    defect_type: str = NORMAL
    mask_paths: tuple[Path, ...] = ()
    inputs: tuple[tuple[str, Path], ...] = ()

    @property
    def label(self) -> int:
        """1 for an anomalous image, 0 for a defect-free one."""
        return int(self.defect_type != NORMAL)


@dataclass
class Category:
    """The images of one dataset category and the defect families its types belong to."""

    name: str
    records: list[Record]
    families: dict[str, str] = field(default_factory=dict)  # defect type -> family
    members: tuple[Category, ...] = ()  # the categories a merged (unified) category was built from

    def split(self, split: str) -> list[Record]:
        """Records of one split, in a stable order."""
        return [r for r in self.records if r.split == split]

    @property
    def defect_types(self) -> list[str]:
        """The defect types present in the test split, sorted."""
        return sorted({r.defect_type for r in self.records if r.label})

    @classmethod
    def merged(cls, name: str, categories: Sequence[Category]) -> Category:
        """One category holding the training images of several (for a unified model)."""
        records = [r for c in categories for r in c.split("train")]
        families = {t: f for c in categories for t, f in c.families.items()}
        return cls(name, records, families, tuple(categories))

    def fingerprint(self) -> str:
        """A content hash of every image and mask (paths relative, bytes hashed); computed once."""
        if "_fingerprint" not in self.__dict__:
            from harness.data.memo import remembered  # across runs while no file changes

            self.__dict__["_fingerprint"] = remembered("fingerprint", self.records, self._compute_fingerprint)
        return self.__dict__["_fingerprint"]

    def _compute_fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        paths = {r.path: absolute(r.path) for r in self.records}
        root = Path(os.path.commonpath(list(paths.values()))) if paths else Path("/")
        for record in sorted(self.records, key=lambda r: str(paths[r.path])):
            relative = paths[record.path].relative_to(root).as_posix()
            digest.update(f"{record.split}|{record.defect_type}|{relative}".encode())
            for path in (record.path, *record.mask_paths):
                digest.update(path.read_bytes())
        return digest.hexdigest()


class DatasetSource(Protocol):
    """What a dataset layout returns: category names and their records."""

    def categories(self) -> list[str]:
        """Names of the categories found."""

    def load(self, category: str) -> Category:
        """Records of one category."""


def absolute(path: Path) -> Path:
    """``path`` made absolute against the working directory without resolving symbolic links.

    Records keep the paths under which the dataset was found (a symlinked category stays under
    its link), so paths relative to the dataset root are the same whether the root is a link or not.
    """
    return Path(os.path.abspath(Path(path).expanduser()))


SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Modes Pillow reads 16-bit (and 32-bit integer) images in: scaled by 255/65535, not clipped."""
READ_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB.

    16-bit grey (``I;16*``, ``I``) is scaled by 255/65535 (Pillow's own conversion clips it to
    white); float images (``F``) are taken as values in [0, 1], as scikit-image does; palette,
    grey, two-level, CMYK and YCbCr go through Pillow's conversion; an alpha channel is dropped
    (as Pillow and torchvision do when asked for RGB).
    """
    if image.mode in (*SIXTEEN_BIT, "F"):
        array = np.asarray(image, dtype=np.float64)
        array = array * 255.0 if image.mode == "F" else array / 257.0
        return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("P", "PA") and "transparency" in image.info:
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` with Pillow's decompression-bomb warning raised as an error (header only, no decode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombWarning as exc:
            raise Image.DecompressionBombError(str(exc)) from None
        with image:
            yield image


def unreadable_error(kind: str, path: Path, exc: BaseException) -> DatasetError:
    """The one-line error for an image or mask (``kind``) that Pillow could not open or decode."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        return DatasetError(
            f"{kind} {path} has {pixels}, above Pillow's decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,} "
            "(PIL.Image.MAX_IMAGE_PIXELS); shrink or remove the file"
        )
    detail = str(exc).strip() or type(exc).__name__
    return DatasetError(f"cannot read {kind} {path}: {detail}; replace or remove the file (or exclude its folder)")


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Read an image as H x W x 3 uint8 at ``size`` (height, width), whatever its mode (see :func:`to_rgb`)."""
    try:
        with open_image(path) as image:
            if image.mode == "L":  # resized as one band, then copied to three: the same pixels, a third of the work
                return np.asarray(to_rgb(image.resize((size[1], size[0]), Image.Resampling.BILINEAR)), dtype=np.uint8)
            image = to_rgb(image).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except READ_ERRORS as exc:
        raise unreadable_error("image", path, exc) from None


def mask_array(image: Image.Image) -> np.ndarray:
    """A mask image as booleans: any non-zero value marks the defect (8 or 16 bit, grey, palette or colour)."""
    if image.mode in (*SIXTEEN_BIT, "F", "1", "L"):
        return np.asarray(image) > 0
    return np.asarray(image.convert("L")) > 0


def load_mask(paths: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """The union of ``paths`` as a boolean H x W mask at ``size``; all False when there is none."""
    mask = np.zeros(size, dtype=bool)
    for path in paths:
        try:
            with open_image(path) as image:  # nearest sampling picks pixels: thresholding before or after is the same
                binary = image if image.mode == "L" else Image.fromarray(mask_array(image).astype(np.uint8) * 255, "L")
                mask |= np.asarray(binary.resize((size[1], size[0]), Image.Resampling.NEAREST)) > 0
        except READ_ERRORS as exc:
            raise unreadable_error("mask", path, exc) from None
    return mask


def samples_for(records: Sequence[Record], size: tuple[int, int]) -> list[Sample]:
    """Samples under the records' own paths, in their order: for tools that show images.

    Never for a detector inside a run: the harness hands those over under opaque names in a
    shuffled order (:class:`harness.data.handover.SampleFolder`).
    """
    return [Sample(r.path, functools.partial(load_image, r.path, size)) for r in records]


def subsample(records: list[Record], limit: int | None, rng: np.random.Generator) -> list[Record]:
    """At most ``limit`` records drawn without replacement, in their original order."""
    if limit is None or len(records) <= limit:
        return records
    keep = set(rng.choice(len(records), size=limit, replace=False).tolist())
    return [r for i, r in enumerate(records) if i in keep]


def validation_split(
    samples: Sequence[T], fraction: float, seed: int, minimum: int = 1, owner: str = "detector"
) -> tuple[list[T], list[T]]:
    """(train, validation): a seeded share of a detector's training normals set aside inside ``fit``.

    For detectors that normalise or scale scores on normals they did not train on (PUAD's
    z-scores, map quantiles). At least ``minimum`` validation images and as many to train on.
    """
    if len(samples) < 2 * minimum:
        raise DatasetError(f"{owner} needs at least {2 * minimum} training images, got {len(samples)}")
    n_validation = min(len(samples) - minimum, max(minimum, round(len(samples) * fraction)))
    chosen = set(np.random.default_rng(seed).permutation(len(samples))[:n_validation].tolist())
    return [s for i, s in enumerate(samples) if i not in chosen], [s for i, s in enumerate(samples) if i in chosen]
