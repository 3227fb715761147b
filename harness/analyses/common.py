"""Helpers shared by analyses: stable seeds, score groups, thresholds of a job."""

from __future__ import annotations

import re
import zlib

import numpy as np

from harness.analyses.base import AnalysisContext, CalibrationSpec, JobData
from harness.calibration import calibration_data
from harness.derived_cache import digest, floats, is_number_map


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def job_rng(context: AnalysisContext, job: JobData, *parts: object) -> np.random.Generator:
    """A generator seeded by the protocol seed, the job and ``parts``: same draws on every rerun."""
    text = "|".join(map(str, (job.model, job.category, job.seed, *parts)))
    return np.random.default_rng([context.seed, zlib.crc32(text.encode())])


def thresholds_of(job: JobData, context: AnalysisContext) -> dict[str, float]:
    """Each calibration's threshold on the job's own test set (oracles) or held-out normals.

    With a derived cache, the built-in calibrators' thresholds are read back when the same
    calibrators saw the same scores before (no KDE refitted, scipy not imported).
    """
    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    key = _thresholds_key(job, context, scores, labels)
    stored = job.derived.get_value(key) if key else None
    labels_of = [spec.label for spec in context.calibrations]
    if is_number_map(stored, labels_of):
        return {label: floats(stored)[label] for label in labels_of}
    thresholds = {
        spec.label: spec.calibrator.threshold(calibration_data(spec.calibrator, job.holdout, scores, labels))
        for spec in context.calibrations
    }
    if key:
        job.derived.put_value(key, thresholds)
    return thresholds


CALIBRATION_VERSION = 1
"""Bumped when a built-in calibrator's threshold changes: part of the key of cached thresholds."""


def _thresholds_key(job: JobData, context: AnalysisContext, scores: np.ndarray, labels: np.ndarray) -> str | None:
    """The derived-cache key of a job's thresholds, or ``None`` (no cache, or a calibrator from a plugin)."""
    calibrators = [spec.calibrator for spec in context.calibrations]
    if job.derived is None or not all(type(c).__module__ == "harness.calibration" for c in calibrators):
        return None
    from harness.figures import array_digest
    from harness.metrics import distribution_version

    described = [[spec.label, type(spec.calibrator).__name__, vars(spec.calibrator)] for spec in context.calibrations]
    data = array_digest(job.holdout, scores, labels)
    return digest("thresholds", CALIBRATION_VERSION, distribution_version("scipy"), described, data)


def reference_calibration(context: AnalysisContext) -> CalibrationSpec | None:
    """The deployable calibration the review lists use: ``kde`` if present, else the first non-oracle."""
    deployable = [spec for spec in context.calibrations if not spec.oracle]
    return next((s for s in deployable if s.name == "kde"), deployable[0] if deployable else None)
