"""``harness run``: protocol -> jobs (fit + score, cached) -> analysis -> results and reports."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import harness
from harness.analyses.base import AnalysisContext, CalibrationSpec, JobData
from harness.data.base import Category, Record, load_mask, subsample
from harness.data.synthetic import harness_home
from harness.errors import DatasetError, ProtocolError, unknown_name_message
from harness.executors import build_executor
from harness.plugins import Plugins, get_plugins
from harness.protocol import DatasetConfig, ModelConfig, Protocol
from harness.report import render_reports
from harness.scoring import Job, JobOutcome, TrainingSubset
from harness.store import ScoreCache, json_dumps, output_lock, staged_output, write_atomic

CACHE_ENV = "HARNESS_CACHE_DIR"
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


@dataclass
class RunSummary:
    """What a run did: job counts by status and where the outputs are."""

    out: Path
    outcomes: list[JobOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Number of jobs with ``status`` ("cached", "fitted", "failed")."""
        return sum(outcome.status == status for outcome in self.outcomes)


def open_dataset(config: DatasetConfig, plugins: Plugins) -> Any:
    """Build the dataset source named by the protocol's layout."""
    layout = plugins.get("datasets", config.effective_layout, key="dataset.layout")
    root = config.root
    try:
        return layout(root, **config.effective_options)
    except TypeError as exc:
        raise ProtocolError(
            f"invalid options for layout '{config.effective_layout}': {exc}", key="dataset.options"
        ) from None


def supervise(test: list[Record], fraction: float, rng: np.random.Generator) -> list[Record]:
    """Mark a seeded ``fraction`` of each defect type's test images as training data for supervised models.

    They move to the split "supervised" and so out of every model's evaluation; each type keeps at
    least one image in the test set.
    """
    chosen: set[int] = set()
    for defect_type in sorted({r.defect_type for r in test if r.label}):
        members = [i for i, r in enumerate(test) if r.defect_type == defect_type]
        count = min(round(fraction * len(members)), len(members) - 1)
        if count > 0:
            chosen.update(rng.choice(members, size=count, replace=False).tolist())
    return [Record(r.path, "supervised", r.defect_type, r.mask_paths) if i in chosen else r for i, r in enumerate(test)]


def load_categories(
    source: Any,
    config: DatasetConfig,
    supervision: Mapping[str, Any] | None = None,
) -> list[Category]:
    """The protocol's categories, subsampled as asked, each checked to be usable."""
    found = source.categories()
    if not found:
        raise DatasetError(f"no categories found under {config.root}; check dataset.root and dataset.layout")
    names = list(config.categories) if config.categories else found
    for name in names:
        if name not in found:
            raise ProtocolError(unknown_name_message("category", name, found), key="dataset.categories")
    categories = []
    for name in names:
        category = source.load(name)
        rng = np.random.default_rng(0)  # the subsample is part of the data, the same for every seed
        train = subsample(category.split("train"), config.max_train_images, rng)
        test = []
        for defect_type in sorted({r.defect_type for r in category.split("test")}):
            records = [r for r in category.split("test") if r.defect_type == defect_type]
            test.extend(subsample(records, config.max_test_images_per_type, rng))
        if config.rebalance_normals:
            train, test = rebalance(train, test, config.rebalance_normals, rng)
        if supervision:
            test = supervise(
                test, supervision["anomaly_train_fraction"], np.random.default_rng(supervision.get("seed", 0))
            )
        category = Category(category.name, train + test, category.families)
        if len(train) < 2:
            raise DatasetError(f"category '{name}' has {len(train)} defect-free training images; at least 2 are needed")
        if not any(r.label for r in test) or all(r.label for r in test):
            raise DatasetError(
                f"category '{name}' needs both defect-free and defective test images; "
                f"found {len(test)} test images ({sum(r.label for r in test)} defective)"
            )
        categories.append(category)
    return categories


