"""harness plugin: MultiCore (paper 002) and its PatchCore+ predictors.

Models: ``multicore`` (options below), ``mc2``, ``mc4``, ``mc8`` (2, 4, 8 predictors) and
``patchcore_plus`` (one predictor: ``patch_size``, ``stride``, ``distance``, ``coreset_size``).
MultiCore options: ``n_predictors``, ``candidates`` (default paper 002's 48: patch size
[3, 1, 5, 7] x stride [1, 3, 5] x distance [euclidean, cosine, minkowski3, manhattan]),
``coreset_size`` (1000), ``backbone`` (resnet18), ``pre_trained`` / ``weights``, ``ssa``
(SSA parameters: buckets, per_bucket, per_count, regular, noise_sigma, ...), ``ssa_share``
(0.2 of the training normals become synthetic-anomaly bases), ``fusion_epochs`` (300),
``fusion_lr`` (1e-5), ``fusion_momentum`` (0.999), ``seed``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import harness

__version__ = "0.1.0"


def _multicore(n_predictors: int | None = None, **options: Any) -> Any:
    from harness_multicore.multicore import MultiCore

    if n_predictors is not None:
        options["n_predictors"] = n_predictors
    return MultiCore(**options)


def _patchcore_plus(**options: Any) -> Any:
    from harness_multicore.multicore import PatchCorePlusDetector

    return PatchCorePlusDetector(**options)


@harness.hookimpl
def harness_models() -> dict[str, Any]:
    """MultiCore variants and the single PatchCore+ predictor."""
    return {
        "multicore": _multicore,
        "mc2": partial(_multicore, 2),
        "mc4": partial(_multicore, 4),
        "mc8": partial(_multicore, 8),
        "patchcore_plus": _patchcore_plus,
    }
