"""Image- and pixel-level metrics, each a plain function of (maps, masks) or (scores, labels).

scikit-learn where it has the metric, anomalib for PRO, the authors' ``proportion-localised``
package for PL; AUPRO is written out here (the MVTec AD definition, tested against anomalib's and
an independent implementation).
"""

from __future__ import annotations

import functools
import importlib.util
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
"""Direction of each metric, for ranking and for the arrows in report headers."""


METRICS_VERSION = 1
"""Bumped when a built-in metric's definition changes: part of the key of every cached metric value."""
_LIBRARIES = {
    "image": ("numpy", "scikit-learn"),
    "pixel": (
        "numpy",
        "scikit-learn",
        "scipy",
        "anomalib",
        "torch",
        "proportion-localised",
        "opencv-python",
        "opencv-python-headless",
    ),
}


def metric_versions(level: str) -> dict[str, str]:
    """What a built-in ``level`` metric's value depends on besides its inputs: this module's and libraries' versions.

    Read from the installed distributions' metadata, without importing them.
    """
    return {"harness.metrics": str(METRICS_VERSION), **{name: distribution_version(name) for name in _LIBRARIES[level]}}


@functools.cache
def distribution_version(name: str) -> str:
    """The installed version of distribution ``name`` (``"absent"`` if none), read once per process."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


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


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUROC over every pixel of every test image."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(masks, dtype=bool).ravel()
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, np.asarray(maps, dtype=np.float32).ravel()))


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, normalised to [0, 1].

    As in the MVTec AD evaluation: each connected ground-truth region (8-connectivity) counts
    equally; the false-positive rate is over pixels outside every region, across all images.
    """
    from scipy.ndimage import label as connected_components

    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    fp_weight = np.zeros(maps.shape, dtype=np.float64)
    pro_weight = np.zeros(maps.shape, dtype=np.float64)
    n_regions = 0
    for index, mask in enumerate(masks):
        regions, count = connected_components(mask, structure=np.ones((3, 3), dtype=int))
        fp_weight[index][regions == 0] = 1.0
        if count:
            sizes = np.bincount(regions.ravel())
            pro_weight[index] = np.where(regions > 0, 1.0 / sizes[regions], 0.0)
            n_regions += count
    n_normal_pixels = fp_weight.sum()
    if n_regions == 0 or n_normal_pixels == 0:
        return float("nan")
    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    sorted_scores = maps.ravel()[order]
    fpr = np.cumsum(fp_weight.ravel()[order]) / n_normal_pixels
    pro = np.cumsum(pro_weight.ravel()[order]) / n_regions
    # one point per distinct threshold: keep the last index of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    fpr, pro = np.r_[0.0, fpr[last]], np.r_[0.0, pro[last]]
    pro_at_limit = np.interp(fpr_limit, fpr, pro)
    keep = fpr <= fpr_limit
    fpr, pro = np.r_[fpr[keep], fpr_limit], np.r_[pro[keep], pro_at_limit]
    return float(np.trapezoid(pro, fpr) / fpr_limit)


def bootstrap_intervals(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = 0.95,
) -> dict[str, float]:
    """Percentile bootstrap intervals (over test images) of recall and F1 at a fixed threshold.

    The threshold is held fixed: for oracle calibrations the interval ignores the extra
    optimism of having tuned it on the same images.
    """
    n = scores.size
    index = rng.integers(0, n, size=(resamples, n))
    predicted = scores[index] >= threshold
    truth = labels[index].astype(bool)
    tp = (predicted & truth).sum(axis=1)
    fn = (~predicted & truth).sum(axis=1)
    fp = (predicted & ~truth).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    tail = 100 * (1 - level) / 2
    low_recall, high_recall = np.nanpercentile(recall, [tail, 100 - tail])
    low_f1, high_f1 = np.nanpercentile(f1, [tail, 100 - tail])
    return {
        "recall_ci_low": float(low_recall),
        "recall_ci_high": float(high_recall),
        "f1_ci_low": float(low_f1),
        "f1_ci_high": float(high_f1),
    }


