"""The API for protocol-kind authors: what a kind (an :class:`AnalysisSpec`) builds on.

Public, like :mod:`harness` itself: the in-house paradigm kinds (plugins/harness_paradigms) import
from here and from ``harness`` only, so a third party's kind can do everything they do. Every name
is imported on first use: a plugin importing one name pays only for that name's module. ::

    from harness.analysis import AnalysisSpec, successful, threshold_metrics
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "harness.analyses.base": (
        "AnalysisContext AnalysisResult AnalysisSpec CalibrationSpec FigureRecord JobData restrict successful "
        "without_supervision_images"
    ),
    "harness.analyses.common": "job_rng reference_calibration slug thresholds_of",
    "harness.calibration": "CalibrationData best_f1_threshold tie_note youden_threshold",
    "harness.config.types": "Bool Float Fraction NonNegativeInt OptionsModel PositiveInt Str",
    "harness.data.base": "Category Record",
    "harness.errors": "HarnessError ProtocolError unknown_name_message",
    "harness.figures": "save",
    "harness.metrics": "ranking_metrics threshold_metrics",
    "harness.report.finding": "Finding fraction_finding left_out_finding",
    "harness.scoring": "TrainingSubset",
}
_LAZY = {name: module for module, names in _NAMES.items() for name in names.split()}

_ON_CALL = {"save", "ranking_metrics", "threshold_metrics", "fraction_finding", "left_out_finding"}
"""Functions whose modules (matplotlib, scikit-learn) load on their first call, not on import."""

__all__ = sorted(_LAZY)


def _on_call(module: str, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{module}.{name}``, imported on the first call."
    return call


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.analysis' has no attribute {name!r}")
    value = _on_call(module, name) if name in _ON_CALL else getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
