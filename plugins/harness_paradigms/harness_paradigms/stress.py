"""Vectorised pieces shared by the stress protocols: re-calibrate an oracle on a subset, evaluate on all."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.analysis import AnalysisContext, CalibrationSpec, best_f1_threshold, youden_threshold

ORACLE_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "test_f1_oracle": best_f1_threshold,
    "test_youden_oracle": youden_threshold,
}


def oracle_function(spec: CalibrationSpec) -> Callable[[np.ndarray, np.ndarray], float]:
    """The threshold function of an oracle calibration, called on (scores, labels) of any subset."""
    if spec.name in ORACLE_FUNCTIONS:
        return ORACLE_FUNCTIONS[spec.name]
    from harness.analysis import CalibrationData

    return lambda scores, labels: spec.calibrator.threshold(CalibrationData(np.zeros(0), scores, labels))


def split_specs(context: AnalysisContext) -> tuple[list[CalibrationSpec], list[CalibrationSpec]]:
    """(oracles, deployable) calibrations of the protocol."""
    return ([s for s in context.calibrations if s.oracle], [s for s in context.calibrations if not s.oracle])


def calibrate_on(normal: np.ndarray, anomalous: np.ndarray, threshold_of: Callable) -> float:
    """The oracle threshold from all ``normal`` test scores plus the ``anomalous`` ones given."""
    scores = np.concatenate([normal, anomalous])
    labels = np.r_[np.zeros(normal.size, dtype=np.int64), np.ones(anomalous.size, dtype=np.int64)]
    return threshold_of(scores, labels)
