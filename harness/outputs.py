"""Write: results, figures, per-image scores, the run record and the reports, staged into the output folder."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from harness.analyses.base import AnalysisContext, AnalysisResult
from harness.provenance import RunRecord
from harness.report import render_reports
from harness.results_files import typed, write_machine_readable
from harness.store import json_dumps, staged_output, write_atomic

LEADING_COLUMNS = ("model", "category", "seed", "calibration", "status", "error")
"""The columns every results.csv starts with, whatever the protocol kind; kind-specific columns follow."""
SUMMARY_FILE = "summary.csv"
"""Aggregate rows (group, global, mean, pooled) of kinds that compute them; per-job rows stay in results.csv."""


def with_leading_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with :data:`LEADING_COLUMNS` first (empty where a kind has none), the kind's own after."""
    return rows.reindex(columns=[*LEADING_COLUMNS, *(c for c in rows.columns if c not in LEADING_COLUMNS)])


def split_aggregates(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-job rows, aggregate rows): rows whose ``aggregate`` is not a per-category one go to the summary."""
    if "aggregate" not in rows:
        return rows, rows.iloc[0:0]
    per_job = rows["aggregate"].isna() | rows["aggregate"].astype(str).str.endswith("category")
    return rows[per_job].reset_index(drop=True), rows[~per_job].reset_index(drop=True)


def failure_rows(outcomes: list[Any]) -> pd.DataFrame:
    """One row per failed job: who failed, why, and its cache key."""
    return pd.DataFrame(
        [
            {
                "model": o.job.model.label,
                "category": o.job.category.name,
                "seed": o.job.seed,
                "status": "failed",
                "error": o.error,
                "cache_key": o.job.key,
            }
            for o in outcomes
            if o.status == "failed"
        ]
    )


def write_outputs(run: Any, job_data: list[Any], record: Any) -> None:
    """Analyse and write everything into ``run.out`` through a staging folder (earlier results survive a failure).

    ``record`` is called with no argument once the analysis is done and returns the :class:`RunRecord`.
    """
    with staged_output(run.out) as stage:
        figure_dir = stage / "figures"
        figure_dir.mkdir()
        protocol = run.plan.protocol  # the kind's analysis runs over the cached scores; it never sees a detector
        context = AnalysisContext(job_data, run.plan.calibrations, figure_dir, protocol.analysis, protocol.seeds[0])
        result: AnalysisResult = run.plan.analysis.analyse(context)
        failures = failure_rows(run.outcomes)
        rows = pd.concat([result.rows, failures], ignore_index=True) if not failures.empty else result.rows
        rows = typed(rows)  # counts as integers in every format
        per_job, aggregates = split_aggregates(with_leading_columns(rows))
        write_atomic(stage / "results.csv", per_job.to_csv(index=False))
        if not aggregates.empty:
            write_atomic(stage / SUMMARY_FILE, aggregates.to_csv(index=False))
        write_atomic(figure_dir / "manifest.json", json_dumps([vars(f) for f in result.figures]))
        for job in job_data:  # the per-image scores behind this report, beside it
            write_atomic(stage / "scores" / f"{job.key}.csv", job.scores.to_csv(index=False))
        if getattr(run, "audit", None) is not None:  # audit.json: what the dataset audit found (harness_run_audit)
            write_atomic(stage / "audit.json", json_dumps(run.audit))
        run_record: RunRecord = record()
        write_atomic(stage / "run.json", json_dumps(run_record.to_json()))
        write_machine_readable(stage, rows, run.plan.analysis, json.loads(json_dumps(run_record.to_json())))
        render_reports(stage, protocol.report_formats)  # from the files just staged
