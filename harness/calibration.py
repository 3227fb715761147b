"""Threshold calibrators: where a decision threshold comes from.

An image is called anomalous when ``score >= threshold``. Two kinds of calibrator exist:

* deployable ones (``oracle = False``) see only scores of held-out *normal training* images:
  ``kde`` (paper 000), ``quantile`` and ``conformal`` (split-conformal, target false-positive rate);
  a threshold that lands on a score two or more held-out images share goes strictly above that
  tie (:func:`above_ties`), and the result row says so (``threshold_note``);
* oracles (``oracle = True``) read test labels: ``test_f1_oracle`` and ``test_youden_oracle``.
  They exist only as labelled references for what test-set tuning would report.

The harness builds :class:`CalibrationData` without any test data for non-oracle
calibrators, so the leakage guard is structural, not a convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness import hookimpl
from harness.calibration_options import ConformalOptions, KDEOptions, NoOptions, QuantileOptions
from harness.errors import HarnessError


@dataclass(frozen=True)
class CalibrationData:
    """The scores a calibrator may look at.

    Attributes:
        holdout_scores: scores of held-out defect-free training images (never used to fit).
        test_scores: test image scores; ``None`` unless the calibrator is an oracle.
        test_labels: 1 = anomalous; ``None`` unless the calibrator is an oracle.

    """

    holdout_scores: np.ndarray
    test_scores: np.ndarray | None = None
    test_labels: np.ndarray | None = None


class Calibrator(Protocol):
    """Turns scores into one threshold."""

    oracle: bool

    def threshold(self, data: CalibrationData) -> float:
        """The decision threshold (anomalous when ``score >= threshold``)."""


def _require_holdout(data: CalibrationData, name: str) -> np.ndarray:
    scores = np.asarray(data.holdout_scores, dtype=np.float64)
    if scores.size == 0:
        raise HarnessError(f"calibration '{name}' needs held-out normal images; set holdout_fraction above 0")
    return scores


def above_ties(threshold: float, holdout: np.ndarray) -> float:
    """``threshold``, moved just above the held-out score it lands on when two or more images share it.

    An image is anomalous when ``score >= threshold``; a threshold equal to a tied held-out score
    (e.g. a detector that gives most normals exactly 0) would flag every test image with that
    score, so it is placed strictly above the tie (``np.nextafter``): the tied images count as
    normal, as the held-out normals that produced the tie are.
    """
    if np.count_nonzero(holdout == threshold) >= 2:
        return float(np.nextafter(threshold, np.inf))
    return float(threshold)


def tie_note(threshold: float, holdout: np.ndarray) -> str:
    """A note for the result row when ``threshold`` sits just above tied held-out scores, else ""."""
    if not np.isfinite(threshold):
        return ""
    below = np.nextafter(threshold, -np.inf)
    tied = int(np.count_nonzero(np.asarray(holdout) == below))
    if tied < 2:
        return ""
    return f"threshold placed just above {tied} tied held-out scores ({below:.6g}), so the tie counts as normal"


def _require_test(data: CalibrationData) -> tuple[np.ndarray, np.ndarray]:
    if data.test_scores is None or data.test_labels is None:
        raise HarnessError("an oracle calibration was given no test labels")
    labels = np.asarray(data.test_labels)
    if labels.min() == labels.max():
        raise HarnessError("an oracle calibration needs both normal and anomalous test images")
    return np.asarray(data.test_scores, dtype=np.float64), labels.astype(np.int64)


def operating_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct threshold (descending) with the true and false positives of ``score >= t``."""
    order = np.argsort(-scores, kind="mergesort")
    ordered, hits = scores[order], labels[order]
    true_positives = np.cumsum(hits)
    false_positives = np.arange(1, hits.size + 1) - true_positives
    last = np.r_[np.flatnonzero(np.diff(ordered)), ordered.size - 1]  # the last of each run of equal scores
    return ordered[last], true_positives[last], false_positives[last]


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold of highest F1; among equals the lowest, as scikit-learn's PR curve gives it.

    Vectorised (no per-call validation) so that thousands of draws calibrate in milliseconds;
    the unit tests hold it equal to ``sklearn.metrics.precision_recall_curve``.
    """
    thresholds, tp, fp = operating_points(scores, labels)
    f1 = 2 * tp / (tp + fp + labels.sum())
    return float(thresholds[f1.size - 1 - int(np.argmax(f1[::-1]))])


def youden_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold of highest TPR - FPR; among equals the highest, as ``sklearn.metrics.roc_curve``."""
    thresholds, tp, fp = operating_points(scores, labels)
    positives = labels.sum()
    youden = tp / positives - fp / (labels.size - positives)
    return float(thresholds[int(np.argmax(youden))])


