"""Per-job columns and figures that plugins add to a protocol kind's results (``harness_analysis_extras``).

A kind calls :func:`analysis_extras` with its context and rows; every plugin's implementation of the
hook is called through pluggy and the results collected in plugin order: their per-job columns are
joined to the rows on ``cache_key``, their figures appended. kde_vs_test calls it; the thresholded
segmentation of plugins/harness_pixel (SegF1, recall by defect type and size) and the label-review
sheets and anomaly-map panels of plugins/harness_review answer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.analyses.base import AnalysisContext, AnalysisResult, FigureRecord

if TYPE_CHECKING:
    import pandas as pd


def analysis_extras(context: AnalysisContext, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[FigureRecord]]:
    """``rows`` with every plugin's per-job columns joined on ``cache_key``, and the plugins' figures."""
    from harness.plugins import get_plugins

    figures: list[FigureRecord] = []
    for result in get_plugins().call_each("harness_analysis_extras", context=context, rows=rows):
        if not isinstance(result, AnalysisResult):
            raise TypeError(
                f"harness_analysis_extras() must return harness.AnalysisResult, got {type(result).__name__}"
            )
        columns = result.rows
        if not rows.empty and columns is not None and not columns.empty and "cache_key" in columns:
            rows = rows.merge(columns, on="cache_key", how="left")
        figures.extend(result.figures)
    return rows, figures
