"""Make ultralytics run without network: no DNS probe, no font download, no auto-install, no hub."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path


def prepare() -> None:
    """Set ultralytics' environment before it is imported (idempotent)."""
    if os.environ.get("HARNESS_YOLO_READY"):
        return
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    config = Path(os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="harness-yolo-")))
    font = config / "Ultralytics" / "Arial.ttf"
    if not font.exists():  # ultralytics fetches Arial.ttf for its dataset checks even with plots off
        import matplotlib

        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", font)
    os.environ["HARNESS_YOLO_READY"] = "1"


def quiet() -> None:
    """Keep ultralytics' training chatter out of the harness's output."""
    from ultralytics.utils import LOGGER

    LOGGER.setLevel(logging.ERROR)