def bootstrap_intervals_many(
    scores: np.ndarray,
    labels: np.ndarray,
    thresholds: Sequence[float],
    rng: np.random.Generator,
    resamples: int = 1000,
    level: float = 0.95,
) -> list[dict[str, float]]:
    """:func:`bootstrap_intervals` for several thresholds in one numpy pass, over one shared set of resamples.

    One resample index matrix serves every threshold (the calibrations of a job are compared on the
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


PL_SIDE = 256
"""The image side the ``proportion-localised`` package is written for (VisionAD evaluates at 256 x 256)."""


def _to_side(stack: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    import cv2

    if stack.shape[1:] == (side, side):
        return stack
    return np.stack([cv2.resize(item, (side, side), interpolation=interpolation) for item in stack])


def proportion_localised(maps: np.ndarray, masks: np.ndarray) -> float:
    """PL (Taylor et al., VisionAD, TMLR 2024; reported by paper 002 §5), computed by the authors' package.

    ``proportion_localised.calculate`` (PyPI ``proportion-localised``) takes each ground-truth
    anomaly's minimum-area rotated box, scales its sides up to at least 1/8 of the image side,
    merges boxes that overlap by more than 1/3, counts an anomaly as localised when the IoU of
    the thresholded map (restricted to the pixels nearest that anomaly) with its box exceeds 0.3,
    and returns the best proportion over 25 thresholds at evenly spaced percentiles of the maps.
    The package assumes 256 x 256 inputs, so maps are resized bilinearly and masks by nearest
    neighbour to 256 x 256 first; only images with a defect pixel take part (a defect-free image
    has no anomaly to localise). Higher map values mean more anomalous, as everywhere here.
    """
    import cv2
    import proportion_localised as reference

    masks = np.asarray(masks, dtype=bool)
    defective = masks.reshape(len(masks), -1).any(axis=1)
    if not defective.any():
        return float("nan")
    heatmaps = _to_side(np.asarray(maps, dtype=np.float32)[defective], PL_SIDE, cv2.INTER_LINEAR)
    targets = _to_side(masks[defective].astype(np.uint8), PL_SIDE, cv2.INTER_NEAREST)
    return float(
        reference.calculate(heatmaps, targets, anomaly_likelihood_definitely_increasing=True, return_score_only=True)
    )


def pixel_aupr(maps: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUPR (paper 004 §4.2): scikit-learn's average precision over every test pixel."""
    from sklearn.metrics import average_precision_score

    truth = np.asarray(masks, dtype=bool).ravel()
    if truth.all() or not truth.any():
        return float("nan")
    return float(average_precision_score(truth, np.asarray(maps, dtype=np.float32).ravel()))


def pro(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> float:
    """PRO (paper 004 §4.2): anomalib's per-region overlap at one threshold (``anomalib.metrics.pro``).

    The mean over connected ground-truth regions of the share of each region's pixels the map
    flags. Anomalib applies its 0.5 threshold to maps its post-processor normalised with a
    threshold learnt on validation masks; the harness gives a model no masks, so the maps are
    min-max normalised over the evaluated images instead (anomalib's ``MinMax`` convention) and
    cut at ``threshold``. Needs the ``anomalib`` extra (NaN without it).
    """
    if importlib.util.find_spec("anomalib") is None:
        return float("nan")
    import torch
    from anomalib.metrics.pro import pro_score
    from anomalib.utils.cv import connected_components_cpu

    masks = np.asarray(masks, dtype=bool)
    if not masks.any():
        return float("nan")
    maps = np.asarray(maps, dtype=np.float64)
    span = maps.max() - maps.min()
    normalised = (maps - maps.min()) / span if span > 0 else np.zeros_like(maps)
    components = connected_components_cpu(torch.from_numpy(masks[:, None].astype(np.float32)))
    predictions = torch.from_numpy(normalised[:, None].astype(np.float32))
    return float(pro_score(predictions, components, threshold=threshold))


PIXEL_METRICS = {
    "pixel_auroc": pixel_auroc,
    "pixel_aupr": pixel_aupr,
    "aupro": aupro,
    "pro": pro,
    "pl": proportion_localised,
}
"""Pixel-level metrics computed for every job with maps and masks: name -> f(maps, masks) -> float."""
