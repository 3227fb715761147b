"""The harness hook specification: the public API that plugins implement.

Most hooks are *registration* hooks: they return a mapping of names to the things the plugin
contributes, and the harness merges the mappings of all plugins. A name claimed twice rejects
the later plugin whole (none of its entries is registered) with an error that names both
plugins. ``harness_report_sections`` is called when a report is rendered and its results are
concatenated; ``harness_commands`` adds subcommands to the ``harness`` command;
``harness_fit_and_score`` wraps each job's fit and score (a pluggy wrapper). Implement any
subset with ``@harness.hookimpl``; a misspelt hook name fails at start-up. Every hook is called
through pluggy (``HARNESS_TRACE_PLUGINS=1`` traces the calls to stderr). The hooks whose
results are collected during a run or a report (``harness_analysis_extras``, ``harness_run_audit``,
``harness_report_sections``) are called one plugin at a time: a plugin that raises loses its own
part (columns, figures, record, section) with one warning naming it, not the run.

Hooks are grouped by phase, as in pytest's ``hookspec.py``: models, data, calibration,
metrics, analysis, reporting, command line, running jobs. See ``docs/hooks.md`` (generated from these docstrings),
``docs/architecture.md`` and README.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    import click
    import pandas as pd

    from harness.analyses.base import AnalysisContext, AnalysisResult, AnalysisSpec
    from harness.calibration import Calibrator
    from harness.contract import MetricSpec, ModelSpec, ReportSection
    from harness.data.base import Category as DatasetCategory
    from harness.data.base import DatasetSource
    from harness.scoring import FittedJob, JobView
    from harness.types import DetectorFactory

hookspec = pluggy.HookspecMarker("harness")

# -------------------------------------------------------------------------------------
# Models
# -------------------------------------------------------------------------------------


@hookspec
def harness_models() -> Mapping[str, ModelSpec | DetectorFactory]:
    """Register detectors by name.

    Returns:
        A mapping from model name (as written under ``models[].name`` in a protocol) to a
        :class:`harness.ModelSpec` (factory, version, options model, ``supervised``,
        ``continual``, ``why_unavailable``, ``cache_files``) or to a plain factory. The harness
        calls ``factory(**options)`` with the model's ``options`` from the protocol file and
        gets an object with ``fit(samples)`` and ``score(samples) -> harness.Scores``; what
        else it reads from a detector is a :class:`harness.DetectorInfo`. A plain factory may
        carry ``version`` (str, enters the score-cache key), ``why_unavailable()`` (a reason
        or ``None``), ``check_options(options, key=)`` and ``supervised``; the harness turns it
        into a ``ModelSpec`` with those values (``options_model``, a pydantic model, too).

    Every ``harness`` command loads every plugin, so this hook (and the plugin's module) must not
    import the model's library: import torch, anomalib or ultralytics inside the factory, declare
    options as a pydantic model (checked before anything is fitted), and keep ``version`` and
    ``why_unavailable()`` cheap (e.g. ``importlib.util.find_spec``, a cached lookup). A run whose
    jobs are all cached never calls the factory.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Entries may be :class:`harness.ModelSpec`.

    """


# -------------------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------------------


@hookspec
def harness_datasets() -> Mapping[str, Callable[..., DatasetSource]]:
    """Register dataset layouts by name (``dataset.layout`` in a protocol).

    Returns:
        A mapping from layout name to a callable ``layout(root, **options)`` that returns a
        :class:`harness.data.DatasetSource` (``categories()`` and ``load(category)``).
        ``root`` is ``dataset.root`` (a :class:`pathlib.Path` or ``None``) and ``options``
        are the layout's own keys from ``dataset.options``.

    .. versionadded:: 0.1

    """


# -------------------------------------------------------------------------------------
# Calibration
# -------------------------------------------------------------------------------------


@hookspec
def harness_calibrations() -> Mapping[str, Callable[..., Calibrator]]:
    """Register threshold calibrators by name (entries of ``calibrations`` in a protocol).

    Returns:
        A mapping from calibration name to a factory ``factory(**options) -> Calibrator``.
        A calibrator has ``oracle`` (bool: it reads test labels, and reports label it as an
        oracle) and ``threshold(data: CalibrationData) -> float``; non-oracle calibrators
        receive no test data at all. One that thresholds on held-out normal scores sets
        ``needs_holdout = True``: a protocol that would hold none out is then an error before any fit.

    .. versionadded:: 0.1

    """


# -------------------------------------------------------------------------------------
# Metrics
# -------------------------------------------------------------------------------------


@hookspec
def harness_metrics() -> Mapping[str, MetricSpec]:
    """Register metrics computed for every job from its test scores.

    Returns:
        A mapping from metric name (the result column it fills) to a
        :class:`harness.MetricSpec`: ``higher_is_better``, ``level`` ("image":
        ``function(scores, labels)``; "pixel": ``function(maps, masks)``, computed
        when the model gives maps and the dataset has masks) and ``function`` returning a
        float. The built-in AUROC and AP are registered this way, and so are the pixel metrics
        (pixel AUROC, AUPRO, PL, ...) of plugins/harness_pixel. A ``version`` lets the harness
        keep each job's value in the derived cache.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
        :class:`harness.MetricSpec` takes ``version``.

    """


# -------------------------------------------------------------------------------------
# Analysis (protocol kinds)
# -------------------------------------------------------------------------------------


@hookspec
def harness_protocols() -> Mapping[str, AnalysisSpec]:
    """Register protocol kinds by name (the ``protocol`` key of a protocol file).

    Returns:
        A mapping from protocol kind to a :class:`harness.AnalysisSpec`: it plans the jobs,
        turns cached scores into result rows and figures, and names the report's columns; it
        never fits a model itself. An object that does not subclass ``AnalysisSpec`` but has
        its ``analyse`` (and any of its other extension points) works as before.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
        Entries may subclass :class:`harness.AnalysisSpec`, which documents every extension point.

    """


@hookspec
def harness_analysis_extras(context: AnalysisContext, rows: pd.DataFrame) -> AnalysisResult | None:
    """Add per-job columns and per-category tables and figures to a protocol kind's results.

    Called by a protocol kind that asks for it, once per analysis, through
    :func:`harness.analysis.analysis_extras` (kde_vs_test does, after its own rows and figures);
    every plugin's implementation is called and the results are collected in plugin order. The
    thresholded segmentation of plugins/harness_pixel (SegF1 at a held-out pixel threshold, recall
    by defect type and size) and the label-review sheets and anomaly-map panels of
    plugins/harness_review are added this way. An implementation may take any subset of the
    parameters, and reads cached scores, maps and masks only (``context.jobs``).

    :param context: the kind's :class:`harness.AnalysisContext`: jobs, calibrations, the figure
        folder, the analysis options.
    :param rows: the kind's result rows so far, each with ``cache_key`` (its job),
        ``calibration`` and ``threshold``.

    Returns:
        A :class:`harness.AnalysisResult` whose ``rows`` hold one row per job, ``cache_key`` and
        the columns to add (joined to every row of that job), and whose ``figures`` (files written
        under ``context.figure_dir``; ``kind="table"`` for a CSV) follow the kind's own; or
        ``None`` to add nothing.

    .. versionadded:: 0.3

    """


@hookspec(firstresult=True)
def harness_dataset_audit(categories: list[DatasetCategory], max_distance: int) -> Iterable[Mapping[str, str]] | None:
    """Audit a dataset's categories: what in them would make the results wrong.

    Called by ``harness run`` (unless ``dataset.audit`` is false; cached by the categories'
    content) and ``harness validate --audit``. The first plugin that returns a result wins;
    plugins/harness_datasets implements it (near-duplicates across train and test by perceptual
    hash, the same image under two defect types, empty masks on defect images, masks on good
    images, unreadable files). The harness stores the findings (``audit.json``), prints them and
    shows them in the report; they are warnings, never a change to a number.

    :param categories: the :class:`harness.datasets.Category` objects the protocol uses.
    :param max_distance: Hamming distance (of 64 hash bits) at or below which two images are
        near-duplicates.

    Returns:
        One mapping per finding with the strings ``kind`` (``near_duplicate``,
        ``conflicting_labels``, ``empty_mask``, ``mask_on_good``, ``unreadable`` or a new kind),
        ``category``, ``path`` and ``detail``; or ``None`` to leave the audit to another plugin.

    .. versionadded:: 0.2

    """


@hookspec(firstresult=True)
def harness_run_audit(
    categories: list[DatasetCategory], dataset: Any, cache_root: Path | None
) -> Mapping[str, Any] | None:
    """Audit the dataset of a run, after its jobs: the record the run stores as ``audit.json``.

    Called once by ``harness run``, in a child process of its own while the jobs run (in the run's
    process when there is one core): the returned record comes back, changes made in memory do
    not. The
    first plugin that returns a record wins; plugins/harness_datasets implements it: it reads
    ``dataset.audit``, runs ``harness_dataset_audit`` over the categories (cached under
    ``cache_root/audits`` by their content fingerprints), logs one warning when something is
    found, and shows the stored ``audit.json`` in the report (``harness_report_sections``). An
    audit informs: the implementation turns its own failures into a note in the record, and
    never changes a number; one that raises is left out with a warning naming its plugin, and
    the next plugin's record is used. With no implementation, the run writes no ``audit.json``.

    :param categories: the :class:`harness.datasets.Category` objects the run evaluates.
    :param dataset: the protocol's ``dataset:`` section (``audit``, ``layout``, ``root``, ...).
    :param cache_root: the score cache's folder, where an audit may cache its result.

    Returns:
        A JSON-serialisable mapping, written to ``audit.json`` in the run folder; or ``None``
        to leave the audit to another plugin.

    .. versionadded:: 0.3

    """


# -------------------------------------------------------------------------------------
# Reporting
# -------------------------------------------------------------------------------------


@hookspec
def harness_report_sections(
    results: pd.DataFrame, run: Mapping[str, Any], out: Path | None
) -> Iterable[ReportSection] | None:
    """Add sections to ``report.html`` and ``report.tex``, after the report's own.

    Called once per rendered report, from stored results only (nothing is fitted). An
    implementation may take any subset of the parameters.

    :param results: the run's ``results.csv`` as a data frame.
    :param run: the run record (``run.json``): protocol kind, config, versions, jobs.
    :param out: the folder holding the run's stored files (``results.csv``, ``audit.json``, ...),
        or ``None`` when the report is not rendered from a run folder.

    Returns:
        :class:`harness.ReportSection` objects (title, text, optional table), or ``None``.
        The sections of all plugins are appended in plugin order; everything is escaped.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
        The ``out`` parameter; sections are also rendered in ``report.tex``.

    """


@hookspec
def harness_trackers() -> Mapping[str, Callable[..., str]]:
    """Register experiment trackers by name (``harness run --tracker NAME[=DEST]``, ``harness track``).

    Returns:
        A mapping from tracker name to ``tracker(out, run, summary, finding, destination) -> str``,
        called with keywords after a run: the run folder, ``run.json`` as a dict, the summary
        data frame, the :class:`~harness.report.finding.Finding` and the ``DEST`` given (or
        ``None``); it returns one line saying where the run was logged. An optional attribute
        ``requires`` names the module it needs, checked before anything is fitted. MLflow and
        TensorBoard are registered this way (plugins/harness_trackers).

    .. versionadded:: 0.2

    """


@hookspec
def harness_executors() -> Mapping[str, Callable[..., Any]]:
    """Register executors by name: where a run's jobs run (``executor: {name: NAME}``, ``--executor``).

    Returns:
        A mapping from executor name to a factory called with the protocol's other ``executor:``
        keys as keywords; the executor's ``run(jobs, cache_root)`` yields one
        ``(job key, "cached" | "fitted" | "failed", error or None)`` per job, each job run by
        :func:`harness.runs.execute_job` in whatever process the executor chooses. ``local``
        is built in and cannot be replaced; ``ray`` and ``submitit`` are registered this way
        (plugins/harness_executors).

    .. versionadded:: 0.2

    """


# -------------------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------------------


@hookspec
def harness_commands(cli: click.Group) -> None:
    """Add subcommands to the ``harness`` command, as datasette's ``register_commands`` does.

    Called once per invocation, when a command that is not built in is looked up or the
    command list is shown (``harness --help``); not called for ``harness run`` and the other
    built-in commands. Every plugin's implementation is called (the results are ignored).
    Import what a command needs inside the command's function, so that ``harness --help``
    stays fast.

    :param cli: a :class:`click.Group`; each command added to it (``@cli.command()``,
        ``cli.add_command``) becomes ``harness NAME``. A built-in command's name is never
        replaced. ``harness compare``, ``harness export`` and ``harness new-plugin`` are added
        this way (plugins/harness_tools). Plugins that are not loaded
        (``--no-plugin-autoload``, ``--disable-plugin``) add no commands.

    Returns:
        Nothing: the commands are added to ``cli``.

    .. versionadded:: 0.2

    """


# -------------------------------------------------------------------------------------
# Running jobs
# -------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def harness_fit_and_score(job: JobView, efficiency: Mapping[str, Any]) -> FittedJob | None:
    """Wrap one job's fit and score, in the process that runs it, to measure it.

    Implement it as a wrapper, as pytest's ``pytest_runtest_call`` wrappers are written::

        @harness.hookimpl(wrapper=True)
        def harness_fit_and_score(job, efficiency):
            started = time.perf_counter()  # before: the detector is not built yet
            fitted = yield  # the harness builds, fits and scores the detector
            fitted.figures["wall_seconds"] = time.perf_counter() - started
            return fitted

    The innermost call is the harness's own: it builds the detector with the model's options,
    fits it and scores the handed-over images, timing both (``fit_seconds``, ``score_seconds``).
    Code before ``yield`` runs before the detector is built; code after it once the scores are
    taken and kept by the harness, so scoring again (e.g. for latency) changes no score. Figures
    added to ``fitted.figures`` are recorded with the job (its cache entry's ``efficiency``;
    ``run.json`` keeps the two timers) and become the result columns of the protocol kinds that show them. A
    model's exception reaches the wrapper at ``yield``: let it through. A wrapper's own exception
    after ``yield`` costs the figures of the call: the job keeps its scores, and ``energy_note``
    says what failed; one before ``yield`` leaves the job unmeasured. Whatever a wrapper does to
    ``fitted``, the harness keeps its own detector, samples and timers, and only plain values
    (numbers, strings, ``None`` and lists or mappings of them) of ``figures``.
    Called in the job's own process (a forked child, or the run's process with
    ``executor.isolate: false``); plain (non-wrapper) implementations must return ``None``.
    plugins/harness_efficiency implements it (memory, GPU, energy and CO2, latency, throughput,
    parameters, size, GMAC); without a wrapper a job records its two timers and a note.

    :param job: a :class:`harness.runs.JobView`: ``key``, ``model`` (name), ``options``,
        ``category`` (name), ``seed``, ``image_size``; no image, path or label.
    :param efficiency: the protocol's ``efficiency:`` keys as written (validated, defaults not
        filled in: ``energy``, ``latency_repeats``, ``grid_intensity``, ``country``,
        ``sample_seconds``).

    Returns:
        The :class:`harness.runs.FittedJob` that ``yield`` gave the wrapper (``detector``, the
        scored ``samples``, ``fit_seconds``, ``score_seconds``, ``figures``).

    .. versionadded:: 0.3

    """


# -------------------------------------------------------------------------------------
# Analysis (continued)
# -------------------------------------------------------------------------------------


@hookspec
def harness_analysis_prepare(context: AnalysisContext, rows: pd.DataFrame) -> None:
    """Start, early, the work that a later ``harness_analysis_extras`` call of this plugin will need.

    Called by a protocol kind that asks for it (kde_vs_test does) while its slow pixel metrics
    (PL) are still computed, so that the two overlap: in a forked child process of its own given
    more than two cores (changes made in memory are then lost), else in the run's process; one
    plugin at a time as ``harness_analysis_extras``, and only when such metrics are pending. ``rows`` are the
    kind's rows so far with those pixel metrics not known yet (NaN); everything else, including
    ``cache_key``, ``calibration`` and ``threshold``, is final. ``context.figure_dir`` is a scratch
    folder deleted afterwards: what is kept is what the plugin stores in the derived cache (figures
    through ``harness.analysis.render_once``, values through ``JobData.remember``), which its
    ``harness_analysis_extras`` then reads back. plugins/harness_pixel (the segmentation report)
    and plugins/harness_review (review sheets, map panels) implement it.

    :param context: the kind's :class:`harness.AnalysisContext`, its figure folder a scratch one.
    :param rows: the kind's result rows so far, slow pixel metrics NaN.

    Returns:
        ``None``; the result is ignored. A plugin that raises is named in one warning; its
        ``harness_analysis_extras`` then computes everything itself.

    .. versionadded:: 0.3

    """


@hookspec
def harness_prepare_jobs(efficiency: Mapping[str, Any], forking: bool) -> None:
    """Get ready to measure jobs in this process (import, probe the hardware, start meters); measure nothing.

    Lets a ``harness_fit_and_score`` wrapper do its slow set-up outside the job's critical path.
    The harness calls it in each job's process, in a thread, while the job's images are handed
    over and the model's libraries imported (``forking`` false), before the first wrapper call;
    and, when one process forks several jobs, once there while it imports their models' libraries
    (``forking`` true: what it prepares is inherited by every job; start no thread and hold no
    lock, a forked child would inherit them stopped). Optional: a wrapper must still work
    unprepared, and a failing implementation loses nothing but the head start (one warning).
    plugins/harness_efficiency starts codecarbon here (its hardware probe costs about 1.5 s).

    :param efficiency: the protocol's ``efficiency:`` keys as written, as for ``harness_fit_and_score``.
    :param forking: True in the process that forks the jobs, False in a job's own process.

    Returns:
        Nothing.

    .. versionadded:: 0.4

    """
