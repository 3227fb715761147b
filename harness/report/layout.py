"""Table layout for the reports: which columns stay in view (sticky) and the column groups above headers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

IDENTITY = ("model", "calibration", "setting", "fraction", "mode", "group", "seed")
"""Columns that say what a row is; the leading run of them stays in view when a table scrolls sideways."""
STICKY_MAX = 3
GROUPS = {
    "at the threshold": (
        "threshold",
        "accuracy",
        "precision",
        "recall",
        "recall_ci",
        "f1",
        "f1_ci",
        "f1_gap",
        "false_negatives",
        "false_positives",
        "threshold_cv",
    ),
    "threshold-free": ("auroc", "ap", "mean_rank", "auroc_rank", "ap_rank"),
    "pixel": ("pixel_auroc", "pixel_aupr", "aupro", "pro", "pl", "pixel_auroc_rank", "aupro_rank", "seg_f1"),
    "cost": ("latency_ms", "fit_seconds", "energy_kwh", "co2_kg", "size_mb", "peak_memory_mb"),
}
_GROUP_OF = {column: name for name, columns in GROUPS.items() for column in columns}


def group_of(column: str) -> str:
    """The group a column's header sits under ("" for identity and provenance columns)."""
    if column.startswith("auroc_") and column not in _GROUP_OF:
        return "threshold-free"
    return _GROUP_OF.get(column, "")


def column_groups(columns: Sequence[str]) -> list[tuple[str, int]]:
    """Runs of adjacent columns in the same group: (group name, span)."""
    runs: list[tuple[str, int]] = []
    for column in columns:
        name = group_of(column)
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    return runs


def sticky_count(columns: Sequence[str]) -> int:
    """How many leading columns stay in view: the leading identity columns, at most :data:`STICKY_MAX`."""
    count = 0
    for column in columns[:STICKY_MAX]:
        if column not in IDENTITY:
            break
        count += 1
    return count or 1


def fmt(value: Any, column: str = "") -> str:
    """A finding cell: floats with three decimals, gaps (points) signed with one, NaN and None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:+.1f}" if column.endswith("gap") else f"{value:.3f}"
    return str(value)


def fold_intervals(table: dict[str, Any]) -> dict[str, Any]:
    """Move each ``x_ci`` column under its ``x`` value (a second line in the same cell), to save width.

    Cells become (text, sort value, note) triples; the note is the interval or "".
    """
    columns = table["columns"]
    folded = {c: columns.index(f"{c}_ci") for c in columns if f"{c}_ci" in columns}
    keep = [i for i, c in enumerate(columns) if not (c.endswith("_ci") and c[:-3] in folded)]
    rows = []
    for row in table["rows"]:
        notes = {columns.index(c): row[i][0] for c, i in folded.items()}
        rows.append([(row[i][0], row[i][1], notes.get(i, "")) for i in keep])
    return {
        **table,
        "columns": [columns[i] for i in keep],
        "headers": [table["headers"][i] for i in keep],
        "rows": rows,
        "groups": column_groups([columns[i] for i in keep]),
    }
