"""harness plugin: ultralytics YOLO detectors by name, trained as supervised anomaly detectors.

Example protocol entry (the protocol must declare how many labelled anomalies it may use)::

    supervision: {anomaly_train_fraction: 0.5}
    models:
      - name: yolov8n
        options: {epochs: 30}          # or weights: /path/to/yolov8n.pt

Options: ``weights`` (a .pt file; default: train from the model YAML, random init), ``epochs``
(50), ``batch`` (8), ``imgsz`` (default: the image size rounded up to 32), ``device`` (auto),
``conf`` (0.001), ``seed`` (default: the protocol's seed for the job; ultralytics trains with it and
``deterministic=True``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import harness

__version__ = "0.1.0"

MODELS = (
    "yolov3u",
    "yolov5n",
    "yolov5s",
    "yolov8n",
    "yolov8s",
    "yolov9t",
    "yolov9s",
    "yolov10n",
    "yolov10s",
    "yolo11n",
    "yolo11s",
    "yolo12n",
)
"""Model YAML names shipped by ultralytics (``<name>.yaml``); any other YAML or .pt goes through ``weights``."""


@cache
def library_versions() -> str:
    """The versions of ultralytics and torch, read once per process (each read scans the installed packages)."""
    from importlib.metadata import version

    return f"ultralytics {version('ultralytics')}, torch {version('torch')}"


class YoloOptions(BaseModel):
    """The options a protocol may give a YOLO model, checked before anything is fitted (no ultralytics import)."""

    model_config = ConfigDict(extra="forbid")

    weights: str | None = Field(None, description="a .pt file or another model YAML; default: the name's YAML")
    epochs: int = Field(50, ge=1, description="training epochs")
    batch: int = Field(8, ge=1, description="training batch size")
    imgsz: int | None = Field(None, description="training and scoring size; default: image size up to 32")
    device: str = Field("auto", description="auto, cpu, or a CUDA device such as 0")
    conf: float = Field(0.001, ge=0, le=1, description="the lowest box confidence kept")
    seed: int | None = Field(None, description="training seed; default: the job's seed")


class YoloFactory:
    """Builds a :class:`~harness_yolo.detector.YoloDetector` for one model YAML."""

    supervised = True
    options_model = YoloOptions

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, **options: Any) -> Any:
        """A detector with ``options``."""
        from harness_yolo.detector import YoloDetector

        return YoloDetector(self.name, **options)

    @property
    def version(self) -> str:
        """Ultralytics and torch versions (enter the cache key)."""
        return library_versions()


@harness.hookimpl
def harness_models() -> dict[str, YoloFactory]:
    """One factory per YOLO model name."""
    return {name: YoloFactory(name) for name in MODELS}
