"""Image-level metrics, each a plain function of (scores, labels); the directions of every result column.

Threshold metrics in scikit-learn's float64 arithmetic, AUROC and AP by scikit-learn, percentile
bootstrap intervals of recall and F1. The pixel-level metrics (pixel AUROC and AUPR, AUPRO, PRO,
PL) and the thresholded segmentation are the in-house plugin ``plugins/harness_pixel``, registered
through ``harness_metrics`` like any plugin's; the held-out pixel threshold they share with
``harness export`` stays here (:func:`holdout_pixel_threshold`, public as
``harness.runs.holdout_pixel_threshold``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from importlib import metadata

import numpy as np

HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "auroc": True,
    "ap": True,
    "pixel_auroc": True,
    "pl": True,
    "aupro": True,
    "pro": True,
    "pixel_aupr": True,
    "false_negatives": False,
    "false_positives": False,
}
"""Direction of each stored column, for ranking and for the arrows in report headers.

Registered metrics' own ``MetricSpec.higher_is_better`` takes precedence; the pixel columns stay
listed so that a stored run's report renders the same without the plugin that computed them.
"""


METRICS_VERSION = 2
"""Bumped when a built-in metric's definition changes: part of the key of every cached metric value."""
_LIBRARIES = {"image": ("numpy", "scikit-learn")}
SIGMAS = 3.0
"""The held-out pixel threshold: mean + ``SIGMAS`` standard deviations of the held-out normals' pixels."""


def metric_versions(level: str) -> dict[str, str]:
    """What a built-in ``level`` metric's value depends on besides its inputs: this module's and libraries' versions.

    Read from the installed distributions' metadata, without importing them.
    """
    libraries = _LIBRARIES.get(level, ())
    return {"harness.metrics": str(METRICS_VERSION), **{name: distribution_version(name) for name in libraries}}


@functools.cache
def distribution_version(name: str) -> str:
    """The installed version of distribution ``name`` (``"absent"`` if none), read once per process."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def holdout_pixel_threshold(holdout_maps: np.ndarray | None) -> float:
    """Mean + 3 std of every held-out normal pixel; NaN without held-out maps.

    The deployable pixel threshold (it sees only the held-out normals' maps): SegF1 and recall by
    defect type and size (plugins/harness_pixel) and ``harness export``'s thresholded maps.
    """
    if holdout_maps is None or not len(holdout_maps):
        return float("nan")
    pixels = np.asarray(holdout_maps, dtype=np.float64).ravel()
    return float(pixels.mean() + SIGMAS * pixels.std())


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` in float64, 0.0 when the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    return float(np.float64(numerator) / np.float64(denominator)) if denominator else 0.0


def threshold_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Accuracy, precision, recall, F1 and the confusion counts of ``score >= threshold``.

    The same float64 arithmetic as scikit-learn's ``accuracy_score``, ``precision_score``,
    ``recall_score`` and ``f1_score`` (``zero_division=0``), without importing it; the unit tests
    hold them equal.
    """
    predicted = np.asarray(scores) >= threshold
    truth = np.asarray(labels).astype(int).astype(bool)
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    tn = int(truth.size - tp - fp - fn)
    return {
        "accuracy": _ratio(tp + tn, truth.size),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "true_positives": tp,
        "false_positives": fp,
        "true_negatives": tn,
        "false_negatives": fn,
    }


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Threshold-free image metrics: AUROC and average precision (NaN with a single class)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        return {"auroc": float("nan"), "ap": float("nan")}
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
    }


def bootstrap_intervals_many(
    scores: np.ndarray,
    labels: np.ndarray,
    thresholds: Sequence[float],
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = 0.95,
) -> list[dict[str, float]]:
    """Percentile bootstrap intervals (over test images) of recall and F1 at each of several fixed thresholds.

    The thresholds are held fixed: for oracle calibrations the interval ignores the extra
    optimism of having tuned them on the same images.

    One numpy pass: one resample index matrix serves every threshold (the calibrations of a job are compared on the
    same resampled test sets). Each resample is reduced to counts per image in descending score
    order; the true and false positives of ``score >= t`` are then a cumulative sum read at the
    number of images scoring at least ``t``, so no threshold needs a pass over the resamples.
    """
    scores, truth = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    n = scores.size
    order = np.argsort(-scores, kind="stable")
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    index = rng.integers(0, n, size=(resamples, n))
    cells = (np.arange(resamples)[:, None] * n + position[index]).ravel()
    counts = np.bincount(cells, minlength=resamples * n).reshape(resamples, n)
    anomalous = truth[order]
    hits = np.cumsum(counts * anomalous, axis=1)
    alarms = np.cumsum(counts * ~anomalous, axis=1)
    above = np.array([np.count_nonzero(scores >= t) for t in thresholds], dtype=np.int64)
    column = np.maximum(above - 1, 0)
    tp = np.where(above > 0, hits[:, column], 0).T  # (thresholds, resamples)
    fp = np.where(above > 0, alarms[:, column], 0).T
    fn = hits[:, -1][None, :] - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    tail = 100 * (1 - level) / 2
    with warnings.catch_warnings():  # an all-NaN row (no anomaly in any resample) gives NaN, as before
        warnings.simplefilter("ignore", RuntimeWarning)
        recall_bounds = np.nanpercentile(recall, [tail, 100 - tail], axis=1)
        f1_bounds = np.nanpercentile(f1, [tail, 100 - tail], axis=1)
    return [
        {
            "recall_ci_low": float(recall_bounds[0, i]),
            "recall_ci_high": float(recall_bounds[1, i]),
            "f1_ci_low": float(f1_bounds[0, i]),
            "f1_ci_high": float(f1_bounds[1, i]),
        }
        for i in range(len(thresholds))
    ]
