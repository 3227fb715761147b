"""Backbone weights from a local file, for offline users (anomalib's own download otherwise)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from harness import ModelError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def resolve_weights_file(path: str | Path, backbone: str | None) -> Path:
    """A weights file, or the file for ``backbone`` inside a weights folder."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        named = [p for p in candidates if backbone and p.stem.split(".")[0] == backbone.split(".")[0]]
        if named:
            return named[0]
        if len(candidates) == 1:
            return candidates[0]
        raise ModelError(
            f"options.weights folder {path} has no file named after backbone '{backbone}' "
            f"(found: {[p.name for p in candidates] or 'none'}); name it {backbone}.pth or give the file"
        )
    raise ModelError(f"options.weights: {path} does not exist; give a .pth/.safetensors file or a folder of them")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file (plain, or nested under "state_dict"/"model")."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read weights file {path}: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds no state dict")
    return state


def load_into_backbones(model: torch.nn.Module, path: Path) -> int:
    """Load ``path`` into every timm feature extractor of ``model``; return the tensors matched."""
    from anomalib.models.components.feature_extractors import TimmFeatureExtractor

    state = read_state_dict(path)
    extractors = [m for m in model.modules() if isinstance(m, TimmFeatureExtractor)]
    if not extractors:
        raise ModelError(f"{type(model).__name__} has no timm backbone to load {path.name} into; drop options.weights")
    matched = 0
    for extractor in extractors:
        target = extractor.feature_extractor
        target.load_state_dict(state, strict=False)
        matched += len(set(state) & set(target.state_dict()))
    if matched == 0:
        sample = ", ".join(list(state)[:3])
        raise ModelError(
            f"no tensor of {path.name} matches the backbone of {type(model).__name__} "
            f"(file keys start: {sample}); is it the right architecture?"
        )
    return matched


@contextlib.contextmanager
def timm_without_download() -> Iterator[None]:
    """Build models whose backbone anomalib always asks timm to download, without the download.

    Used only when a local weights file will be loaded right after construction.
    """
    import timm

    original = timm.create_model

    def create_model(*args: Any, **kwargs: Any) -> Any:
        kwargs["pretrained"] = False
        return original(*args, **kwargs)

    timm.create_model = create_model
    try:
        yield
    finally:
        timm.create_model = original
