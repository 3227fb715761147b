"""The ``precomputed`` model: evaluate scores and maps made elsewhere (a paper's code, a vendor tool, a cluster).

Options (``models: [{name: precomputed, options: {...}}]``):

- ``root``: the dataset root the listed paths are relative to (the protocol's ``dataset.root``);
- ``scores``: a CSV with columns ``path,score``, ``path`` relative to ``root`` as the layout lists
  images (e.g. ``can/test_public/bad/000_regular.png``);
- ``maps``: a folder mirroring those relative paths, one map per image with the image's suffix
  replaced by ``.tiff``/``.tif`` (float), ``.npy`` (float) or ``.png`` (8- or 16-bit, scaled to
  ``map_range``), so MVTec AD 2's ``anomaly_images/`` submission folder works as is;
- ``map_range``: ``[lo, hi]``, the values a PNG map's 0 and full scale stand for (required for PNG maps).

Either or both of ``scores`` and ``maps``; with maps only, an image's score is its map's maximum.

How images are found: the harness hands detectors images under opaque names (a detector must not
learn a label from a path), so this model never reads ``sample.path``. It looks each sample up by
its pixels: every listed image is loaded at the job's image size exactly as the harness loads it
(:func:`harness.data.base.load_image`) and hashed; a sample's pixels give the same hash.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness import DatasetError, ProtocolError, Sample, Scores, hookimpl
from harness.datasets import IMAGE_SUFFIXES, load_image
from harness_datasets.options import PrecomputedOptions

MAP_SUFFIXES = (".tiff", ".tif", ".npy", ".png")
OPTIONS = ("root", "scores", "maps", "map_range")


def pixel_key(pixels: np.ndarray) -> str:
    """A hash of an image's pixels and shape: how a sample is matched to a listed image."""
    digest = hashlib.blake2b(digest_size=16, person=b"harness-precomp")
    digest.update(repr(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def read_scores(path: Path) -> dict[str, float]:
    """``path -> score`` from a ``path,score`` CSV; one clear line when it is malformed."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ProtocolError(f"precomputed scores file {path}: {exc.strerror or exc}") from None
    if not rows or not {"path", "score"} <= set(rows[0]):
        raise ProtocolError(f"precomputed scores file {path} needs the columns path,score (one row per image)")
    try:
        return {row["path"].strip(): float(row["score"]) for row in rows}
    except ValueError as exc:
        raise ProtocolError(f"precomputed scores file {path}: {exc}; every score must be a number") from None


def map_file(folder: Path, relative: str) -> Path | None:
    """The map of the image ``relative`` in ``folder``: the same relative path with a map suffix."""
    stem = Path(relative).with_suffix("")
    for suffix in MAP_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_map(path: Path, map_range: Sequence[float] | None, size: tuple[int, int]) -> np.ndarray:
    """One map as float32 H x W at ``size`` (bilinear when it has another size)."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        values = np.asarray(tifffile.imread(path), dtype=np.float32)
    elif suffix == ".npy":
        values = np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    else:
        if map_range is None:
            raise ProtocolError(f"PNG map {path} needs models.options.map_range: [lo, hi] (what 0 and full scale mean)")
        with Image.open(path) as image:
            raw = np.asarray(image)
        full = 65535.0 if raw.dtype == np.uint16 or raw.max(initial=0) > 255 else 255.0
        lo, hi = float(map_range[0]), float(map_range[1])
        values = (lo + raw.astype(np.float32) / full * (hi - lo)).astype(np.float32)
    values = np.squeeze(values)
    if values.ndim != 2:
        raise DatasetError(f"map {path} has shape {values.shape}; expected one channel (H x W)")
    if values.shape != size:
        values = np.asarray(Image.fromarray(values, "F").resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return values


def _image_for_map(root: Path, relative_map: Path) -> str | None:
    stem = relative_map.with_suffix("")
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        if (root / f"{stem}{suffix}").is_file():
            return f"{stem.as_posix()}{suffix}"
    return None


@cache
def _index(root: Path, listed: tuple[str, ...], size: tuple[int, int]) -> dict[str, tuple[str, ...]]:
    """Pixel hash -> the listed images with those pixels at ``size`` (memoised per root, list and size)."""
    index: dict[str, tuple[str, ...]] = {}
    for relative in listed:
        key = pixel_key(load_image(root / relative, size))
        index[key] = (*index.get(key, ()), relative)
    return index


class Precomputed:
    """A model whose scores and maps were computed elsewhere; ``fit`` learns nothing."""

    weights = "precomputed (scores and maps made outside the harness)"
    options_model = PrecomputedOptions

    def __init__(
        self,
        root: str | Path | None = None,
        scores: str | Path | None = None,
        maps: str | Path | None = None,
        map_range: Sequence[float] | None = None,
    ) -> None:
        self.check_options({"root": root, "scores": scores, "maps": maps, "map_range": map_range})
        self.root = Path(str(root)).expanduser()
        self.scores = read_scores(Path(str(scores)).expanduser()) if scores else None
        self.maps = Path(str(maps)).expanduser() if maps else None
        self.map_range = tuple(map_range) if map_range else None

    @staticmethod
    def check_options(options: Mapping[str, Any], key: str = "models.options") -> None:
        """Reject unknown or missing options and files that are not there, before anything runs."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ProtocolError(f"{key}: unknown option(s) {unknown} for precomputed; allowed: {list(OPTIONS)}")
        if not options.get("root"):
            raise ProtocolError(f"{key}.root: precomputed needs root, the dataset root its paths are relative to")
        if not options.get("scores") and not options.get("maps"):
            raise ProtocolError(f"{key}: precomputed needs scores (a path,score CSV), maps (a folder) or both")
        for name in ("root", "maps"):
            if options.get(name) and not Path(str(options[name])).expanduser().is_dir():
                raise ProtocolError(f"{key}.{name}: folder {options[name]} does not exist")
        if options.get("scores") and not Path(str(options["scores"])).expanduser().is_file():
            raise ProtocolError(f"{key}.scores: file {options['scores']} does not exist")
        bounds = options.get("map_range")
        if bounds is not None and (len(bounds) != 2 or not float(bounds[0]) < float(bounds[1])):
            raise ProtocolError(f"{key}.map_range: expected [lo, hi] with lo < hi, got {bounds!r}")

    def fit(self, samples: Sequence[Sample]) -> Precomputed:
        """Nothing to learn: the scores were made elsewhere."""
        return self

    def _listed(self) -> tuple[str, ...]:
        if self.scores is not None:
            return tuple(sorted(self.scores))
        found = (p.relative_to(self.maps) for p in self.maps.rglob("*") if p.suffix.lower() in MAP_SUFFIXES)
        return tuple(sorted(image for p in found if (image := _image_for_map(self.root, p))))

    def _lookup(self, samples: Sequence[Sample], size: tuple[int, int]) -> list[str]:
        index = _index(self.root, self._listed(), size)
        found, missing = [], []
        for sample in samples:
            names = index.get(pixel_key(sample.image), ())
            if len({self._value(n) for n in names}) > 1:
                raise DatasetError(f"precomputed: images {list(names)} have the same pixels but different scores")
            found.append(names[0] if names else "")
            missing += [] if names else [sample]
        if missing:
            raise DatasetError(self._missing_message(missing, size))
        return found

    def _value(self, name: str) -> float | str:
        return self.scores[name] if self.scores is not None else str(map_file(self.maps, name))

    def _missing_message(self, missing: Sequence[Sample], size: tuple[int, int]) -> str:
        keys = {pixel_key(s.image) for s in missing}
        images = (p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        named = sorted(p.relative_to(self.root).as_posix() for p in images if pixel_key(load_image(p, size)) in keys)
        source = f"scores file ({len(self.scores)} rows)" if self.scores is not None else f"maps folder {self.maps}"
        return (
            f"precomputed: {len(missing)} image(s) the protocol scores are not in the {source}, e.g. "
            f"{', '.join(named[:3]) or 'images outside root'}; add them (non-oracle calibrations need "
            "scores for the held-out normals too: the dataset's validation/good or the held-out training images)"
        )

    def score(self, samples: Sequence[Sample]) -> Scores:
        """The listed scores (and maps) of ``samples``, matched by pixels."""
        size = samples[0].image.shape[:2]
        names = self._lookup(samples, size)
        maps = None
        if self.maps is not None:
            files = [map_file(self.maps, name) for name in names]
            absent = [n for n, f in zip(names, files, strict=True) if f is None]
            if absent:
                raise DatasetError(f"precomputed: no map for {len(absent)} image(s) in {self.maps}, e.g. {absent[:3]}")
            maps = np.stack([read_map(f, self.map_range, size) for f in files])
        if self.scores is not None:
            image = np.array([self.scores[name] for name in names], dtype=np.float64)
        else:
            image = maps.reshape(len(names), -1).max(axis=1).astype(np.float64)
        return Scores(image=image, maps=maps)


@hookimpl
def harness_models() -> dict[str, object]:
    """Register ``precomputed``."""
    return {"precomputed": Precomputed}
