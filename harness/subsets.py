"""The continual contract the core keeps (:func:`teach`); the training subsets moved to harness_paradigms.

``harness.subsets.FewShotSubset`` and its siblings still resolve, with a DeprecationWarning:
import them from ``harness_paradigms.subsets`` (plugins/harness_paradigms).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from typing import Any

MOVED = ("FewShotSubset", "ContaminatedSubset", "UnionSubset", "contaminant_count", "supports_continual")


def teach(detector: Any, stages: Sequence[Sequence[Any]]) -> None:
    """The continual contract: ``fit`` on the first stage, then each later stage added to what was learnt.

    A later stage goes to ``fit_more(samples)`` when the detector has it, else to ``fit(samples)``
    again (a model registered as continual promises that a second ``fit`` adds to the first).
    """
    first, *rest = stages
    detector.fit(first)
    more = getattr(detector, "fit_more", None) or detector.fit
    for samples in rest:
        more(samples)


def __getattr__(name: str) -> Any:
    if name not in MOVED:
        raise AttributeError(f"module 'harness.subsets' has no attribute {name!r}")
    warnings.warn(f"harness.subsets.{name} moved to harness_paradigms.subsets", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("harness_paradigms.subsets"), name)
