"""Reports rendered from stored results only: ``report.html`` (self-contained) and ``report.tex``.

``harness report OUT`` calls :func:`render_reports` on a finished output folder; nothing is
fitted or scored. Both reports read ``results.csv``, ``run.json`` and ``figures/``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.metrics import HIGHER_IS_BETTER
from harness.report.assets import templates_dir
from harness.report.inputs import load_results
from harness.report.latex_tables import latex_escape as latex_escape  # harness.report.latex_escape still works
from harness.report.latex_tables import render_latex
from harness.report.layout import fmt, fold_intervals, split_cost, sticky_count
from harness.report.readable import quantity
from harness.store import write_atomic

if TYPE_CHECKING:
    import pandas as pd
    from jinja2 import Environment

HEADERS = {
    "recall_ci": "recall 95 % CI",
    "f1_ci": "F1 95 % CI",
    "false_negatives": "FN",
    "false_positives": "FP",
    "auroc": "AUROC",
    "ap": "AP",
    "f1": "F1",
    "pixel_auroc": "pixel AUROC",
    "aupro": "AUPRO",
    "pl": "PL",
    "f1_gap": "F1 gap (pts)",
}


def _header(column: str) -> str:
    if column.startswith("auroc_"):
        return f"AUROC ({column[len('auroc_') :].replace('_', ' ')})"
    if column.endswith("_rank") and column != "mean_rank":
        return f"{HEADERS.get(column[:-5], column[:-5])} rank"
    name = HEADERS.get(column, column.replace("_", " "))
    direction = _directions().get(column)
    return f"{name} {'↑' if direction else '↓'}" if direction is not None else name


def _directions() -> dict[str, bool]:
    """Each metric's direction: the built-in table, then every registered metric's ``higher_is_better``."""
    from harness.plugins import get_plugins

    return {**HIGHER_IS_BETTER, **{name: spec.higher_is_better for name, spec in get_plugins().metrics().items()}}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
    return str(value)


def _with_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Add "x_ci" text columns ("[low, high]") for every x_ci_low / x_ci_high pair."""
    import pandas as pd

    frame = frame.copy()
    for low in [c for c in frame.columns if c.endswith("_ci_low")]:
        base = low[: -len("_low")]
        high = f"{base}_high"
        if high in frame:
            frame[base] = [
                f"[{a:.3f}, {b:.3f}]" if pd.notna(a) else "–" for a, b in zip(frame[low], frame[high], strict=True)
            ]
    return frame


def _value(row: Mapping[str, Any], column: str) -> str:
    """A cell's text: ranks as whole numbers, a '*' where a lead is significant."""
    value = row[column]
    if column.endswith("_rank") and isinstance(value, float) and value.is_integer():  # ranks carry no unit
        return str(int(value))
    readable = quantity(column, value)
    return (_cell(value) if readable is None else readable) + _mark(row, column)


def _mark(row: Mapping[str, Any], column: str) -> str:
    """'*' after a value whose lead over the next-ranked model holds (a ``<column>_significant`` flag)."""
    import pandas as pd

    flag = row.get(f"{column}_significant")
    if isinstance(flag, str):
        return "*" if flag == "True" else ""
    significant = isinstance(flag, (bool, np.bool_, int, float, np.number)) and not pd.isna(flag) and bool(flag)
    return "*" if significant else ""  # 1.0 where summary.csv's flags met NaN of per-job rows


def row_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row as a dict holding the values ``frame.iterrows()`` gives (both read ``frame.values``), ~50x faster."""
    columns = list(frame.columns)
    return [dict(zip(columns, values, strict=True)) for values in frame.values]


def _table(frame: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    frame = _with_intervals(frame)
    columns = [c for c in columns if c in frame.columns]
    records = row_records(frame)  # one pass over the rows for cells and oracle marks
    table = {
        "columns": columns,
        "headers": [_header(c) for c in columns],
        "rows": [
            [(_value(row, c), row[c] if isinstance(row[c], (int, float)) else str(row[c])) for c in columns]
            for row in records
        ],
        "oracle": [bool(row.get("oracle", False)) for row in records],
        "sticky": sticky_count(columns),
    }
    return fold_intervals(table)  # column groups of the columns it keeps


def _environment(**options: Any) -> Environment:
    """Jinja2 over the report templates (HTML autoescaped); ``options`` override the environment's settings."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    settings = {"autoescape": select_autoescape(["html", "j2"]), "trim_blocks": True, "lstrip_blocks": True}
    return Environment(loader=FileSystemLoader(templates_dir()), **{**settings, **options})


