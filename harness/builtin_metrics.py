"""The built-in metrics, registered through ``harness_metrics`` like a plugin's.

Image level: AUROC and average precision (scikit-learn; NaN with a single class). Pixel level:
every entry of :data:`harness.metrics.PIXEL_METRICS` (pixel AUROC, pixel AUPR, AUPRO up to
30 % FPR, PRO and PL; sources in :mod:`harness.metrics`). Directions come from
:data:`harness.metrics.HIGHER_IS_BETTER`.
"""

from __future__ import annotations

import numpy as np

from harness import hookimpl
from harness.contract import MetricSpec
from harness.metrics import HIGHER_IS_BETTER, PIXEL_METRICS, ranking_metrics


def image_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Image AUROC (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["auroc"]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of the defect class (NaN when the test set has one class)."""
    return ranking_metrics(scores, labels)["ap"]


@hookimpl
def harness_metrics() -> dict[str, MetricSpec]:
    """AUROC and AP of the image scores; the pixel metrics of :data:`harness.metrics.PIXEL_METRICS`."""
    specs = {
        "auroc": MetricSpec("auroc", True, "image", image_auroc, "image AUROC"),
        "ap": MetricSpec("ap", True, "image", average_precision, "image average precision"),
    }
    for name, function in PIXEL_METRICS.items():
        specs[name] = MetricSpec(
            name, HIGHER_IS_BETTER.get(name, True), "pixel", function, (function.__doc__ or "").strip().split("\n")[0]
        )
    return specs