def rebalance(
    train: list[Record], test: list[Record], share: float, rng: np.random.Generator, keep_train: int = 10
) -> tuple[list[Record], list[Record]]:
    """Move seeded training normals into the test set until ``share`` of it is good (paper 001).

    At least ``keep_train`` training images stay (or all, when there are fewer).
    """
    good = sum(1 for r in test if not r.label)
    defective = len(test) - good
    wanted = int(np.ceil(share * defective / (1 - share))) - good
    movable = max(0, len(train) - keep_train)
    count = min(max(wanted, 0), movable)
    if count == 0:
        return train, test
    chosen = set(rng.choice(len(train), size=count, replace=False).tolist())
    moved = [Record(r.path, "test", r.defect_type, r.mask_paths) for i, r in enumerate(train) if i in chosen]
    return [r for i, r in enumerate(train) if i not in chosen], test + moved


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "harness": harness.__version__}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        info["gpu"] = []
    return info


def _git_revision() -> str | None:
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


def build_calibrations(protocol: Protocol, plugins: Plugins) -> list[CalibrationSpec]:
    """Instantiate the protocol's calibrators (bad options are protocol errors)."""
    specs = []
    for index, entry in enumerate(protocol.calibrations):
        factory = plugins.get("calibrations", entry.name, key=f"calibrations.{index}.name")
        try:
            calibrator = factory(**dict(entry.options))
        except TypeError as exc:
            raise ProtocolError(
                f"invalid options for calibration '{entry.name}': {exc}",
                path=protocol.path,
                key=f"calibrations.{index}.options",
            ) from None
        specs.append(CalibrationSpec(entry.label, entry.name, calibrator))
    return specs


def check_model_options(protocol: Protocol, plugins: Plugins, labels: set[str] | None = None) -> None:
    """Let each model's factory reject unknown options (may import the model's library)."""
    for index, model in enumerate(protocol.models):
        if labels is not None and model.label not in labels:
            continue
        check = getattr(plugins.get("models", model.name), "check_options", None)
        if check is not None:
            try:
                check(dict(model.options), key=f"models.{index}.options")
            except ProtocolError as exc:
                raise ProtocolError(str(exc), path=protocol.path) from None


@dataclass(frozen=True)
class JobMaker:
    """Builds jobs for a protocol; analyses that need other jobs than the standard ones use it."""

    protocol: Protocol
    plugins: Plugins

    def __call__(
        self, model: ModelConfig, category: Category, seed: int, test_categories: tuple[Category, ...] = ()
    ) -> Job:
        """A job fitting ``model`` on ``category`` with ``seed``, scoring ``test_categories`` (default itself)."""
        info = self.plugins.owner("models", model.name)
        factory_version = str(getattr(self.plugins.get("models", model.name), "version", ""))
        subset = TrainingSubset(self.protocol.holdout_fraction, seed)
        return Job(
            model,
            category,
            seed,
            subset,
            self.protocol.dataset.image_size,
            info.name,
            info.version,
            factory_version,
            test_categories,
            dict(self.protocol.efficiency),
        )

    def standard(self, categories: list[Category]) -> list[Job]:
        """One job per category, model and seed: fit on the category, score its own test images."""
        return [
            self(model, category, seed)
            for category in categories
            for model in self.protocol.models
            for seed in self.protocol.seeds
        ]


