"""The built-in metrics, registered through ``harness_metrics`` like a plugin's.

Image level: AUROC and average precision (scikit-learn; NaN with a single class). Pixel level:
pixel AUROC, AUPRO up to 30 % FPR (Bergmann et al., MVTec AD, IJCV 2021, Sec. 4.2) and PL, the
proportion of defects localised at 1 % normal-image FPR (paper 004). The functions live in
:mod:`harness.metrics`.
"""

from __future__ import annotations

import numpy as np

from harness import hookimpl
from harness.contract import MetricSpec
from harness.metrics import aupro, pixel_auroc, pl_at_normal_fpr, ranking_metrics


def image_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Image AUROC (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["auroc"]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of the defect class (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["ap"]


@hookimpl
def harness_metrics() -> dict[str, MetricSpec]:
    """AUROC, AP, pixel AUROC, AUPRO and PL."""
    return {
        "auroc": MetricSpec("auroc", True, "image", image_auroc, "image AUROC"),
        "ap": MetricSpec("ap", True, "image", average_precision, "image average precision"),
        "pixel_auroc": MetricSpec(
            "pixel_auroc", True, "pixel", lambda maps, masks, labels: pixel_auroc(maps, masks), "pixel AUROC"
        ),
        "aupro": MetricSpec(
            "aupro", True, "pixel", lambda maps, masks, labels: aupro(maps, masks), "AUPRO up to 30 % FPR"
        ),
        "pl": MetricSpec("pl", True, "pixel", pl_at_normal_fpr, "proportion localised at 1 % normal FPR"),
    }
