"""Per-image inputs besides the RGB image, for the models that ask for them (``ModelSpec.inputs``).

One input exists today: ``"xyz"``, MVTec 3D-AD's organised point cloud (``xyz/<stem>.tiff`` beside
each RGB image, float32 H x W x 3: x, y, z per pixel, 0 where the sensor saw nothing). A layout
offers it through :attr:`harness.data.base.Record.inputs`; a model whose spec declares
``inputs=("xyz",)`` gets :class:`XYZSample` objects whose ``.xyz`` is that cloud resized to the
job's image size (nearest neighbour, so no point is interpolated between surfaces).

The leakage guard covers it as it covers images: the cloud is read and resized by the harness and
written into the job's :class:`~harness.data.handover.SampleFolder` as ``<hash of its values>.npy``
(read-only, fixed times), in the same shuffled order as the images; ``.xyz`` loads that file. No
original name, folder or link reaches the model. Other models get plain samples, and nothing of
the point clouds is read for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DatasetError, HarnessError
from harness.types import Sample

XYZ = "xyz"
INPUTS: Mapping[str, str] = {
    XYZ: "MVTec 3D-AD's organised point cloud: sample.xyz, float32 H x W x 3 at the image size (mvtec_3d layout)",
}
"""Every input a model may ask for, with what it gets."""
LAYOUTS_WITH: Mapping[str, tuple[str, ...]] = {XYZ: ("mvtec_3d",)}
"""The built-in layouts that offer each input (for the error message)."""


class XYZSample(Sample):
    """A sample with MVTec 3D-AD's point cloud: ``.xyz`` (H x W x 3 float32, loaded on access) beside ``.image``.

    Only models that declare ``inputs=("xyz",)`` get these; ``.xyz`` has the image's height and width.
    """

    __slots__ = ("_xyz", "_xyz_loader")

    def __init__(
        self, path: Path | str, loader: Callable[[], np.ndarray], xyz_loader: Callable[[], np.ndarray]
    ) -> None:
        super().__init__(path, loader)
        self._xyz_loader = xyz_loader
        self._xyz: np.ndarray | None = None

    @property
    def xyz(self) -> np.ndarray:
        """The point cloud as an H x W x 3 ``float32`` array (x, y, z; 0 where there is no point)."""
        if self._xyz is None:
            self._xyz = self._xyz_loader()
        return self._xyz


def input_path(record: Any, name: str) -> Path | None:
    """The file a record offers for input ``name``, or ``None``."""
    return next((Path(path) for key, path in getattr(record, "inputs", ()) if key == name), None)


def load_xyz(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An organised point cloud (TIFF, H x W x 3) as float32 at ``size`` (height, width), nearest neighbour."""
    import tifffile

    try:
        cloud = np.asarray(tifffile.imread(path), dtype=np.float32)
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read point cloud {path}: {exc}; replace or remove the file") from None
    if cloud.ndim != 3 or cloud.shape[-1] != 3:
        raise DatasetError(f"point cloud {path} has shape {cloud.shape}; expected H x W x 3 (x, y, z)")
    rows = (np.arange(size[0]) * cloud.shape[0] // size[0]).clip(0, cloud.shape[0] - 1)
    cols = (np.arange(size[1]) * cloud.shape[1] // size[1]).clip(0, cloud.shape[1] - 1)
    resized = np.ascontiguousarray(cloud[rows][:, cols])
    return np.nan_to_num(resized, nan=0.0, posinf=0.0, neginf=0.0)


def opaque_array_name(values: np.ndarray) -> str:
    """The name an array is handed over under: a hash of its values and shape, ``.npy``."""
    digest = hashlib.blake2b(digest_size=12, person=b"harness-input")
    digest.update(repr(values.shape).encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return f"{digest.hexdigest()}.npy"


def _read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def with_inputs(folder: Any, records: Sequence[Any], samples: Sequence[Sample], inputs: Sequence[str]) -> list[Sample]:
    """``samples`` (the images of ``records``, same order) with the requested inputs, files written before returning."""
    unknown = [name for name in inputs if name not in INPUTS]
    if unknown:
        raise HarnessError(f"unknown model input(s) {unknown}; known: {sorted(INPUTS)}")
    if XYZ not in inputs:
        return list(samples)
    extended: list[Sample] = []
    for record, sample in zip(records, samples, strict=True):
        source = input_path(record, XYZ)
        if source is None:
            raise DatasetError(f"{record.path} has no point cloud (xyz/{Path(record.path).stem}.tiff)")
        cloud = load_xyz(source, folder.size)
        file = folder.add_file(opaque_array_name(cloud), lambda target, cloud=cloud: _save_npy(target, cloud))
        extended.append(XYZSample(sample.path, sample._loader, lambda file=file: _read_npy(file)))
    return extended


def _save_npy(target: Path, values: np.ndarray) -> None:
    with target.open("wb") as handle:
        np.save(handle, values, allow_pickle=False)


def check_inputs(jobs: Sequence[Any], layout: str) -> None:
    """Before anything is fitted: every record a job hands over offers every input its model asks for."""
    for job in jobs:
        inputs = tuple(getattr(job, "inputs", ()))
        if not inputs:
            continue
        records = [r for c in (job.category, *job.evaluated) for r in c.records if r.split != "supervised"]
        for name in inputs:
            missing = [r for r in records if input_path(r, name) is None]
            if len(missing) == len(records):
                offered = ", ".join(LAYOUTS_WITH.get(name, ())) or "no built-in layout"
                raise DatasetError(
                    f"model '{job.model.label}' needs the input '{name}', which the {layout} layout does not "
                    f"offer (offered by: {offered}); choose another model or dataset"
                )
            if missing:
                raise DatasetError(
                    f"model '{job.model.label}' needs the input '{name}', missing for {len(missing)} image(s) of "
                    f"category '{job.category.name}' (first: {missing[0].path})"
                )


def inputs_digest(records: Sequence[Any], inputs: Sequence[str], record_id: Callable[[Any], str]) -> str:
    """A content hash of the input files of ``records`` (for the cache key of a model that reads them)."""
    digest = hashlib.blake2b(digest_size=16)
    for record in sorted(records, key=record_id):
        for name in sorted(inputs):
            path = input_path(record, name)
            digest.update(f"{record_id(record)}|{name}|".encode())
            digest.update(path.read_bytes() if path is not None and path.is_file() else b"missing")
    return digest.hexdigest()
