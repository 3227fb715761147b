"""Helpers shared by analyses: stable seeds, score groups, thresholds of a job."""

from __future__ import annotations

import re
import zlib

import numpy as np

from harness.analyses.base import AnalysisContext, CalibrationSpec, JobData
from harness.calibration import calibration_data


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def job_rng(context: AnalysisContext, job: JobData, *parts: object) -> np.random.Generator:
    """A generator seeded by the protocol seed, the job and ``parts``: same draws on every rerun."""
    text = "|".join(map(str, (job.model, job.category, job.seed, *parts)))
    return np.random.default_rng([context.seed, zlib.crc32(text.encode())])


def thresholds_of(job: JobData, context: AnalysisContext) -> dict[str, float]:
    """Each calibration's threshold on the job's own test set (oracles) or held-out normals."""
    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    return {
        spec.label: spec.calibrator.threshold(calibration_data(spec.calibrator, job.holdout, scores, labels))
        for spec in context.calibrations
    }


def reference_calibration(context: AnalysisContext) -> CalibrationSpec | None:
    """The deployable calibration the review lists use: ``kde`` if present, else the first non-oracle."""
    deployable = [spec for spec in context.calibrations if not spec.oracle]
    return next((s for s in deployable if s.name == "kde"), deployable[0] if deployable else None)
