"""harness plugin: PUAD (paper 003) and its two parts as separate rows.

Models: ``puad`` (z-normalised EfficientAD score + z-normalised Mahalanobis distance),
``puad_efficientad`` (EfficientAD-S alone) and ``puad_mahalanobis`` (the Mahalanobis distance
on globally pooled student features alone). All three share one fit per training set and seed
(see :mod:`harness_puad.detector` for the options).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import harness

__version__ = "0.1.0"


def _puad(mode: str, **options: Any) -> Any:
    from harness_puad.detector import PUAD

    return PUAD(mode=mode, **options)


@harness.hookimpl
def harness_models() -> dict[str, Any]:
    """PUAD and its picturable (EfficientAD) and unpicturable (Mahalanobis) parts."""
    return {
        "puad": partial(_puad, "puad"),
        "puad_efficientad": partial(_puad, "efficientad"),
        "puad_mahalanobis": partial(_puad, "mahalanobis"),
    }
