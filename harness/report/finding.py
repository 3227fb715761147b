"""The finding a report opens with: the protocol's result in numbers, one sentence and a small table.

A protocol kind (an analysis) may define ``finding(rows, summary) -> Finding``; without one the
report uses :func:`default_finding`, which reads the leaderboard: where it holds oracle rows
(thresholds tuned on the test labels) beside deployable ones, the gap between them per model
(paper 000's finding); otherwise the models ranked by the kind's first metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.lazy import lazy_names
from harness.metrics import HIGHER_IS_BETTER

if TYPE_CHECKING:
    import pandas as pd

GROUP_COLUMNS = ("setting", "fraction", "mode")
"""Leaderboard columns that split a model's rows into settings the finding keeps apart."""
PRIMARY_METRICS = ("mean_rank", "auroc_all", "auroc", "f1", "recall", "ap", "pixel_auroc", "aupro")
"""The metric a ranking finding uses: the first of these the leaderboard has."""
LOWER_IS_BETTER = {"mean_rank", "false_negatives", "false_positives"}


@dataclass(frozen=True)
class Finding:
    """A protocol's result in numbers: a headline sentence and the table behind it."""

    headline: str
    columns: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    note: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    """Machine-readable figures behind the headline (written to results.json)."""

    def to_json(self) -> dict[str, Any]:
        """The finding as plain JSON types."""
        from harness.results_files import _plain

        return {
            "headline": self.headline,
            "note": self.note,
            "columns": list(self.columns),
            "rows": [dict(zip(self.columns, map(_plain, row), strict=True)) for row in self.rows],
            "numbers": {k: _plain(v) for k, v in self.numbers.items()},
        }


def finding_of(analysis: Any, rows: pd.DataFrame, summary: pd.DataFrame) -> Finding:
    """The analysis's own finding when it defines ``finding``, else :func:`default_finding`."""
    if summary.empty:
        return Finding("No job finished, so there is no finding; see the failed jobs below.")
    own = getattr(analysis, "finding", None)  # AnalysisSpec.finding, or a duck-typed analysis's own
    if callable(own):
        return own(rows, summary)
    return default_finding(summary)


def default_finding(summary: pd.DataFrame) -> Finding:
    """Oracle-vs-deployable gap when the leaderboard has both, else a ranking by the first metric."""
    if {"model", "calibration", "oracle", "f1"} <= set(summary.columns):
        oracle = summary["oracle"].astype(bool)
        if oracle.any() and (~oracle).any():
            return oracle_gap_finding(summary)
    return ranking_finding(summary)


def deployable_label(frame: pd.DataFrame) -> str | None:
    """The deployable calibration a finding quotes: ``kde`` if present, else the first non-oracle row's."""
    deployable = frame.loc[~frame["oracle"].astype(bool), "calibration"].astype(str).tolist()
    return "kde" if "kde" in deployable else (deployable[0] if deployable else None)


