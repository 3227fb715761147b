"""What ``harness run`` tells the user: log lines per job, a results table at the end, ``run.log``.

Logging is Python's :mod:`logging` under the ``harness`` logger. The console handler writes to
stdout at INFO (``-q``: WARNING, ``-v``: DEBUG), so that stderr carries only warnings and the one
``Error:`` line of a failure; per-job lines appear only when stdout is not a terminal (CI, SLURM,
nohup), where no progress bar is drawn. ``run.log`` in the output
folder records everything at DEBUG, per-job lines included.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import OutputError

LOGGER = "harness"
RUN_LOG = "run.log"
FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
PROVENANCE = {"weights", "categories", "seeds", "n_test", "n_anomalous", "oracle"}
TABLE_COLUMNS = 9
"""Columns of the leaderboard the console table shows (identity and metrics first)."""

log = logging.getLogger(LOGGER)


def console_filter(stream: Any) -> Callable[[logging.LogRecord], bool]:
    """What the console shows of the log (a filter for its handler).

    No per-job lines on a terminal (the progress bar shows them there), and no warnings or errors:
    the CLI's own ``Warning:`` handler prints those (they would print twice).
    """
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    return lambda record: record.levelno < logging.WARNING and not (terminal and getattr(record, "job", False))


@contextmanager
def run_logging(out: Path, verbosity: int = 0, stream: Any = None) -> Iterator[Path]:
    """Log to the console at ``verbosity`` and to ``out/run.log`` at DEBUG while the block runs.

    The log is written to a temporary file and placed in ``out`` (and listed among the files the
    harness wrote) when the block ends, so nothing is created in ``out`` before the run's checks.
    """
    stream = stream or sys.stdout
    console = logging.StreamHandler(stream)
    console.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)  # -q, -v
    console.addFilter(console_filter(stream))
    console.setFormatter(logging.Formatter("%(message)s"))
    try:
        handle, temporary = tempfile.mkstemp(prefix="harness-run-", suffix=".log")
    except OSError as exc:
        raise OutputError(
            f"cannot write the run's log in the temporary folder {tempfile.gettempdir()}: "
            f"{exc.strerror or exc}; point TMPDIR at a writable folder"
        ) from None
    os.close(handle)
    file = logging.FileHandler(temporary, mode="w", encoding="utf-8")
    file.setLevel(logging.DEBUG)
    file.setFormatter(logging.Formatter(FORMAT))
    previous = log.level
    log.setLevel(logging.DEBUG)
    log.addHandler(console)
    log.addHandler(file)
    completed = False
    try:
        yield out / RUN_LOG
        completed = True
    finally:
        log.removeHandler(console)
        log.removeHandler(file)
        file.close()
        log.setLevel(previous)
        if completed:  # a run stopped by bad input leaves the output folder exactly as it was
            _place_log(Path(temporary), out)
        else:
            Path(temporary).unlink(missing_ok=True)


def _place_log(temporary: Path, out: Path) -> None:
    """Move the run's log to ``out/run.log`` when the run wrote ``out`` (never over a file it did not write)."""
    from harness.ownership import check_not_foreign, record

    try:
        if (out / "run.json").is_file():
            check_not_foreign(out, [RUN_LOG])
            shutil.move(temporary, out / RUN_LOG)
            record(out, [RUN_LOG])
    except OutputError as exc:
        log.warning(f"run.log not written: {exc}")
    finally:
        temporary.unlink(missing_ok=True)


def job_line(done: int, total: int, job: Any, status: str, error: str | None = None) -> None:
    """One line per finished job: ``[3/8] padim / bottle (seed 0): fitted``."""
    where = f"{job.model.label} / {job.category.name} (seed {job.seed})"
    text = f"[{done}/{total}] {where}: {status}" + (f": {error}" if error else "")
    log.info(text, extra={"job": True})  # a failure's reason is in results.csv and the run's one Error: line


def results_table(summary: pd.DataFrame, columns: list[str], headers: dict[str, str]) -> str:
    """The leaderboard as a compact fixed-width table (lm-evaluation-harness style)."""
    keep = [c for c in columns if c in summary.columns and c not in PROVENANCE][:TABLE_COLUMNS]
    table = summary[keep].copy()
    for column in keep:
        if pd.api.types.is_float_dtype(table[column]):
            digits = 1 if column.endswith("gap") else 3
            table[column] = table[column].map(lambda v, d=digits: "–" if pd.isna(v) else f"{v:.{d}f}")
    table.columns = [headers.get(c, c) for c in keep]
    return table.to_string(index=False)


def summary_text(out: Path) -> str:
    """The finding and the results table of a finished output folder, as the console shows them."""
    from harness.analyses.base import successful
    from harness.plugins import get_plugins
    from harness.report import _header, load_results
    from harness.report.finding import finding_of

    rows, run, _ = load_results(out)
    analysis = get_plugins().analysis(run["protocol"], key="protocol (from run.json)")
    summary = analysis.summarise(rows)
    if summary.empty:
        return "no job finished"
    columns = analysis.columns("leaderboard", summary)
    table = results_table(summary, columns, {c: _header(c) for c in columns})
    headline = finding_of(analysis, successful(rows), summary).headline
    return f"{run['protocol']} (v{run.get('protocol_version', '?')})\n{table}\n\n{headline}"
