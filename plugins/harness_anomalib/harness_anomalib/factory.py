"""Factories the plugin registers: cheap to build (no torch or anomalib import until used)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from harness import ProtocolError, unknown_name_message
from harness_anomalib import catalogue, signatures

ADAPTER_OPTIONS = {
    "weights": "a local backbone weights file or folder (offline use); implies no download",
    "pretrained": "alias of anomalib's pre_trained",
    "max_epochs": "training epochs (default: the model's own trainer argument, else 1)",
    "batch_size": "training and scoring batch size (default 8)",
    "accelerator": "Lightning accelerator: auto (default), cpu, gpu",
}


ADAPTER_TYPES: dict[str, tuple[Any, str]] = {
    "weights": (StrictStr, "a path"),
    "pretrained": (StrictBool, "true or false"),
    "max_epochs": (Annotated[StrictInt, Field(gt=0)], "a positive integer"),
    "batch_size": (Annotated[StrictInt, Field(gt=0)], "a positive integer"),
    "accelerator": (Literal["auto", "cpu", "gpu", "cuda", "mps"], "one of auto, cpu, gpu, cuda, mps"),
}


@cache
def library_versions() -> str:
    """anomalib's, torch's and timm's versions, read once per process (each read scans the installed packages)."""
    from importlib.metadata import version

    return f"anomalib {version('anomalib')}, torch {version('torch')}, timm {version('timm')}"


class AnomalibFactory:
    """Builds :class:`AnomalibDetector` for one anomalib model name."""

    preload = ("harness_anomalib.detector", "anomalib.models")
    """Imported once by the harness before it forks the jobs (``ModelSpec.preload``), not in each job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__doc__ = f"anomalib's {name} image model"

    def __call__(self, **options: Any) -> Any:
        """An :class:`~harness_anomalib.detector.AnomalibDetector` with ``options``."""
        from harness_anomalib.detector import AnomalibDetector

        return AnomalibDetector(self.name, **options)

    @property
    def version(self) -> str:
        """Versions that change this model's scores (enter the cache key)."""
        return library_versions()

    def why_unavailable(self) -> str | None:
        """Why this model cannot run here, or None."""
        return catalogue.why_unavailable(self.name)

    def default_download(self) -> str | None:
        """What this model's default options download, or None (``harness list models`` marks it)."""
        return catalogue.default_download(self.name)

    def check_options(self, options: dict[str, Any], key: str) -> None:
        """Reject option names the model class does not take, naming the closest one.

        The names come from anomalib's source (no import, milliseconds); only a class whose source
        does not say is imported.
        """
        declared = signatures.source_options(self.name)
        if declared is None:
            from harness_anomalib.detector import constructor_options

            declared = frozenset(constructor_options(self.name))
        allowed = set(declared) | set(ADAPTER_OPTIONS)
        for option in options:
            if option not in allowed:
                raise ProtocolError(
                    unknown_name_message(f"option of {self.name}", option, allowed), key=f"{key}.{option}"
                )
        self._check_values(options, key)

    def _check_values(self, options: dict[str, Any], key: str) -> None:
        """Values of the wrong type (from the class's annotations) or outside the adapter's ranges: one error each."""
        from pydantic import TypeAdapter, ValidationError

        types = {**signatures.source_option_types(self.name), **ADAPTER_TYPES}
        for option, value in options.items():
            if option not in types:  # annotated with an anomalib or torch type: anomalib checks it
                continue
            expected, text = types[option]
            try:
                TypeAdapter(expected).validate_python(value)
            except ValidationError:
                raise ProtocolError(
                    f"{self.name} option '{option}' should be {text}, got {value!r}", key=f"{key}.{option}"
                ) from None
        weights = options.get("weights")
        if weights is not None and not Path(weights).expanduser().exists():
            raise ProtocolError(f"{self.name} weights: no file or folder {weights}", key=f"{key}.weights")
