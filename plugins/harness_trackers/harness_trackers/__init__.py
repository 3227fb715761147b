"""harness plugin: log a finished run's results and figures to experiment trackers, MLflow and TensorBoard.

``harness run PROTOCOL --tracker mlflow --tracker tensorboard`` (or ``harness track OUT ...`` on a
finished folder) logs, from the stored results only:

- parameters: protocol, its version, models, calibrations, seeds, dataset layout and categories,
  harness version (MLflow params; TensorBoard text);
- metrics: every leaderboard number as ``<model>/<calibration>/<metric>`` (plus the setting
  where the protocol kind has one), and the finding's numbers under ``finding/``;
- artifacts: results.csv/json/parquet, run.json, the reports and figures (MLflow); figures as
  images and the finding as text (TensorBoard).

Destinations: ``mlflow`` uses ``$MLFLOW_TRACKING_URI`` or ``./mlruns`` (MLflow's local file store,
as anomalib's MLFlowLogger does); ``mlflow=URI`` names one. ``tensorboard`` writes to
``OUT/tensorboard``; ``tensorboard=DIR`` names the log folder. Both libraries are optional
(``pip install adharness[trackers]``); naming a tracker whose library is not installed is a usage
error. Registered through ``harness_trackers``; the core (:mod:`harness.trackers`) reads the run
back and hands each tracker the summary and the finding.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness

__version__ = "0.1.0"

ARTIFACTS = ("results.csv", "results.json", "results.parquet", "run.json", "report.html", "report.tex")
KEY_COLUMNS = ("model", "calibration", "setting", "fraction", "mode", "group")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./ ]+")


def _key(*parts: object) -> str:
    return "/".join(_UNSAFE.sub("_", str(p)) for p in parts if p is not None and str(p) != "")


def metrics_of(summary: Any, finding: Any) -> dict[str, float]:
    """Every finite leaderboard number as ``<model>/<calibration>/<metric>``, the finding's as ``finding/...``."""
    keys = [c for c in KEY_COLUMNS if c in summary.columns]
    metrics: dict[str, float] = {}
    for _, row in summary.iterrows():
        for column, value in row.items():
            if column in keys or isinstance(value, (bool, str)) or column == "oracle":
                continue
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                metrics[_key(*(row[k] for k in keys), column)] = float(value)
    for name, value in (finding.numbers if finding is not None else {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            metrics[_key("finding", name)] = float(value)
    return metrics


def _entry(entry: Any) -> str:
    return str(entry.get("label") or entry.get("name")) if isinstance(entry, dict) else str(entry)


def params_of(run: dict[str, Any]) -> dict[str, str]:
    """What identifies the run, as flat string parameters."""
    config = run.get("config", {})
    return {
        "protocol": str(run.get("protocol")),
        "protocol_version": str(run.get("protocol_version")),
        "harness_version": str(run.get("versions", {}).get("harness")),
        "models": ", ".join(map(_entry, config.get("models", []))),
        "calibrations": ", ".join(map(_entry, config.get("calibrations", []))),
        "seeds": ", ".join(map(str, run.get("seeds", []))),
        "dataset_layout": str(run.get("dataset", {}).get("layout")),
        "categories": ", ".join(run.get("dataset", {}).get("categories", {})),
    }


def _figures(out: Path) -> Iterator[Path]:
    yield from sorted((out / "figures").glob("*.png"))


def log_mlflow(out: Path, run: dict, metrics: dict[str, float], headline: str, uri: str | None) -> str:
    """Log one MLflow run (experiment = protocol name); returns its run id."""
    import mlflow

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's opt-in for its local file store
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(str(run.get("protocol")))
    with mlflow.start_run(run_name=out.resolve().name) as active:
        mlflow.log_params(params_of(run))
        mlflow.set_tags({"harness.out": str(out.resolve()), "harness.finding": headline[:5000]})
        mlflow.log_metrics(metrics)
        for name in ARTIFACTS:
            if (out / name).is_file():
                mlflow.log_artifact(str(out / name))
        for figure in _figures(out):
            mlflow.log_artifact(str(figure), artifact_path="figures")
        return active.info.run_id


def log_tensorboard(out: Path, run: dict, metrics: dict[str, float], headline: str, log_dir: str | None) -> Path:
    """Write scalars, figures and the finding as TensorBoard events; returns the log folder."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(log_dir) if log_dir else out / "tensorboard"
    with SummaryWriter(log_dir=str(folder)) as writer:
        for key, value in metrics.items():
            writer.add_scalar(key, value, 0)
        writer.add_text("finding", headline, 0)
        writer.add_text("run", "```\n" + json.dumps(params_of(run), indent=1) + "\n```", 0)
        for figure in _figures(out):
            with Image.open(figure) as image:
                writer.add_image(f"figures/{figure.stem}", np.asarray(image.convert("RGB")), 0, dataformats="HWC")
    return folder


@dataclass(frozen=True)
class Tracker:
    """A tracker as ``harness_trackers`` registers it: the module it needs and what it logs."""

    requires: str
    log: Callable[..., str]

    def __call__(self, out: Path, run: dict, summary: Any, finding: Any, destination: str | None) -> str:
        """Log the run in ``out``; one line says where."""
        metrics = metrics_of(summary, finding) if not summary.empty else {}
        return self.log(out, run, metrics, finding.headline if finding is not None else "", destination)


def _mlflow(out: Path, run: dict, metrics: dict[str, float], headline: str, destination: str | None) -> str:
    return f"logged to MLflow run {log_mlflow(out, run, metrics, headline, destination)}"


def _tensorboard(out: Path, run: dict, metrics: dict[str, float], headline: str, destination: str | None) -> str:
    return f"logged to TensorBoard in {log_tensorboard(out, run, metrics, headline, destination)}"


@harness.hookimpl
def harness_trackers() -> dict[str, Tracker]:
    """MLflow and TensorBoard."""
    return {"mlflow": Tracker("mlflow", _mlflow), "tensorboard": Tracker("tensorboard", _tensorboard)}
