"""harness: an evaluation harness for industrial visual anomaly detection.

Public API for plugin authors: everything in ``__all__`` (and the conformance suite in
:mod:`harness.testing`); every other module is internal and may change. ::

    import harness

    @harness.hookimpl
    def harness_models():
        return {"my_detector": harness.ModelSpec(MyDetector, version="1")}

A detector has ``fit(samples)`` and ``score(samples) -> harness.Scores``; what else the harness
reads from it is a :class:`DetectorInfo`. See README ("Writing a plugin"), docs/hooks.md and
docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("harness")
"""Marker for hook implementations in plugins (``@harness.hookimpl``)."""

from harness.types import (  # noqa: E402
    Detector,
    DetectorFactory,
    DetectorInfo,
    LabelledSample,
    Sample,
    Scores,
    detector_info,
)

_LAZY = {
    "ModelSpec": "harness.contract",
    "MetricSpec": "harness.contract",
    "ReportSection": "harness.contract",
    "AnalysisSpec": "harness.analyses.base",
    "AnalysisContext": "harness.analyses.base",
    "AnalysisResult": "harness.analyses.base",
    "FigureRecord": "harness.analyses.base",
    "JobData": "harness.analyses.base",
    "HarnessError": "harness.errors",
    "ProtocolError": "harness.errors",
    "DatasetError": "harness.errors",
    "ModelError": "harness.errors",
    "unknown_name_message": "harness.errors",
    "validation_split": "harness.data.base",
    "harness_home": "harness.store",
    "ensure_generated": "harness.data.synthetic",
    "by_content": "harness.integrity",
    "write_atomic": "harness.store",
    "check_detector": "harness.testing",
    "parametrize_checks": "harness.testing",
    "ConformanceError": "harness.testing",
}
"""Public names imported on first use, so that ``import harness`` stays light and free of cycles."""

__all__ = [
    "AnalysisContext",
    "AnalysisResult",
    "AnalysisSpec",
    "ConformanceError",
    "DatasetError",
    "Detector",
    "DetectorFactory",
    "DetectorInfo",
    "FigureRecord",
    "HarnessError",
    "JobData",
    "LabelledSample",
    "MetricSpec",
    "ModelError",
    "ModelSpec",
    "ProtocolError",
    "ReportSection",
    "Sample",
    "Scores",
    "__version__",
    "by_content",
    "check_detector",
    "detector_info",
    "ensure_generated",
    "harness_home",
    "hookimpl",
    "parametrize_checks",
    "unknown_name_message",
    "validation_split",
    "write_atomic",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from harness.analyses.base import AnalysisContext, AnalysisResult, AnalysisSpec, FigureRecord, JobData
    from harness.contract import MetricSpec, ModelSpec, ReportSection
    from harness.data.base import validation_split
    from harness.errors import DatasetError, HarnessError, ModelError, ProtocolError, unknown_name_message
    from harness.integrity import by_content
    from harness.store import harness_home, write_atomic
    from harness.testing import ConformanceError, check_detector, parametrize_checks
