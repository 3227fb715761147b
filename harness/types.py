"""The objects a detector exchanges with the harness: samples in, scores out.

This is the public plugin contract (see README, "Writing a plugin"). A detector only ever
sees :class:`Sample` objects, which carry an image and a path and no label: ground truth
is joined to the scores by the harness after scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


class Sample:
    """One image handed to a detector: ``.image`` (H x W x 3 uint8, loaded on access) and ``.path``.

    There is deliberately no label, defect type or mask here.
    """

    __slots__ = ("_image", "_loader", "path")

    def __init__(self, path: Path | str, loader: Callable[[], np.ndarray]) -> None:
        self.path = Path(path)
        self._loader = loader
        self._image: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        """The image as an H x W x 3 ``uint8`` array, loaded (and resized) on first access."""
        if self._image is None:
            self._image = self._loader()
        return self._image

    def __repr__(self) -> str:
        return f"Sample({self.path.name!r})"


class LabelledSample(Sample):
    """A defective training image for *supervised* detectors only: adds ``.mask`` and ``.defect_type``.

    The harness hands these to a detector only when the detector declares ``supervised = True``
    and the protocol declares ``supervision:``; those images are then left out of every model's
    evaluation.
    """

    __slots__ = ("_mask", "_mask_loader", "defect_type")

    def __init__(
        self,
        path: Path | str,
        loader: Callable[[], np.ndarray],
        mask_loader: Callable[[], np.ndarray],
        defect_type: str,
    ) -> None:
        super().__init__(path, loader)
        self._mask_loader = mask_loader
        self._mask: np.ndarray | None = None
        self.defect_type = defect_type

    @property
    def mask(self) -> np.ndarray:
        """The defect's pixel mask (H x W bool) at the image size; all False when the dataset has none."""
        if self._mask is None:
            self._mask = self._mask_loader()
        return self._mask


@dataclass(frozen=True)
class Scores:
    """What a detector returns for N samples: higher means more anomalous.

    Attributes:
        image: shape (N,), one finite score per sample, in the order given.
        maps: shape (N, H, W) anomaly maps at the input image size, or ``None`` when the
            detector only scores whole images.

    """

    image: np.ndarray
    maps: np.ndarray | None = None

    def __post_init__(self) -> None:
        image = np.asarray(self.image, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "image", image)
        if self.maps is not None:
            maps = np.asarray(self.maps, dtype=np.float32)
            if maps.ndim == 4 and maps.shape[1] == 1:
                maps = maps[:, 0]
            if maps.ndim != 3 or maps.shape[0] != image.shape[0]:
                msg = f"Expected maps of shape (N, H, W) with N={image.shape[0]}, but got {maps.shape}"
                raise ValueError(msg)
            object.__setattr__(self, "maps", maps)


@runtime_checkable
class Detector(Protocol):
    """An anomaly detector: fitted on normal samples, then scores samples.

    Optional attributes the harness reads when present: ``name``, ``weights`` (how the
    backbone was initialised: "pretrained", "local file: NAME", "random-init"),
    ``parameters`` (int), ``torch_module`` (for size and GMAC), ``input_size`` ((H, W) the
    torch module takes when it resizes inputs itself, for GMAC), ``device``,
    ``shared_fit_seconds`` (set by a fit that loaded one trained earlier for a sibling model:
    the training time, reported as the fit time with a note), and
    ``supervised``: when True, ``fit`` is also given ``anomalies=`` (a list of
    :class:`LabelledSample`), the labelled defects a protocol's ``supervision:`` sets aside.
    """

    def fit(self, samples: Sequence[Sample]) -> Any:
        """Learn normality from ``samples`` (all defect-free training images)."""

    def score(self, samples: Sequence[Sample]) -> Scores:
        """Score ``samples``; return one image score per sample and optional maps."""


DetectorFactory = Callable[..., Detector]
"""A callable that builds a detector from the protocol's model ``options`` (as keywords)."""
