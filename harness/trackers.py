"""Log a finished run to experiment trackers: ``harness run --tracker NAME[=DEST]`` and ``harness track``.

Trackers are plugins (``harness_trackers``; MLflow and TensorBoard ship in plugins/harness_trackers).
The core parses the option, checks the tracker and the package it needs before anything is fitted,
reads the finished run back and hands each tracker the run, the summary and the finding.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.errors import HarnessError, unknown_name_message


def parse_tracker(text: str) -> tuple[str, str | None]:
    """``"mlflow"`` -> ("mlflow", None); ``"tensorboard=logs/tb"`` -> ("tensorboard", "logs/tb")."""
    from harness.plugins import get_plugins

    name, _, destination = text.partition("=")
    name = name.strip().lower()
    registry = get_plugins().registry("trackers")
    if name not in registry:
        raise HarnessError(unknown_name_message("tracker", name, registry) + " (e.g. --tracker mlflow)")
    requires = getattr(registry[name], "requires", None)
    if requires and importlib.util.find_spec(requires) is None:
        raise HarnessError(f"tracker '{name}' needs the {requires} package: pip install 'adharness[trackers]'")
    return name, destination or None


def log_run(out: Path, trackers: list[tuple[str, str | None]]) -> list[str]:
    """Log the finished run in ``out`` to each (tracker, destination); one line per tracker says where."""
    from harness.analyses.base import successful
    from harness.plugins import get_plugins
    from harness.report import load_results
    from harness.report.finding import finding_of

    rows, run, _ = load_results(out)
    plugins = get_plugins()
    analysis = plugins.analysis(run["protocol"], key="protocol (from run.json)")
    summary = analysis.summarise(rows)
    finding = finding_of(analysis, successful(rows), summary)
    registry = plugins.registry("trackers")
    return [
        registry[name](out=out, run=run, summary=summary, finding=finding, destination=destination)
        for name, destination in trackers
    ]
