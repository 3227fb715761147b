"""harness plugin: MultiCore (paper 002) and its PatchCore+ predictors.

Models: ``multicore`` (``n_predictors``, default 2), ``mc2``, ``mc4``, ``mc8`` (2, 4, 8 predictors,
fixed by the name) and ``patchcore_plus`` (one predictor: ``patch_size``, ``stride``, ``distance``).
Their options (typed, with defaults and one-line descriptions, checked by ``harness validate``)
are in :mod:`harness_multicore.options`: ``candidates`` (default paper 002's 48: patch size
[3, 1, 5, 7] x stride [1, 3, 5] x distance [euclidean, cosine, minkowski3, manhattan]),
``coreset_size`` (25,000), ``backbone`` (wide_resnet50_2), ``pre_trained`` (true) / ``weights``,
``reference``, ``ssa`` (SSA parameters), ``ssa_share`` (0.2), ``fusion_epochs`` (300),
``fusion_lr`` (1e-5), ``fusion_momentum`` (0.999), ``seed``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import harness
from harness_multicore.options import FixedMultiCoreOptions, MultiCoreOptions, PatchCorePlusOptions

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
def harness_models() -> dict[str, harness.ModelSpec]:
    """MultiCore variants and the single PatchCore+ predictor, each with its options model."""
    fixed = {
        f"mc{k}": harness.ModelSpec(
            partial(_multicore, k),
            options=FixedMultiCoreOptions,
            description=f"MultiCore with {k} predictors (MC{k}, paper 002)",
        )
        for k in (2, 4, 8)
    }
    return {
        "multicore": harness.ModelSpec(
            _multicore, options=MultiCoreOptions, description="MultiCore (paper 002): MC-k, k = n_predictors"
        ),
        **fixed,
        "patchcore_plus": harness.ModelSpec(
            _patchcore_plus, options=PatchCorePlusOptions, description="PatchCore+ (paper 002): one predictor"
        ),
    }
