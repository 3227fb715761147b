"""Which anomalib image models exist, found on disk without importing anomalib (which costs ~10 s)."""

from __future__ import annotations

import importlib.util
import os
import socket
from functools import cache
from pathlib import Path

HUB_HOST = "huggingface.co"

NEEDS_HUB = {
    "dinomaly": "DINOv2",
    "anomaly_dino": "DINOv2",
    "inp_former": "DINOv2",
    "l2bt": "DINOv2",
    "foundad": "DINOv2",
    "cfm": "a foundation backbone",
    "super_add": "a foundation backbone",
    "anomalyvfm": "a vision foundation model",
}
"""Models whose backbone anomalib always fetches from the Hugging Face hub (no switch to skip it)."""

NEEDS_TEACHER = {
    "stfpm",
    "uflow",
    "csflow",
    "cfa",
    "uni_net",
    "uninet",
    "glass",
    "dsr",
    "supersimplenet",
    "efficient_ad",
}
"""Models with a pretrained part that ``pre_trained=false`` does not switch off."""

REQUIRED_OPTIONS = {
    "draem": "options.dtd_dir: a local folder of texture images (anomalib downloads DTD otherwise)",
    "efficient_ad": "options.imagenet_dir (a local folder with class sub-folders), teacher weights, >=256 px",
}
ALWAYS_UNAVAILABLE = {"vlm_ad": "needs a vision-language model server or API key"}


def anomalib_root() -> Path | None:
    """The installed anomalib package folder, or None when anomalib is not installed."""
    spec = importlib.util.find_spec("anomalib")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def image_model_names() -> tuple[str, ...]:
    """Snake-case names of anomalib's image models (its ``models/image`` folders)."""
    root = anomalib_root()
    if root is None:
        return ()
    folder = root / "models" / "image"
    return tuple(sorted(p.name for p in folder.iterdir() if (p / "__init__.py").is_file()))


@cache
def hub_reachable() -> bool:
    """False when offline: ``HF_HUB_OFFLINE`` is set, or the hub's host name does not resolve."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.getaddrinfo(HUB_HOST, 443)
    except OSError:
        return False
    return True


def why_unavailable(name: str) -> str | None:
    """Why ``name`` cannot run on this machine as configured, or None when it can."""
    if name in ALWAYS_UNAVAILABLE:
        return ALWAYS_UNAVAILABLE[name]
    if name == "winclip" and importlib.util.find_spec("open_clip") is None:
        return "needs the open_clip package and CLIP weights"
    if name in NEEDS_HUB and not hub_reachable():
        return f"downloads {NEEDS_HUB[name]} weights from the Hugging Face hub, which is unreachable"
    if name in REQUIRED_OPTIONS:
        return f"needs {REQUIRED_OPTIONS[name]}"
    if name in NEEDS_TEACHER and not hub_reachable():
        return "offline: its pretrained backbone must come from options.weights=FILE"
    return None


_PRETRAINED_DEFAULT = "pre_trained: bool = True"


def default_download(name: str) -> str | None:
    """What the model's default options download (shown by ``harness list models``), or None."""
    if name in NEEDS_HUB:
        return f"{NEEDS_HUB[name]} weights from the Hugging Face hub"
    if name in NEEDS_TEACHER:
        return "pretrained backbone/teacher weights"
    root = anomalib_root()
    source = root / "models" / "image" / name / "lightning_model.py" if root else None
    if source is not None and source.is_file() and _PRETRAINED_DEFAULT in source.read_text(encoding="utf-8"):
        return "ImageNet backbone weights (pre_trained: true by default; set pre_trained: false or weights: FILE)"
    return None