class TestF1Oracle:
    """The threshold that maximises F1 on the test set (oracle: reads test labels)."""

    oracle = True
    options_model = NoOptions

    def threshold(self, data: CalibrationData) -> float:
        """Best-F1 threshold over all distinct test scores."""
        return best_f1_threshold(*_require_test(data))


class TestYoudenOracle:
    """The AUROC-optimal (Youden's J = TPR - FPR) threshold on the test set (oracle)."""

    oracle = True
    options_model = NoOptions

    def threshold(self, data: CalibrationData) -> float:
        """Threshold maximising TPR - FPR; ties go to the highest threshold."""
        return youden_threshold(*_require_test(data))


class KDEPercentile:
    """Paper 000: a Gaussian KDE of held-out normal scores; threshold at its ``percentile``.

    The percentile is taken of the smooth KDE distribution (its CDF inverted exactly), not of
    the raw scores. ``bandwidth`` is scipy's ``bw_method``: "scott", "silverman" or a factor.
    """

    oracle = False
    needs_holdout = True
    options_model = KDEOptions

    def __init__(self, percentile: float = 97.5, bandwidth: str | float = "scott") -> None:
        if not 0 < percentile < 100:
            raise HarnessError(f"kde percentile must be in (0, 100), got {percentile}")
        self.percentile = float(percentile)
        self.bandwidth = bandwidth

    def threshold(self, data: CalibrationData) -> float:
        """The ``percentile`` of the KDE fitted on held-out normal scores."""
        from scipy.optimize import brentq
        from scipy.special import ndtr
        from scipy.stats import gaussian_kde

        scores = _require_holdout(data, "kde")
        if scores.size < 2 or np.ptp(scores) == 0:
            return above_ties(float(scores.max()), scores)  # a point mass: the KDE degenerates to it
        kde = gaussian_kde(scores, bw_method=self.bandwidth)
        sigma = float(np.sqrt(kde.covariance[0, 0]))
        target = self.percentile / 100

        def cdf_gap(x: float) -> float:
            return float(np.mean(ndtr((x - scores) / sigma))) - target

        low, high = scores.min() - 10 * sigma, scores.max() + 10 * sigma
        return above_ties(float(brentq(cdf_gap, low, high, xtol=1e-12 * max(1.0, abs(high)))), scores)


class EmpiricalQuantile:
    """The ``percentile`` of the held-out normal scores themselves (linear interpolation)."""

    oracle = False
    needs_holdout = True
    options_model = QuantileOptions

    def __init__(self, percentile: float = 97.5) -> None:
        if not 0 < percentile <= 100:
            raise HarnessError(f"quantile percentile must be in (0, 100], got {percentile}")
        self.percentile = float(percentile)

    def threshold(self, data: CalibrationData) -> float:
        """``np.percentile`` of held-out normal scores, strictly above a tie it lands on."""
        scores = _require_holdout(data, "quantile")
        return above_ties(float(np.percentile(scores, self.percentile)), scores)


class SplitConformal:
    """Split-conformal threshold on held-out normals with a guaranteed false-positive rate.

    With n held-out normal scores, an image is flagged when its conformal p-value
    ``(1 + #{holdout >= score}) / (n + 1)`` is at most ``alpha``; for exchangeable normal
    images this keeps the expected false-positive rate at or below ``alpha``. The threshold
    is therefore just above the ``ceil((1 - alpha)(n + 1))``-th smallest held-out score.
    """

    oracle = False
    needs_holdout = True
    options_model = ConformalOptions

    def __init__(self, alpha: float = 0.05) -> None:
        if not 0 < alpha < 1:
            raise HarnessError(f"conformal alpha (the target false-positive rate) must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)

    def threshold(self, data: CalibrationData) -> float:
        """Just above the conformal quantile of held-out normal scores (``inf`` if n is too small)."""
        scores = np.sort(_require_holdout(data, "conformal"))
        rank = int(np.ceil((1 - self.alpha) * (scores.size + 1)))
        if rank > scores.size:  # too few normals to guarantee alpha: flag nothing rather than break the promise
            return float("inf")
        return float(np.nextafter(scores[rank - 1], np.inf))


def calibration_data(
    calibrator: Calibrator, holdout: np.ndarray, test_scores: np.ndarray, test_labels: np.ndarray
) -> CalibrationData:
    """What ``calibrator`` may see: test data only for oracles (the leakage guard)."""
    if getattr(calibrator, "oracle", False):
        return CalibrationData(holdout, test_scores, test_labels)
    return CalibrationData(holdout)


@hookimpl
def harness_calibrations() -> dict[str, object]:
    """The built-in calibrators."""
    return {
        "test_f1_oracle": TestF1Oracle,
        "test_youden_oracle": TestYoudenOracle,
        "kde": KDEPercentile,
        "quantile": EmpiricalQuantile,
        "conformal": SplitConformal,
    }
