"""harness plugin: PUAD (paper 003) and its two parts as separate rows.

Models: ``puad`` (z-normalised EfficientAD score + z-normalised Mahalanobis distance),
``puad_efficientad`` (EfficientAD-S alone) and ``puad_mahalanobis`` (the Mahalanobis distance
on globally pooled student features alone). All three share one fit per training set and seed
(options: :class:`harness_puad.options.PUADOptions`, checked when the protocol is loaded).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import harness
from harness_puad.options import PUADOptions

__version__ = "0.1.0"


def _puad(mode: str, **options: Any) -> Any:
    from harness_puad.detector import PUAD

    return PUAD(mode=mode, **options)


@cache
def why_unavailable() -> str | None:
    """Why the default options cannot run here (anomalib downloads the teacher and ImageNette), or None."""
    import socket

    try:
        socket.getaddrinfo("github.com", 443)
    except OSError:
        return (
            "the default teacher and ImageNette are downloads; give options.teacher_weights (or pretrained: false) "
            "and options.imagenet_dir (or penalty: false)"
        )
    return None


def _factory(mode: str) -> Any:
    factory = partial(_puad, mode)
    factory.why_unavailable = why_unavailable  # type: ignore[attr-defined]
    factory.options_model = PUADOptions  # type: ignore[attr-defined]
    return factory


@harness.hookimpl
def harness_models() -> dict[str, Any]:
    """PUAD and its picturable (EfficientAD) and unpicturable (Mahalanobis) parts."""
    return {
        "puad": _factory("puad"),
        "puad_efficientad": _factory("efficientad"),
        "puad_mahalanobis": _factory("mahalanobis"),
    }