def plan(
    protocol: Protocol,
    plugins: Plugins | None = None,
    check_options: bool = True,
) -> tuple[list[Job], list[CalibrationSpec], Any]:
    """Validate everything a run needs and list its jobs; runs no model."""
    plugins = plugins or get_plugins()
    analysis = plugins.get("protocols", protocol.protocol, key="protocol")
    accepted = set(getattr(analysis, "options", ()))
    for name in protocol.analysis:
        if name not in accepted:
            raise ProtocolError(
                unknown_name_message(f"analysis option of {protocol.protocol}", str(name), accepted),
                path=protocol.path,
                key=f"analysis.{name}",
            )
    check = getattr(analysis, "check_options", None)
    if check is not None:
        check(dict(protocol.analysis))
    for index, model in enumerate(protocol.models):
        plugins.get("models", model.name, key=f"models.{index}.name")
    if check_options:
        check_model_options(protocol, plugins)
    calibrations = build_calibrations(protocol, plugins)
    for index, model in enumerate(protocol.models):
        if getattr(plugins.get("models", model.name), "supervised", False) and not protocol.supervision:
            raise ProtocolError(
                f"model '{model.name}' is supervised: declare how many labelled anomalies it may "
                "train on, e.g. supervision: {anomaly_train_fraction: 0.5}",
                path=protocol.path,
                key=f"models.{index}.name",
            )
    categories = load_categories(open_dataset(protocol.dataset, plugins), protocol.dataset, protocol.supervision)
    maker = JobMaker(protocol, plugins)
    planner = getattr(analysis, "plan_jobs", None)
    jobs = planner(protocol, categories, maker) if planner else maker.standard(categories)
    return jobs, calibrations, analysis


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``$HARNESS_HOME/scores``: one cache shared by every protocol."""
    return Path(os.environ.get(CACHE_ENV) or harness_home() / "scores")


def _masks_loader(categories: tuple[Category, ...], size: tuple[int, int]):
    memo: dict[str, np.ndarray | None] = {}

    def load() -> np.ndarray | None:
        if "masks" not in memo:
            test = [r for category in categories for r in category.split("test")]
            has_masks = any(r.mask_paths for r in test if r.label)
            memo["masks"] = np.stack([load_mask(r.mask_paths, size) for r in test]) if has_masks else None
        return memo["masks"]

    return load


def execute(
    jobs: list[Job], protocol: Protocol, plugins: Plugins, cache: ScoreCache, executor: Any | None = None
) -> list[JobOutcome]:
    """Run every job not yet in ``cache`` on ``executor``; a failing job is recorded, the others go on."""
    executor = executor or build_executor(protocol.executor)
    todo = list({job.key: job for job in jobs if not cache.has(job.key)}.values())
    # options are checked only for models that will be fitted: cached jobs need no model library
    check_model_options(protocol, plugins, {job.model.label for job in todo})
    results: dict[str, tuple[str, str | None]] = {}
    if todo:
        for key, status, error in executor.run(todo, cache.root):
            results[key] = (status, error)
    outcomes = []
    for job in jobs:
        status, error = results.get(job.key, ("cached", None))
        outcomes.append(JobOutcome(job, status, error))
    return outcomes


def collect(outcomes: list[JobOutcome], cache: ScoreCache) -> list[JobData]:
    """What the analysis gets: cached scores of every job that did not fail, masks on demand."""
    loaders: dict[tuple[str, ...], Any] = {}
    data = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.status == "failed":
            continue
        names = tuple(c.name for c in job.evaluated)
        loader = loaders.setdefault(names, _masks_loader(job.evaluated, job.image_size))
        data.append(
            JobData(
                job.model.label,
                job.category.name,
                job.seed,
                job.key,
                cache.meta(job.key),
                cache.scores(job.key),
                lambda key=job.key: cache.maps(key),
                loader,
                dict(job.category.families),
            )
        )
    return data


def run_protocol(
    protocol: Protocol, out: Path, cache_dir: Path | None = None, argv: list[str] | None = None
) -> RunSummary:
    """Run ``protocol`` into ``out``: results.csv, figures/, report.html, report.tex, run.json, scores/."""
    started = time.time()
    plugins = get_plugins()
    jobs, calibrations, analysis = plan(protocol, plugins, check_options=False)
    executor = build_executor(protocol.executor)
    with output_lock(out):
        cache = ScoreCache(cache_dir or default_cache_dir())
        summary = RunSummary(out, execute(jobs, protocol, plugins, cache, executor))
        scoring_seconds = time.time() - started
        job_data = collect(summary.outcomes, cache)
        _write_outputs(
            protocol,
            out,
            calibrations,
            analysis,
            jobs,
            summary,
            cache,
            plugins,
            job_data,
            argv,
            started,
            scoring_seconds,
        )
    return summary


def _write_outputs(
    protocol: Protocol,
    out: Path,
    calibrations: list[CalibrationSpec],
    analysis: Any,
    jobs: list[Job],
    summary: RunSummary,
    cache: ScoreCache,
    plugins: Plugins,
    job_data: list[JobData],
    argv: list[str] | None,
    started: float,
    scoring_seconds: float,
) -> None:
    with staged_output(out) as stage:
        figure_dir = stage / "figures"
        figure_dir.mkdir()
        result = analysis.analyse(
            AnalysisContext(job_data, calibrations, figure_dir, protocol.analysis, protocol.seeds[0])
        )
        failures = pd.DataFrame(
            [
                {
                    "model": o.job.model.label,
                    "category": o.job.category.name,
                    "seed": o.job.seed,
                    "status": "failed",
                    "error": o.error,
                    "cache_key": o.job.key,
                }
                for o in summary.outcomes
                if o.status == "failed"
            ]
        )
        rows = pd.concat([result.rows, failures], ignore_index=True) if not failures.empty else result.rows
        write_atomic(stage / "results.csv", rows.to_csv(index=False))
        write_atomic(figure_dir / "manifest.json", json_dumps([vars(f) for f in result.figures]))
        for job in job_data:  # the per-image scores behind this report, beside it
            write_atomic(stage / "scores" / f"{job.key}.csv", job.scores.to_csv(index=False))
        run_info = _run_record(protocol, calibrations, jobs, summary, cache, plugins, argv, started, scoring_seconds)
        write_atomic(stage / "run.json", json_dumps(run_info))
        render_reports(stage, protocol.report_formats, figure_dir=figure_dir)


def _run_record(
    protocol: Protocol,
    calibrations: list[CalibrationSpec],
    jobs: list[Job],
    summary: RunSummary,
    cache: ScoreCache,
    plugins: Plugins,
    argv: list[str] | None,
    started: float,
    scoring_seconds: float,
) -> dict[str, Any]:
    categories = {c.name: c for job in jobs for c in (job.category, *job.evaluated) if not c.members}
    return {
        "protocol": protocol.protocol,
        "protocol_version": protocol.version,
        "protocol_file": str(protocol.path),
        "title": protocol.title,
        "command": argv or sys.argv,
        "config": protocol.raw,
        "seeds": list(protocol.seeds),
        "supervision": dict(protocol.supervision),
        "calibrations": [{"label": c.label, "name": c.name, "oracle": c.oracle} for c in calibrations],
        "dataset": {
            "layout": protocol.dataset.effective_layout,
            "root": str(protocol.dataset.root) if protocol.dataset.root else None,
            "image_size": list(protocol.dataset.image_size),
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
        },
        "jobs": [
            {
                "model": o.job.model.label,
                "category": o.job.category.name,
                "seed": o.job.seed,
                "key": o.job.key,
                "status": o.status,
                "error": o.error,
                **(
                    {
                        k: cache.meta(o.job.key).get(k)
                        for k in ("weights", "fit_seconds", "score_seconds", "n_fit", "n_holdout", "n_test")
                    }
                    if o.status != "failed"
                    else {}
                ),
            }
            for o in summary.outcomes
        ],
        "counts": {status: summary.count(status) for status in ("fitted", "cached", "failed")},
        "cache": str(cache.root.resolve()),
        "versions": _library_versions(),
        "plugins": [
            {"name": i.name, "version": i.version, "source": i.source, "error": i.error} for i in plugins.infos
        ],
        "harness_git_revision": _git_revision(),
        "hardware": _hardware(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "timings": {"scoring_seconds": round(scoring_seconds, 3), "total_seconds": round(time.time() - started, 3)},
        "report_formats": list(protocol.report_formats),
    }
