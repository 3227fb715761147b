"""Results in machine-readable form: ``results.parquet`` and ``results.json``, one documented schema.

Every protocol kind writes the same envelope (``docs/results-schema.md``): the run's identity
(protocol, versions, data fingerprints), the finding, the column types, the per-job rows and the
leaderboard. Counts (confusion counts, image counts, seeds) are integers in every format,
``results.csv`` included; a failed job's counts are empty (null), not NaN floats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = "harness.results/1"
COUNT_COLUMNS = {
    "seed",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
    "categories",
    "seeds",
    "draw",
    "missed",
}
"""Columns holding counts besides every ``n_*`` one: stored as integers (nullable where a failed job has none)."""


def typed(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with count columns as nullable integers (``Int64``), wherever their values are whole."""
    rows = rows.copy()
    for column in [c for c in rows.columns if c in COUNT_COLUMNS or c.startswith("n_")]:
        values = pd.to_numeric(rows[column], errors="coerce")
        whole = values.dropna()
        if len(whole) and (whole == whole.round()).all():
            rows[column] = values.astype("Int64")
    return rows


def _json_type(series: pd.Series) -> str:
    types = pd.api.types
    kinds = (("boolean", types.is_bool_dtype), ("integer", types.is_integer_dtype), ("number", types.is_numeric_dtype))
    return next((name for name, test in kinds if test(series)), "string")


def _plain(value: Any) -> Any:
    if value is pd.NA or value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):  # e.g. a threshold no score reaches
        return "inf" if value > 0 else "-inf"
    return value


def _json_ready(value: Any) -> Any:
    """``value`` with every non-finite float made JSON-safe (NaN as null, infinities as "inf"/"-inf")."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return _plain(value)


def identity(run: dict[str, Any]) -> dict[str, Any]:
    """What identifies a run's numbers: protocol and its version, harness version, data fingerprints."""
    categories = run.get("dataset", {}).get("categories", {}) or {}
    return {
        "protocol": run.get("protocol"),
        "protocol_version": run.get("protocol_version"),
        "harness_version": run.get("versions", {}).get("harness"),
        "dataset_layout": run.get("dataset", {}).get("layout"),
        "data_fingerprints": {name: info.get("fingerprint") for name, info in categories.items()},
        "started": run.get("started"),
    }


def results_document(rows: pd.DataFrame, summary: pd.DataFrame, finding: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The ``results.json`` document (see ``docs/results-schema.md``)."""
    rows, summary = typed(rows), typed(summary)
    document = {
        "schema": SCHEMA,
        **identity(run),
        "finding": finding.to_json() if finding is not None else None,
        "columns": {c: _json_type(rows[c]) for c in rows.columns},
        "rows": rows.to_dict("records"),
        "leaderboard_columns": {c: _json_type(summary[c]) for c in summary.columns},
        "leaderboard": summary.to_dict("records"),
    }
    return _json_ready(document)  # NaN and NA as null, numpy scalars as Python numbers


def write_machine_readable(out: Path, rows: pd.DataFrame, analysis: Any, run: dict[str, Any]) -> list[Path]:
    """Summarise ``rows`` with the protocol kind, find its finding, write ``results.parquet`` and ``results.json``."""
    from harness.analyses.base import successful
    from harness.report.finding import finding_of
    from harness.store import write_atomic

    summary = analysis.summarise(rows)
    parquet, path = out / "results.parquet", out / "results.json"
    typed(rows).to_parquet(parquet, index=False, engine="pyarrow")  # per-job rows, typed
    document = results_document(rows, summary, finding_of(analysis, successful(rows), summary), run)
    write_atomic(path, json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False))
    return [parquet, path]
