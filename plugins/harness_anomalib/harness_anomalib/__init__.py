"""harness plugin: every anomalib image model by name (``padim``, ``patchcore``, ``stfpm``, ...).

Example protocol entry::

    models:
      - name: padim
        options: {backbone: resnet18, pre_trained: false}   # or weights: /path/resnet18.pth

Options are the anomalib model class's keyword arguments plus ``weights``, ``max_epochs``,
``batch_size`` and ``accelerator`` (see README).
"""

from __future__ import annotations

import os

import harness
from harness_anomalib.catalogue import hub_reachable, image_model_names
from harness_anomalib.factory import AnomalibFactory

__version__ = "0.1.0"
__all__ = ["AnomalibFactory", "harness_models"]

if not hub_reachable():  # no retries against an unreachable hub (about 60 s per missing weight)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@harness.hookimpl
def harness_models() -> dict[str, AnomalibFactory]:
    """One factory per anomalib image model."""
    return {name: AnomalibFactory(name) for name in image_model_names()}
