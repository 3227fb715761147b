"""The segmentation report (:func:`harness_pixel.segmentation.segmentation_report`) computed once per content.

SegF1 and the recall-by-type-and-size table load every job's maps, masks and held-out maps and
draw a figure; all of it is deterministic in the jobs' cached entries, the reference image
thresholds and the code that computes it. Its outputs (the per-job SegF1 columns, the CSV table,
the figure and its caption) are kept in the derived cache beside the scores, so a rerun copies
them without loading a map or importing scikit-learn or matplotlib.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

from harness.analysis import AnalysisContext, FigureRecord, digest, reference_calibration
from harness.runs import holdout_pixel_threshold

TABLE = "recall_by_type_and_size.csv"


@functools.cache
def _code_digest() -> str:
    """A hash of the code behind the report (read, not imported): new code, new results.

    Every module of this plugin, and the whole core module of the held-out pixel threshold (its constants too).
    """
    code = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        code.update(path.name.encode() + path.read_bytes())
    code.update(Path(inspect.getsourcefile(holdout_pixel_threshold) or "").read_bytes())
    return code.hexdigest()


def _key(context: AnalysisContext, rows: pd.DataFrame) -> str | None:
    """What the segmentation report depends on, or ``None`` when a job has no derived cache or checksums."""
    views = [job.view_digest if job.derived is not None else None for job in context.jobs]
    if not views or any(view is None for view in views):
        return None
    reference = reference_calibration(context)
    label = reference.label if reference is not None else None
    chosen = [] if rows.empty or label is None else rows.loc[rows["calibration"] == label, ["cache_key", "threshold"]]
    thresholds = [] if isinstance(chosen, list) else chosen.astype(str).to_numpy().tolist()
    return digest("segmentation_report", _code_digest(), views, label, thresholds, rows.empty)


def segmentation_report_once(context: AnalysisContext, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[FigureRecord]]:
    """:func:`harness_pixel.segmentation.segmentation_report`, from the derived cache when it holds the same inputs."""
    key = _key(context, rows)
    store = context.jobs[0].derived if key else None
    stored = store.get_value(key) if store is not None else None
    if _usable(stored) and _restore(stored, context, store, key):
        return _columns(rows, stored["per_job"]), [FigureRecord(**f) for f in stored["figures"]]
    from harness_pixel.segmentation import segmentation_report

    columns, figures = segmentation_report(context, rows)
    if store is not None:
        _store(store, key, context, columns, figures)
    return columns, figures


def prepare_segmentation_report(context: AnalysisContext, rows: pd.DataFrame) -> None:
    """Compute the report into the derived cache now, unless it is there or cannot be kept (no cache)."""
    key = _key(context, rows)
    store = context.jobs[0].derived if key else None
    if store is not None and not _usable(store.get_value(key)):
        from harness_pixel.segmentation import segmentation_report

        columns, figures = segmentation_report(context, rows)
        _store(store, key, context, columns, figures)


def _file_key(key: str, name: str) -> str:
    return digest(key, name)


def _usable(stored: Any) -> bool:
    """A stored value of the right shape whose figures are plain file names (never a path out of the figure folder)."""
    return (
        isinstance(stored, dict)
        and isinstance(stored.get("per_job"), dict)
        and isinstance(stored.get("figures"), list)
        and all(isinstance(f, dict) and _plain_name(f.get("file")) for f in stored["figures"])
    )


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and PurePath(name).name == name and "\\" not in name


def _restore(stored: dict[str, Any], context: AnalysisContext, store: Any, key: str) -> bool:
    """Write the stored table and figure into the figure folder; False when one is missing (recompute)."""
    for figure in stored["figures"]:
        if figure.get("kind") == "table":
            if not isinstance(stored.get("table"), str):
                return False
            (context.figure_dir / figure["file"]).write_text(stored["table"])
        elif not store.get_files(_file_key(key, figure["file"]), context.figure_dir / figure["file"]):
            return False
    if isinstance(stored.get("table"), str) and not (context.figure_dir / TABLE).exists():
        (context.figure_dir / TABLE).write_text(stored["table"])
    return True


def _store(store: Any, key: str, context: AnalysisContext, columns: pd.DataFrame, figures: list) -> None:
    new = [c for c in columns.columns if c != "cache_key"]
    per_job = {str(row["cache_key"]): {c: _plain(row[c]) for c in new} for _, row in columns.iterrows()}
    table = context.figure_dir / TABLE
    for figure in figures:
        if figure.kind != "table":
            store.put_files(_file_key(key, figure.file), context.figure_dir / figure.file)
    value = {
        "per_job": per_job,
        "columns": new,
        "table": table.read_text() if table.is_file() else None,
        "figures": [vars(f) for f in figures],
    }
    store.put_value(key, value)


def _plain(value: Any) -> Any:
    """A cell as a JSON number or string (NaN kept as NaN)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _columns(rows: pd.DataFrame, per_job: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The stored per-job columns as ``cache_key`` and the columns (empty when ``rows`` is: nothing to join)."""
    if rows.empty or not per_job:
        return pd.DataFrame()
    return pd.DataFrame([{"cache_key": k, **v} for k, v in per_job.items()])