def oracle_gap_finding(summary: pd.DataFrame) -> Finding:
    """Per model: the deployable calibration's recall and F1 beside the best oracle's, the gap, the misses."""
    groups = ["model", *[c for c in GROUP_COLUMNS if c in summary.columns]]
    table = []
    for key, frame in summary.groupby(groups, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        oracles = frame[frame["oracle"].astype(bool)]
        # a setting without its own deployable row (e.g. an oracle per fraction) uses the model's
        pool = frame if deployable_label(frame) else summary[summary["model"] == key[0]]
        label = deployable_label(pool)
        if oracles.empty or label is None:
            continue
        oracle = oracles.loc[oracles["f1"].astype(float).idxmax()]
        deployed = pool[pool["calibration"].astype(str) == label].iloc[0]
        row = [*key, label, deployed.get("recall"), deployed["f1"], str(oracle["calibration"])]
        row += [oracle.get("recall"), oracle["f1"], round(100 * (float(deployed["f1"]) - float(oracle["f1"])), 1)]
        row += [_count(deployed.get("false_negatives")), _count(deployed.get("n_anomalous"))]
        row += [_count(oracle.get("false_negatives"))]
        table.append(tuple(row))
    columns = (*groups, "deployable", "recall", "f1", "oracle", "oracle_recall", "oracle_f1", "f1_gap")
    columns += ("missed", "defects", "oracle_missed")
    headers = (*groups, "deployable", "recall", "F1", "oracle", "oracle recall", "oracle F1", "F1 gap (pts)")
    headers += ("defects missed", "defects", "oracle missed")
    values = {name: [row[i] for row in table] for i, name in enumerate(columns)}
    gaps = values["f1_gap"]
    missed, defects, oracle_missed = (sum(v or 0 for v in values[c]) for c in ("missed", "defects", "oracle_missed"))
    label = values["deployable"][0] if table else "deployable"
    headline = f"With thresholds from defect-free images only ({label}), F1 {_gap_text(gaps)} the test-tuned oracle; "
    headline += f"{label} misses {missed}" + (f" of {defects}" if defects else "") + " defects"
    headline += f" where the oracle misses {oracle_missed}."
    numbers = {"f1_gap_min": min(gaps, default=None), "f1_gap_max": max(gaps, default=None), "missed": missed}
    numbers["defects"] = defects
    note = "Gap = deployable F1 − oracle F1 in percentage points (negative: the deployable threshold does worse)."
    return Finding(headline, columns, headers, tuple(table), note, numbers)


def _count(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _gap_text(gaps: Sequence[float]) -> str:
    """The gap in words, e.g. "falls 13.0 points below" or "lands -1.0 to +2.0 points from"."""
    if not gaps:
        return "cannot be compared with"
    low, high = min(gaps), max(gaps)
    if high <= 0:
        span = f"{-high:.1f}" if low == high else f"{-high:.1f} to {-low:.1f}"
        return f"falls {span} points below"
    return f"lands {low:+.1f} to {high:+.1f} points from"


def primary_metric(summary: pd.DataFrame) -> str | None:
    """The first of :data:`PRIMARY_METRICS` (then any ``auroc_*``) the leaderboard has as numbers."""
    import pandas as pd

    candidates = [*PRIMARY_METRICS, *sorted(c for c in summary.columns if c.startswith("auroc_"))]
    for column in candidates:
        numeric = column in summary.columns and pd.api.types.is_numeric_dtype(summary[column])
        if numeric and summary[column].notna().any():
            return column
    return None


def ranking_finding(summary: pd.DataFrame) -> Finding:
    """Models ranked by the primary metric: best, worst and the spread, per setting."""
    metric = primary_metric(summary)
    if metric is None or "model" not in summary.columns:
        return Finding("The leaderboard below has no metric to rank by.")
    lower = metric in LOWER_IS_BETTER or HIGHER_IS_BETTER.get(metric) is False
    keys = [c for c in ("model", "calibration", *GROUP_COLUMNS) if c in summary.columns]
    ranked = summary.dropna(subset=[metric]).sort_values(metric, ascending=lower)
    columns = (*keys, metric)
    rows = tuple(tuple(row[c] for c in columns) for _, row in ranked.iterrows())
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    name = metric.replace("_", " ")
    headline = f"Best {name}: {_who(best, keys)} ({_fmt(best[metric])})"
    if len(ranked) > 1:
        spread = _fmt(abs(best[metric] - worst[metric]))
        headline += f"; last: {_who(worst, keys)} ({_fmt(worst[metric])}), a spread of {spread}"
    numbers = {"metric": metric, "best": _who(best, keys), "best_value": best[metric], "worst_value": worst[metric]}
    return Finding(headline + ".", columns, tuple(c.replace("_", " ") for c in columns), rows, "", numbers)


def _who(row: pd.Series, keys: Sequence[str]) -> str:
    extra = ", ".join(f"{k} {row[k]}" for k in keys if k != "model")
    return f"{row['model']}" + (f" ({extra})" if extra else "")


def _fmt(value: Any) -> str:
    return f"{float(value):.3f}"


_MOVED = {"harness_paradigms.partial_anomaly": "fraction_finding", "harness_paradigms.missing_type": "left_out_finding"}
"""Findings of one protocol kind each, moved into that kind's module (plugins/harness_paradigms): still
readable here, with a :class:`DeprecationWarning`."""

_, __getattr__, _ = lazy_names(__name__, _MOVED, moved=tuple(_MOVED.values()))
