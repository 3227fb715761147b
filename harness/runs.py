"""The API for command and executor authors: finished runs, their scores and tables; running one job.

Public, like :mod:`harness` itself: ``harness compare``, ``harness export`` and ``harness new-plugin``
(plugins/harness_tools, ``harness_commands``) and the ``ray`` and ``submitit`` executors
(plugins/harness_executors, ``harness_executors``) import from here and from ``harness`` only, so a
third party's command or executor can do everything they do. Every name is imported on first use. ::

    from harness.runs import load_results, run_identity
"""

from __future__ import annotations

from harness.lazy import lazy_names

_NAMES = {
    "harness.data.shaping": "open_dataset",
    "harness.errors": "OutputError",
    "harness.executors": "PASS_ENV execute_job job_progress",
    "harness.metrics": "holdout_pixel_threshold",
    "harness.planning": "resolve",
    "harness.plugins": "get_plugins",
    "harness.protocol": "load_protocol",
    "harness.report": "html_table load_results",
    "harness.report.finding": "primary_metric",
    "harness.report.latex_tables": "LatexWriter latex_table tex",
    "harness.results_files": "run_identity",
    "harness.scoring": "FittedJob Job JobView",
    "harness.store": "ScoreCache",
}
_PRIVATE = {"html_table": "_table", "job_progress": "_progress", "run_identity": "identity"}
"""Public spellings: a data frame's columns as the report's HTML table, the jobs' progress bar, a run's identity."""

__all__, __getattr__, __dir__ = lazy_names("harness.runs", _NAMES, _PRIVATE)
