"""The objects a detector exchanges with the harness: samples in, scores out.

This is the public plugin contract (see README, "Writing a plugin"). A detector only ever
sees :class:`Sample` objects, which carry an image and a path and no label: ground truth
is joined to the scores by the harness after scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # ``import harness`` stays free of numpy until scores are made
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
        import numpy as np

        image = np.asarray(self.image, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "image", image)
        if self.maps is not None:
            maps = np.asarray(self.maps, dtype=np.float32)
            if maps.ndim == 4 and maps.shape[1] == 1:
                maps = maps[:, 0]
            if maps.ndim != 3 or maps.shape[0] != image.shape[0]:
                raise ValueError(f"Expected maps of shape (N, H, W) with N={image.shape[0]}, but got {maps.shape}")
            object.__setattr__(self, "maps", maps)


@runtime_checkable
class Detector(Protocol):
    """An anomaly detector: fitted on normal samples, then scores samples.

    What else the harness learns about a detector (how its weights were initialised, its torch
    module, whether it is supervised, ...) is described by :class:`DetectorInfo`: set any of its
    fields as attributes of the same name, or give the detector an ``info`` attribute holding a
    :class:`DetectorInfo`. Everything optional; the harness reads them through
    :func:`detector_info` only.
    """

    def fit(self, samples: Sequence[Sample]) -> Any:
        """Learn normality from ``samples`` (all defect-free training images)."""

    def score(self, samples: Sequence[Sample]) -> Scores:
        """Score ``samples``; return one image score per sample and optional maps."""


DetectorFactory = Callable[..., Detector]
"""A callable that builds a detector from the protocol's model ``options`` (as keywords)."""


@dataclass(frozen=True)
class DetectorInfo:
    """What the harness reads from a detector besides ``fit`` and ``score`` (all optional).

    A detector declares these either as attributes of the same names (read after scoring, so a
    fit may set them) or as one ``info`` attribute holding a ``DetectorInfo``.

    Attributes:
        name: a display name (default: the detector's class name); stored in the cache entry.
        weights: how the backbone was initialised: "pretrained", "local file: NAME",
            "random-init"; a column of every result row.
        parameters: parameter count, when the detector knows it better than its torch module.
        torch_module: the ``torch.nn.Module`` behind the detector, for size on disk and GMAC.
        input_size: (H, W) the torch module takes when it resizes inputs itself, for GMAC.
        device: where it runs ("cpu", "cuda:0"); stored in the cache entry.
        shared_fit_seconds: set by a fit that loaded one trained earlier for a sibling model: the
            training time, reported as the fit time with a note.
        fit_note: what the fit chose or did that a reader of the results should know (e.g. the
            predictors MultiCore selected); shown in the rows' notes.
        supervised: when True, ``fit`` is also given ``anomalies=`` (a list of
            :class:`LabelledSample`), the labelled defects a protocol's ``supervision:`` sets aside.

    """

    name: str = ""
    weights: str = "unknown"
    parameters: int | None = None
    torch_module: Any = field(default=None, repr=False)
    input_size: tuple[int, int] | None = None
    device: str | None = None
    shared_fit_seconds: float | None = None
    fit_note: str = ""
    supervised: bool = False

    def record(self) -> dict[str, Any]:
        """What a cache entry's metadata keeps of it: weights, supervised, name, device."""
        return {"weights": self.weights, "supervised": self.supervised, "detector": self.name, "device": self.device}


def detector_info(detector: object) -> DetectorInfo:
    """The :class:`DetectorInfo` of ``detector``: the one place where the harness reads its optional attributes."""
    declared = getattr(detector, "info", None)
    if isinstance(declared, DetectorInfo):
        return replace(declared, name=declared.name or type(detector).__name__)
    parameters = getattr(detector, "parameters", None)
    input_size = getattr(detector, "input_size", None)
    shared = getattr(detector, "shared_fit_seconds", None)
    device = getattr(detector, "device", None)
    return DetectorInfo(
        name=str(getattr(detector, "name", "") or type(detector).__name__),
        weights=str(getattr(detector, "weights", "unknown")),
        parameters=parameters if isinstance(parameters, int) and not isinstance(parameters, bool) else None,
        torch_module=getattr(detector, "torch_module", None),
        input_size=(int(input_size[0]), int(input_size[1])) if input_size else None,
        device=str(device) if device is not None else None,
        shared_fit_seconds=float(shared) if shared is not None else None,
        fit_note=str(getattr(detector, "fit_note", "") or ""),
        supervised=bool(getattr(detector, "supervised", False)),
    )
