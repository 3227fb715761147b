"""harness: an evaluation harness for industrial visual anomaly detection.

Public API for plugin authors::

    import harness

    @harness.hookimpl
    def harness_models():
        return {"my_detector": MyDetector}

A detector has ``fit(samples)`` and ``score(samples) -> harness.Scores``; see README.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("harness")
"""Marker for hook implementations in plugins (``@harness.hookimpl``)."""

from harness.types import Detector, DetectorFactory, LabelledSample, Sample, Scores  # noqa: E402

__all__ = ["Detector", "DetectorFactory", "LabelledSample", "Sample", "Scores", "__version__", "hookimpl"]
