"""Provenance: the typed run record written to ``run.json`` (what ran, on what, with which versions)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness.metrics import distribution_version

LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "matplotlib",
    "pluggy",
    "torch",
    "torchvision",
    "anomalib",
    "lightning",
    "timm",
)
JOB_META_KEYS = ("weights", "fit_seconds", "score_seconds", "n_fit", "n_holdout", "n_test")


def library_versions() -> dict[str, str]:
    """Python, the harness and the installed libraries that can change a number."""
    installed = {name: distribution_version(name) for name in LIBRARIES}
    versions = {name: found for name, found in installed.items() if found != "absent"}
    return {"python": platform.python_version(), "harness": harness.__version__, **versions}


def hardware() -> dict[str, Any]:
    """Platform, CPU count, memory and the GPUs torch sees (only when torch is already imported)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    torch = sys.modules.get("torch")
    gpus = torch.cuda.device_count() if torch is not None and torch.cuda.is_available() else 0
    return {**info, "gpu": [torch.cuda.get_device_name(i) for i in range(gpus)]}


def git_revision() -> str | None:
    """The harness checkout's git revision, when it is one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(harness.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


@dataclass
class RunRecord:
    """Everything ``run.json`` holds; field names are its keys (a public, documented schema)."""

    protocol: str
    protocol_version: int
    protocol_file: str
    title: str
    command: list[str]
    config: dict[str, Any]
    seeds: list[int]
    supervision: dict[str, Any]
    calibrations: list[dict[str, Any]]
    dataset: dict[str, Any]
    jobs: list[dict[str, Any]]
    counts: dict[str, int]
    cache: str
    report_formats: list[str]
    versions: dict[str, str] = field(default_factory=library_versions)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    protocol_plugin: dict[str, Any] = field(default_factory=dict)
    """The plugin whose code the protocol kind's analysis is (its ``plugins`` entry): e.g. harness_paradigms."""
    harness_git_revision: str | None = field(default_factory=git_revision)
    hardware: dict[str, Any] = field(default_factory=hardware)
    started: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object written to ``run.json``."""
        return asdict(self)


def _plugin_record(info: Any) -> dict[str, Any]:
    return {"name": info.name, "version": info.version, "source": info.source, "error": info.error}


def dataset_record(config: Any, categories: dict[str, Any]) -> dict[str, Any]:
    """The dataset part of the run record: layout, root, size and per category its fingerprint and counts."""
    return {
        "layout": config.effective_layout,
        "root": str(config.root) if config.root else None,
        "image_size": list(config.image_size),
        "categories": {
            name: {
                "fingerprint": c.fingerprint(),
                "train": len(c.split("train")),
                "test": len(c.split("test")),
                "supervised": len(c.split("supervised")),
                "defect_types": c.defect_types,
                "families": c.families,
            }
            for name, c in categories.items()
        },
    }


def job_record(outcome: Any, cache: Any) -> dict[str, Any]:
    """One job of the run record: who, what became of it, and its cached timings."""
    job = outcome.job
    record = {
        "model": job.model.label,
        "category": job.category.name,
        "seed": job.seed,
        "key": job.key,
        "status": outcome.status,
        "error": outcome.error,
    }
    if outcome.status != "failed":
        meta = cache.meta(job.key)
        record.update({k: meta.get(k) for k in JOB_META_KEYS})
    return record


def build_run_record(run: Any, cache: Any, argv: list[str] | None, timings: dict[str, float]) -> RunRecord:
    """The run record of a finished run (``run`` is the runner's :class:`~harness.runner.RunState`)."""
    protocol, jobs, outcomes = run.plan.protocol, run.plan.jobs, run.outcomes
    categories = {c.name: c for job in jobs for c in (job.category, *job.evaluated) if not c.members}
    return RunRecord(
        protocol=protocol.protocol,
        protocol_version=protocol.version,
        protocol_file=str(protocol.path),
        title=protocol.title,
        command=list(argv or sys.argv),
        config=protocol.raw,
        seeds=list(protocol.seeds),
        supervision=dict(protocol.supervision),
        calibrations=[{"label": c.label, "name": c.name, "oracle": c.oracle} for c in run.plan.calibrations],
        dataset=dataset_record(protocol.dataset, categories),
        jobs=[job_record(o, cache) for o in outcomes],
        counts={status: sum(o.status == status for o in outcomes) for status in ("fitted", "cached", "failed")},
        cache=str(cache.root.resolve()),
        report_formats=list(protocol.report_formats),
        plugins=[_plugin_record(info) for info in run.plugins.infos],
        protocol_plugin=_plugin_record(run.plugins.owner("protocols", protocol.protocol)),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(run.started)),  # local ISO time
        timings=timings,
    )
