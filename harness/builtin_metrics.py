"""The built-in metrics, registered through ``harness_metrics`` like a plugin's.

Image level: AUROC and average precision (scikit-learn; NaN with a single class). The pixel-level
metrics (pixel AUROC and AUPR, AUPRO, PRO, PL) are registered the same way by the in-house plugin
``plugins/harness_pixel``. Directions come from :data:`harness.metrics.HIGHER_IS_BETTER`.
"""

from __future__ import annotations

import numpy as np

from harness import hookimpl
from harness.contract import MetricSpec
from harness.metrics import ranking_metrics


def image_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Image AUROC (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["auroc"]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of the defect class (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["ap"]


@hookimpl
def harness_metrics() -> dict[str, MetricSpec]:
    """AUROC and AP of the image scores (the worked example of ``harness_metrics``)."""
    return {
        "auroc": MetricSpec("auroc", True, "image", image_auroc, "image AUROC"),
        "ap": MetricSpec("ap", True, "image", average_precision, "image average precision"),
    }
