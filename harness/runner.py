"""``harness run`` as a pipeline: resolve -> execute -> collect -> analyse -> write.

Each step lives in a module named for it: :mod:`harness.planning` (resolve), :mod:`harness.executors`
(execute), :mod:`harness.analyses` (analyse), :mod:`harness.outputs` and :mod:`harness.provenance`
(write). This module only holds the sequence, and the two steps that join the cache to the plan.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analyses.base import JobData, evaluation_view
from harness.analyses.common import Background
from harness.console import job_line, log
from harness.data.base import Category, load_mask
from harness.data.shaping import load_categories, open_dataset, rebalance, supervise  # noqa: F401 (re-exported)
from harness.derived_cache import DerivedCache
from harness.executors import build_executor
from harness.isolation import preload_modules
from harness.outputs import write_outputs
from harness.planning import JobMaker, RunPlan, build_calibrations, check_model_options, plan, resolve  # noqa: F401
from harness.plugins import Plugins, get_plugins
from harness.protocol import ProtocolConfig
from harness.provenance import build_run_record
from harness.scoring import Job, JobOutcome, cached_scores
from harness.store import (  # noqa: F401 (re-exported)
    CACHE_ENV,
    ScoreCache,
    check_home_and_cache,
    default_cache_dir,
    json_dumps,
    output_lock,
    preflight,
)


@dataclass
class RunSummary:
    """What a run did: job counts by status and where the outputs are."""

    out: Path
    outcomes: list[JobOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Number of jobs with ``status`` ("cached", "fitted", "failed")."""
        return sum(outcome.status == status for outcome in self.outcomes)


@dataclass
class RunState:
    """One run as it goes through the pipeline: the plan, the plugins, where it writes, what became of its jobs."""

    plan: RunPlan
    plugins: Plugins
    out: Path
    started: float
    outcomes: list[JobOutcome] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    """The dataset audit's record (``audit.json``); findings are warnings, never a change to a number."""


def execute(
    jobs: list[Job], protocol: ProtocolConfig, plugins: Plugins, cache: ScoreCache, executor: Any | None = None
) -> list[JobOutcome]:
    """Run every job not yet in ``cache`` on ``executor``; a failing job is recorded, the others go on."""
    executor = executor or build_executor(protocol.executor)
    todo = list({job.key: job for job in jobs if not cache.has(job.key)}.values())
    # options are checked only for models that will be fitted: cached jobs need no model library
    check_model_options(protocol, plugins, {job.model.label for job in todo})
    results: dict[str, tuple[str, str | None]] = {}
    log.info("%d job(s): %d to fit and score, %d from cache", len(jobs), len(todo), len(jobs) - len(todo))
    if todo:
        by_key = {job.key: job for job in todo}
        for done, (key, status, error) in enumerate(executor.run(todo, cache.root), 1):
            results[key] = (status, error)
            job_line(done, len(todo), by_key[key], status, error)
    return [JobOutcome(job, *results.get(job.key, ("cached", None))) for job in jobs]


def _masks_loader(categories: tuple[Category, ...], size: tuple[int, int]):
    """Masks of the test images, decoded once and kept bit-packed (1/8 of a boolean array); unpacked on each call.

    So a run over many categories holds a few MB per category between uses, not its decoded masks.
    """
    memo: dict[str, Any] = {}

    def load() -> np.ndarray | None:
        if "packed" not in memo:
            test = [r for category in categories for r in category.split("test")]
            has_masks = any(r.mask_paths for r in test if r.label)
            masks = np.stack([load_mask(r.mask_paths, size) for r in test]) if has_masks else None
            memo["shape"] = None if masks is None else masks.shape
            memo["packed"] = None if masks is None else np.packbits(masks, axis=None)
        if memo["packed"] is None:
            return None
        shape = memo["shape"]
        return np.unpackbits(memo["packed"], count=int(np.prod(shape))).reshape(shape).view(bool)

    return load


def collect(outcomes: list[JobOutcome], cache: ScoreCache) -> list[JobData]:
    """What the analysis gets: cached scores of every job that did not fail, masks on demand."""
    loaders: dict[tuple[str, ...], Any] = {}
    derived = DerivedCache(cache.root)  # metric values and figures kept beside the scores
    data = []
    for outcome in outcomes:
        job = outcome.job
        if outcome.status == "failed":
            continue
        names = tuple(c.name for c in job.evaluated)
        loader = loaders.setdefault(names, _masks_loader(job.evaluated, job.image_size))
        data.append(  # a supervised model is evaluated without the images it trained on
            evaluation_view(
                JobData(
                    job.model.label,
                    job.category.name,
                    job.seed,
                    job.key,
                    cache.meta(job.key),
                    cached_scores(job, cache),
                    lambda key=job.key: cache.maps(key),
                    loader,
                    dict(job.category.families),
                    lambda key=job.key: cache.split_maps(key, "holdout"),
                    derived,
                )
            )
        )
    return data


def run_protocol(
    protocol: ProtocolConfig,
    out: Path,
    cache_dir: Path | None = None,
    argv: list[str] | None = None,
    force: bool = False,
) -> RunSummary:
    """Run ``protocol`` into ``out``: results.csv, figures/, report.html, report.tex, run.json, scores/.

    ``force`` writes into a folder holding files the harness did not write (they are kept).
    """
    started = time.time()
    check_home_and_cache(cache_dir or default_cache_dir())  # the embedded dataset is generated there
    plugins = get_plugins()
    run = RunState(resolve(protocol, plugins, check_options=False), plugins, out, started)
    preflight(out, cache_dir or default_cache_dir(), force)  # after the protocol's own errors, before any fit
    executor = build_executor(protocol.executor)
    with output_lock(out):
        cache = ScoreCache(cache_dir or default_cache_dir())
        beside = Background()  # the dataset audit runs in a child of its own while the jobs run
        try:
            beside.submit("audit", lambda: _audit(run, cache))
            if hasattr(executor, "while_waiting"):  # the analysis' imports, while the parent waits for the jobs
                executor.while_waiting = lambda: preload_modules(run.plan.analysis.preload)
            run.outcomes = execute(run.plan.jobs, protocol, plugins, cache, executor)
            scoring_seconds = time.time() - started
            job_data = collect(run.outcomes, cache)
            audits = beside.result("audit", lambda: _audit(run, cache))
        finally:
            beside.close()
        run.audit = audits[0] if audits else None

        def record() -> Any:
            timings = {"scoring_seconds": round(scoring_seconds, 3), "total_seconds": round(time.time() - started, 3)}
            return build_run_record(run, cache, argv, timings)

        write_outputs(run, job_data, record)
    return RunSummary(out, run.outcomes)


def _audit(run: RunState, cache: ScoreCache) -> list[Any]:
    """``harness_run_audit``: audit.json's record, cached by dataset content; a failing one is left out."""
    return run.plugins.call_each(
        "harness_run_audit",
        lambda record: json.loads(json_dumps(record)),
        categories=list(run.plan.categories),
        dataset=run.plan.protocol.dataset,
        cache_root=cache.root,
    )
