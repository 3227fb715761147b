"""harness plugin: pixel-level metrics and thresholded segmentation, registered through hooks only.

- ``harness_metrics``: pixel AUROC, pixel AUPR, AUPRO (up to 30 % FPR), PRO and PL
  (:mod:`harness_pixel.metrics`, sources there), computed for every job whose model gives maps and
  whose dataset has masks; higher is better. Each carries a ``version`` (this package's metric code
  and its libraries' versions), so the harness keeps their values in the derived cache.
- ``harness_analysis_extras``: SegF1 at the held-out pixel threshold and its test-tuned oracle per
  job, and recall at the operating point by defect type and size (a CSV table and a figure)
  (:mod:`harness_pixel.segmentation`), for any protocol kind that asks (kde_vs_test does), cached
  beside the scores (:mod:`harness_pixel.segmentation_cache`).
- ``harness_analysis_prepare``: the same report computed into the derived cache while the kind's
  PL is still computed beside it, so that ``harness_analysis_extras`` reads it back.

Imports only the public API (``harness``, ``harness.analysis``, ``harness.runs``).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import harness
from harness.analysis import distribution_version

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"

LIBRARIES = ("numpy", "scikit-learn", "scipy", "proportion-localised", "opencv-python", "opencv-python-headless")
"""The distributions the metric values depend on (their versions enter the cache key)."""
METRIC_CODE = ("metrics.py", "pixel_counts.py")


@functools.cache
def metrics_version() -> str:
    """What the metric values depend on besides their inputs: this package's metric code and the libraries' versions.

    Read once per process (the files' bytes, the distributions' metadata) and only when a value is
    cached, never when the plugin registers.
    """
    code = hashlib.sha256()
    for name in METRIC_CODE:
        code.update((Path(__file__).parent / name).read_bytes())
    return ";".join([code.hexdigest(), *(f"{name}={distribution_version(name)}" for name in LIBRARIES)])


@harness.hookimpl
def harness_metrics() -> dict[str, harness.MetricSpec]:
    """The pixel metrics of :data:`harness_pixel.metrics.PIXEL_METRICS`, each higher-is-better."""
    from harness_pixel.metrics import PIXEL_METRICS

    return {
        name: harness.MetricSpec(name, True, "pixel", function, _first_line(function.__doc__), metrics_version)
        for name, function in PIXEL_METRICS.items()
    }


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n")[0]


@harness.hookimpl
def harness_analysis_extras(context: harness.AnalysisContext, rows: pd.DataFrame) -> harness.AnalysisResult:
    """SegF1 columns per job and the recall-by-type-and-size table and figure (from the derived cache when there)."""
    from harness_pixel.segmentation_cache import segmentation_report_once

    columns, figures = segmentation_report_once(context, rows)
    return harness.AnalysisResult(columns, figures)


@harness.hookimpl
def harness_analysis_prepare(context: harness.AnalysisContext, rows: pd.DataFrame) -> None:
    """The segmentation report computed into the derived cache early (while PL is computed beside it)."""
    from harness_pixel.segmentation_cache import prepare_segmentation_report

    prepare_segmentation_report(context, rows)
