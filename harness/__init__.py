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

from typing import TYPE_CHECKING

import pluggy

__version__ = "0.2.0"

hookimpl = pluggy.HookimplMarker("harness")
"""Marker for hook implementations in plugins (``@harness.hookimpl``)."""

from harness.lazy import lazy_names  # noqa: E402
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
    "harness.contract": "MetricSpec ModelSpec ReportSection",
    "harness.analyses.base": "AnalysisContext AnalysisResult AnalysisSpec FigureRecord JobData",
    "harness.errors": "DatasetError HarnessError ModelError ProtocolError unknown_name_message",
    "harness.data.base": "validation_split",
    "harness.store": "harness_home write_atomic",
    "harness.data.synthetic": "ensure_generated",
    "harness.integrity": "by_content",
    "harness.testing": "ConformanceError check_detector parametrize_checks",
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


_LAZY_NAMES, __getattr__, __dir__ = lazy_names("harness", _LAZY)


if TYPE_CHECKING:
    from harness.analyses.base import AnalysisContext, AnalysisResult, AnalysisSpec, FigureRecord, JobData
    from harness.contract import MetricSpec, ModelSpec, ReportSection
    from harness.data.base import validation_split
    from harness.errors import DatasetError, HarnessError, ModelError, ProtocolError, unknown_name_message
    from harness.integrity import by_content
    from harness.store import harness_home, write_atomic
    from harness.testing import ConformanceError, check_detector, parametrize_checks
