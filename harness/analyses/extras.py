"""Per-job columns and figures that plugins add to a protocol kind's results (``harness_analysis_extras``).

A kind calls :func:`analysis_extras` with its context and rows; every plugin's implementation of the
hook is called through pluggy and the results collected in plugin order: their per-job columns are
joined to the rows on ``cache_key``, their figures appended. kde_vs_test (plugins/harness_paradigms)
calls it; the thresholded segmentation of plugins/harness_pixel (SegF1, recall by defect type and
size) and the label-review sheets and anomaly-map panels of plugins/harness_review answer it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.analyses.base import AnalysisContext, AnalysisResult, FigureRecord

if TYPE_CHECKING:
    import pandas as pd


def analysis_extras(context: AnalysisContext, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[FigureRecord]]:
    """``rows`` with every plugin's per-job columns joined on ``cache_key``, and the plugins' figures.

    Each plugin gets its own copy of ``rows``, so it cannot change a row. Its columns are joined
    only when they are new names with one row per ``cache_key``; a plugin that breaks that (or
    raises) loses its own columns and figures with one warning, and the kind's rows stay as they were.
    """
    from harness.plugins import get_plugins

    figures: list[FigureRecord] = []

    def join(result: object) -> None:
        if not isinstance(result, AnalysisResult):
            raise TypeError(f"it must return harness.AnalysisResult, got {type(result).__name__}")
        nonlocal rows
        columns = result.rows
        if rows.empty or columns is None or columns.empty or "cache_key" not in columns:
            figures.extend(result.figures)
            return
        taken = sorted(set(columns.columns) - {"cache_key"} & set(rows.columns))
        if taken or columns["cache_key"].duplicated().any():
            problem = f"columns already taken: {taken}" if taken else "more than one row for a cache_key"
            raise ValueError(f"its per-job columns must be new names with one row per job ({problem})")
        rows = rows.merge(columns, on="cache_key", how="left")
        figures.extend(result.figures)

    get_plugins().call_each("harness_analysis_extras", join, copies=("rows",), context=context, rows=rows)
    return rows, figures


def analysis_prepare(context: AnalysisContext, rows: pd.DataFrame) -> None:
    """``harness_analysis_prepare``: the plugins' early work, while the kind's slow metrics are pending.

    ``rows`` are the kind's rows so far (slow metrics NaN). Each plugin gets its own copy and a
    scratch figure folder, deleted afterwards: only what it keeps in the derived cache remains, so
    the outputs are those of calling ``harness_analysis_extras`` alone. A plugin that raises is
    named in one warning.
    """
    import dataclasses
    import tempfile
    from pathlib import Path

    from harness.plugins import get_plugins

    with tempfile.TemporaryDirectory(prefix="harness-prepare-") as scratch:
        scratch_context = dataclasses.replace(context, figure_dir=Path(scratch))
        get_plugins().call_each("harness_analysis_prepare", copies=("rows",), context=scratch_context, rows=rows)
