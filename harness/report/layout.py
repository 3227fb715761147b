"""Table layout for the reports: which columns stay in view (sticky) and the column groups above headers."""

from __future__ import annotations

import itertools
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
    "cost": (
        "fit_seconds",
        "latency_ms",
        "throughput_per_s",
        "peak_rss_mb",
        "peak_memory_mb",
        "gpu_memory_mb",
        "parameters",
        "size_mb",
        "gmac",
        "energy_kwh",
        "co2_kg",
        "gpu_power_w",
    ),
}
_GROUP_OF = {column: name for name, columns in GROUPS.items() for column in columns}


def group_of(column: str) -> str:
    """The group a column's header sits under ("" for identity and provenance columns)."""
    if column.startswith("auroc_") and column not in _GROUP_OF:
        return "threshold-free"
    return _GROUP_OF.get(column, "")


def column_groups(columns: Sequence[str]) -> list[tuple[str, int]]:
    """Runs of adjacent columns in the same group: (group name, span)."""
    return [(name, len(list(run))) for name, run in itertools.groupby(columns, key=group_of)]


def sticky_count(columns: Sequence[str]) -> int:
    """How many leading columns stay in view: the leading identity columns, at most :data:`STICKY_MAX`."""
    return len(list(itertools.takewhile(IDENTITY.__contains__, columns[:STICKY_MAX]))) or 1


def fmt(value: Any, column: str = "") -> str:
    """A finding cell: floats with three decimals, gaps (points) signed with one, NaN and None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:+.1f}" if column.endswith("gap") else f"{value:.3f}"
    return str(value)


FOLDED = {"_ci": "{}", "_rank": "rank {}"}
"""Column suffixes shown under their base column's value instead of in a column of their own."""
NOTE_COLUMNS = ("notes",)
"""Free-text columns shown as notes below the table (they would make it wider than any screen)."""


def _folded_into(column: str, columns: list[str]) -> str | None:
    for suffix in FOLDED:
        if column.endswith(suffix) and column[: -len(suffix)] in columns:
            return column[: -len(suffix)]
    return None


def fold_intervals(table: dict[str, Any]) -> dict[str, Any]:
    """Move ``x_ci`` and ``x_rank`` under their ``x`` value (a second line in the same cell), to save width.

    Cells become (text, sort value, note) triples; the note is "[low, high]", "rank N", both, or "".
    Free-text columns (:data:`NOTE_COLUMNS`) leave the table for ``table["notes"]``: (row label, text).
    """
    columns = table["columns"]
    folded = {i: _folded_into(c, columns) for i, c in enumerate(columns)}
    keep = [i for i, c in enumerate(columns) if folded[i] is None and c not in NOTE_COLUMNS]
    rows, notes = [], []
    for row in table["rows"]:
        extra: dict[str, list[str]] = {}
        for i, base in folded.items():
            if base is not None and row[i][0] not in ("", "–"):
                suffix = columns[i][len(base) :]
                extra.setdefault(base, []).append(FOLDED[suffix].format(row[i][0]))
        rows.append([(cell[0], cell[1], " ".join(extra.get(columns[i], []))) for i, cell in enumerate(row)])
        for i, column in enumerate(columns):
            if column in NOTE_COLUMNS and row[i][0] not in ("", "–", "nan"):
                notes.append((row[0][0], row[i][0]))
    return _subtable({**table, "rows": rows, "notes": notes}, keep, notes=True)


def split_cost(table: dict[str, Any], most: int = 14) -> list[dict[str, Any]]:
    """A table wider than ``most`` columns with a cost group: quality columns, then identity + cost columns."""
    columns = table["columns"]
    cost = [i for i, c in enumerate(columns) if group_of(c) == "cost"]
    if len(columns) <= most or not cost:
        return [table]
    identity = list(range(table.get("sticky", 1)))
    parts = [[i for i in range(len(columns)) if i not in cost], [*identity, *[i for i in cost if i not in identity]]]
    return [_subtable(table, keep, notes=part == 0) for part, keep in enumerate(parts)]


def _subtable(table: dict[str, Any], keep: list[int], notes: bool) -> dict[str, Any]:
    columns = [table["columns"][i] for i in keep]
    return {
        **table,
        "columns": columns,
        "headers": [table["headers"][i] for i in keep],
        "rows": [[row[i] for i in keep] for row in table["rows"]],
        "groups": column_groups(columns),
        "notes": table.get("notes", []) if notes else [],
    }
