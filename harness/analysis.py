"""The API for protocol-kind authors: what a kind (an :class:`AnalysisSpec`) builds on.

Public, like :mod:`harness` itself: the in-house paradigm kinds (plugins/harness_paradigms) import
from here and from ``harness`` only, so a third party's kind can do everything they do. Every name
is imported on first use: a plugin importing one name pays only for that name's module. ::

    from harness.analysis import AnalysisSpec, successful, threshold_metrics
"""

from __future__ import annotations

from harness.lazy import lazy_names

_NAMES = {
    "harness.analyses.base": (
        "AnalysisContext AnalysisResult AnalysisSpec CalibrationSpec FigureRecord JobData restrict successful "
        "without_supervision_images"
    ),
    "harness.analyses.common": (
        "Background SLOW_PIXEL_METRICS cached_pixel_metrics job_rng pending_pixel_metrics pixel_metric_values "
        "pixel_metrics_beside reference_calibration slug thresholds_of"
    ),
    "harness.analyses.extras": "analysis_extras analysis_prepare",
    "harness.calibration": "CalibrationData best_f1_threshold tie_note youden_threshold",
    "harness.config.types": "Bool Distinct Float Fraction NonNegativeInt OptionsModel PositiveInt Str",
    "harness.data.base": "Category Record",
    "harness.derived_cache": "digest",
    "harness.errors": "HarnessError ProtocolError unknown_name_message",
    "harness.figures": "array_digest pyplot render_once save",
    "harness.metrics": "bootstrap_intervals_many distribution_version ranking_metrics threshold_metrics",
    "harness.report.finding": "Finding oracle_gap_finding",
    "harness.scoring": "TrainingSubset",
    "harness_paradigms.missing_type": "left_out_finding",  # moved: the only kinds that use them
    "harness_paradigms.partial_anomaly": "fraction_finding",
}
_ON_CALL = {
    *("array_digest", "pyplot", "render_once", "save", "bootstrap_intervals_many", "distribution_version"),
    *("ranking_metrics", "threshold_metrics", "fraction_finding", "left_out_finding", "oracle_gap_finding"),
}
"""Functions whose modules (matplotlib, scikit-learn) load on their first call, not on import."""

_MOVED = ("fraction_finding", "left_out_finding")
"""Findings moved into their kinds' modules (plugins/harness_paradigms): still here, with a ``DeprecationWarning``."""

__all__, __getattr__, __dir__ = lazy_names("harness.analysis", _NAMES, on_call=_ON_CALL, moved=_MOVED)