def render_reports(out: Path, formats: tuple[str, ...] | list[str]) -> list[Path]:
    """Render the requested formats from the stored results in ``out`` (``results.csv``, ``run.json``, ``figures/``)."""
    from harness.analyses.base import successful
    from harness.plugins import get_plugins
    from harness.report.finding import finding_of

    rows, run, manifest = load_results(out)
    figure_dir = out / "figures"
    plugins = get_plugins()
    analysis = plugins.analysis(run["protocol"], key="protocol (from run.json)")
    summary = analysis.summarise(rows)
    ok = successful(rows)
    failed = rows[rows["status"] == "failed"] if "status" in rows else rows.iloc[0:0]
    categories = list(dict.fromkeys(ok["category"])) if not ok.empty else []
    context = {
        "run": run,
        "title": run.get("title") or run["protocol"],
        "analysis": analysis,
        "summary": summary,
        "categories": categories,
        "failed": failed,
        "finding": finding_of(analysis, ok, summary),
        "has_oracle": "oracle" in summary and bool(summary["oracle"].any()),
        "sections": plugins.report_sections(rows, run, out),  # e.g. the dataset audit the run stored
    }
    written = []
    if "html" in formats:
        path = out / "report.html"
        write_atomic(path, _render_html(context, ok, manifest, figure_dir))
        written.append(path)
    if "latex" in formats:
        path = out / "report.tex"
        text, tables = render_latex(context, ok, manifest, figure_dir, out)
        write_atomic(path, text)
        written.extend([path, *tables])  # tables/*.tex: one \input-able file per table
    return written


def _figure_data(manifest: list[dict[str, Any]], figure_dir: Path) -> list[dict[str, Any]]:
    """Figures as inline PNG data, tables as rendered rows."""
    import pandas as pd

    items = []
    for entry in manifest:  # checked by load_results: plain names of files inside figure_dir
        path = figure_dir / entry["file"]
        if not path.is_file() or path.is_symlink():
            continue
        if entry.get("kind") == "table":
            frame = pd.read_csv(path)
            items.append({**entry, "table": _table(frame, list(frame.columns))})
        else:
            data = base64.b64encode(path.read_bytes()).decode()
            items.append({**entry, "src": f"data:image/png;base64,{data}"})
    return items


def _render_html(context: dict[str, Any], ok: pd.DataFrame, manifest: list[dict[str, Any]], figure_dir: Path) -> str:
    figures = _figure_data(manifest, figure_dir)
    summary, analysis = context["summary"], context["analysis"]
    per_category = [
        {
            "name": name,
            "table": _table(ok[ok["category"] == name], analysis.columns("detail", ok)),
            "figures": [f for f in figures if f.get("category") == name],
        }
        for name in context["categories"]
    ]
    template = _environment().get_template("report.html.j2")
    return template.render(
        **context,
        leaderboards=[] if summary.empty else split_cost(_table(summary, analysis.columns("leaderboard", summary))),
        general_figures=[f for f in figures if not f.get("category")],
        per_category=per_category,
        failed_rows=context["failed"].to_dict("records"),
        fmt=fmt,
        weights=dict(zip(ok["model"], ok["weights"], strict=True)) if "weights" in ok else {},
        run_json=json.dumps({k: v for k, v in context["run"].items() if k != "jobs"}, indent=2),
        extra_sections=[_section(s) for s in context["sections"]],
    )


def _section(section: Any) -> dict[str, Any]:
    """A plugin's :class:`~harness.contract.ReportSection` as the template shows it (escaped there)."""
    paragraphs = [p.strip() for p in section.text.split("\n\n") if p.strip()]
    table = _table(section.table, list(section.table.columns)) if section.table is not None else None
    return {"title": section.title, "paragraphs": paragraphs, "table": table}
