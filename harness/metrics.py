"""Image- and pixel-level metrics. scikit-learn where it has the metric; AUPRO written out here."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import label as connected_components
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

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
    "false_negatives": False,
    "false_positives": False,
}
"""Direction of each metric, for ranking and for the arrows in report headers."""


def threshold_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Accuracy, precision, recall, F1 and the confusion counts of ``score >= threshold``."""
    predicted = (np.asarray(scores) >= threshold).astype(int)
    labels = np.asarray(labels).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "true_positives": int(tp),
        "false_positives": int(fp),
        "true_negatives": int(tn),
        "false_negatives": int(fn),
    }


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Threshold-free image metrics: AUROC and average precision (NaN with a single class)."""
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        return {"auroc": float("nan"), "ap": float("nan")}
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
    }


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUROC over every pixel of every test image."""
    truth = np.asarray(masks, dtype=bool).ravel()
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, np.asarray(maps, dtype=np.float32).ravel()))


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, normalised to [0, 1].

    As in the MVTec AD evaluation: each connected ground-truth region (8-connectivity) counts
    equally; the false-positive rate is over pixels outside every region, across all images.
    """
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


def _boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    regions, count = connected_components(mask, structure=np.ones((3, 3), dtype=int))
    boxes = []
    for index in range(1, count + 1):
        ys, xs = np.nonzero(regions == index)
        boxes.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1))
    return boxes


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    top, left = max(a[0], b[0]), max(a[1], b[1])
    bottom, right = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, bottom - top) * max(0, right - left)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


def proportion_localised(predicted: np.ndarray, masks: np.ndarray, iou: float = 0.3) -> float:
    """PL (VisionAD, used by paper 002): the share of ground-truth regions found.

    Each connected ground-truth region and each connected predicted region is reduced to its
    bounding box; a region counts as found when some predicted box overlaps its box with IoU
    above ``iou``. ``predicted`` is a boolean (N, H, W) prediction.
    """
    found = total = 0
    for prediction, mask in zip(np.asarray(predicted, bool), np.asarray(masks, bool), strict=True):
        truth = _boxes(mask)
        if not truth:
            continue
        guesses = _boxes(prediction)
        total += len(truth)
        found += sum(any(_iou(box, guess) > iou for guess in guesses) for box in truth)
    return found / total if total else float("nan")


def pl_at_normal_fpr(maps: np.ndarray, masks: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> float:
    """PL with the map binarised where it exceeds the (1 - ``fpr``) quantile of the defect-free test images' pixels.

    Only the normal images fix the pixel threshold (no defect mask is used to choose it); the
    threshold rule is stated in the report so PL figures stay comparable between models.
    """
    normal = np.asarray(labels) == 0
    if not normal.any():
        return float("nan")
    threshold = np.quantile(np.asarray(maps)[normal], 1 - fpr)
    return proportion_localised(np.asarray(maps) > threshold, masks)
