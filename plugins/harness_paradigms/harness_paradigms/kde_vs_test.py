"""kde_vs_test (paper 000): test-calibrated oracle thresholds beside thresholds from normals only.

For every (model, category, seed) it applies each calibration to the same cached scores and
reports accuracy, precision, recall, F1 (with bootstrap intervals over test images) and the
confusion counts on the whole test set, with the threshold-free AUROC/AP and pixel metrics
alongside. Figures: the score distributions of held-out train normals, test normals and
anomalies with every threshold marked (paper 000, Figs 9-10), the confusion counts per
calibration, a label-review sheet and anomaly-map panels per category.

Analysis options (``analysis:`` in the protocol): ``bootstrap`` (resamples, default 1000,
0 = off), ``review`` (images per review list, default 6, 0 = off), ``map_panels`` (default true).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness import hookimpl
from harness.analysis import (
    SLOW_PIXEL_METRICS,
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    Background,
    FigureRecord,
    JobData,
    analysis_extras,
    analysis_prepare,
    array_digest,
    bootstrap_intervals_many,
    cached_pixel_metrics,
    job_rng,
    oracle_gap_finding,
    pending_pixel_metrics,
    pixel_metric_values,
    pixel_metrics_beside,
    render_once,
    slug,
    successful,
    threshold_metrics,
    thresholds_of,
    tie_note,
)
from harness_paradigms.cached import source_digest
from harness_paradigms.kde_figures import draw_job_figure, grouped_metric_bars
from harness_paradigms.options import KdeVsTestOptions

if TYPE_CHECKING:
    import pandas as pd

    from harness.analysis import Finding

SUMMARY_MEANS = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auroc",
    "ap",
    "pixel_auroc",
    "pixel_aupr",
    "aupro",
    "pro",
    "pl",
]
SUMMARY_SUMS = ["false_negatives", "false_positives", "n_test", "n_anomalous"]


def calibrate_rows(
    job: JobData,
    context: AnalysisContext,
    thresholds: dict[str, float] | None = None,
    pixel_metrics: Mapping[str, float] | None = None,
) -> list[dict[str, object]]:
    """One row per calibration for one job (``thresholds``: the job's :func:`thresholds_of`, when known).

    ``pixel_metrics``: the values to show instead of :attr:`JobData.pixel_metrics` (NaN while pending).
    """
    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    resamples = int(context.options.get("bootstrap", 1000))
    oracle = {spec.label: spec.oracle for spec in context.calibrations}
    thresholds = thresholds_of(job, context) if thresholds is None else thresholds
    # one resample matrix for every calibration of the job (seeded by the job: the same on every rerun)
    rng = job_rng(context, job, "bootstrap")
    every = bootstrap_intervals_many(scores, labels, list(thresholds.values()), rng, resamples) if resamples else []
    rows = []
    for index, (label, threshold) in enumerate(thresholds.items()):
        intervals = every[index] if resamples else {}
        rows.append(
            {
                "model": job.model,
                "category": job.category,
                "seed": job.seed,
                "calibration": label,
                "oracle": oracle[label],
                "weights": job.weights,
                "threshold": threshold,
                "threshold_note": (tie := "" if oracle[label] else tie_note(threshold, job.holdout)),
                # what the fit itself reports (e.g. a design the paper leaves open), and the tie note
                "notes": "; ".join(n for n in (str((job.meta.get("efficiency") or {}).get("fit_note", "")), tie) if n),
                **threshold_metrics(scores, labels, threshold),
                **intervals,
                **job.image_metrics,
                **(job.pixel_metrics if pixel_metrics is None else pixel_metrics),
                "n_test": len(labels),
                "n_anomalous": int(labels.sum()),
                "n_holdout": len(job.holdout),
                "status": "ok",
                "error": "",
                "cache_key": job.key,
            }
        )
    return rows


class KdeVsTest(AnalysisSpec):
    """The kde_vs_test protocol kind."""

    title = "Test-calibrated vs KDE-calibrated thresholds"
    description = (
        "Each row applies one threshold calibration to the same cached scores. Oracle calibrations "
        "tune the threshold on the test labels they are then scored on (what most papers report); "
        "the others see only held-out defect-free training images, as a factory would. Recall and F1 "
        "intervals are 95 % percentile bootstraps over test images at the fixed threshold."
    )
    options_model = KdeVsTestOptions
    options = ("bootstrap", "review", "map_panels")
    preload = ("scipy.stats", "scipy.optimize", "sklearn.metrics", "harness.figures", "matplotlib.pyplot")
    leaderboard_note = (
        "Mean over categories and seeds (FN and FP summed). F1 gap: F1 minus the model's best oracle F1, "
        "in percentage points."
    )
    leaderboard_columns = (
        "model",
        "calibration",
        "recall",
        "f1",
        "f1_gap",
        "false_negatives",
        "false_positives",
        "precision",
        "accuracy",
        "auroc",
        "ap",
        "pixel_auroc",
        "aupro",
        "pl",
    )
    latex_columns = (*leaderboard_columns, "pixel_aupr", "pro", "weights")
    detail_columns = (
        "model",
        "seed",
        "calibration",
        "threshold",
        "accuracy",
        "precision",
        "recall",
        "recall_ci",
        "f1",
        "f1_ci",
        "false_negatives",
        "false_positives",
        "auroc",
        "ap",
        "pixel_auroc",
        "aupro",
        "pl",
        "seg_f1",
        "seg_f1_oracle",
        "notes",
    )

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per calibration and the distribution, confusion, review and map figures.

        The jobs' slowest pixel metric (PL) is computed in child processes (:class:`Background`) while
        the score figures and the other pixel metrics are computed here, and meanwhile the plugins'
        ``harness_analysis_prepare`` runs, in a child of its own given more than two cores, else here
        (their extras then read its work from the derived cache); rows and figures are those of
        computing one after the other.
        """
        import pandas as pd

        rows: list[dict[str, object]] = []
        figures: list[FigureRecord] = []
        first_seed = min((job.seed for job in context.jobs), default=0)
        background, beside = Background(), Background(workers=1 if (os.cpu_count() or 1) > 2 else 0)
        try:
            for index, job in enumerate(context.jobs):
                if cached_pixel_metrics(job) is None:
                    background.submit(str(index), lambda job=job: pixel_metric_values(job, SLOW_PIXEL_METRICS))
            thresholds = [thresholds_of(job, context) for job in context.jobs]
            prepare = functools.partial(_prepare_extras, context, thresholds)
            if background.queued or background.running:  # the plugins' early work, in a child where cores allow
                beside.submit("prepare", prepare)
            for job, job_thresholds in zip(context.jobs, thresholds, strict=True):
                if job.seed == first_seed:
                    figures.append(self._job_figure(job, _counts(job, job_thresholds), context))
                    background.poll()
            if "prepare" in beside.queued:  # no child for it (2 cores: PL's child and this process fill them)
                beside.result("prepare", prepare)
            for index, job in enumerate(context.jobs):
                if "pixel_metrics" not in vars(job):  # PL in a child, the others here meanwhile
                    job.pixel_metrics = pixel_metrics_beside(job, background, str(index))
                rows.extend(calibrate_rows(job, context, thresholds[index]))
            beside.result("prepare", lambda: None)  # finished before the extras (failed: they compute it all)
        finally:
            background.close()
            beside.close()
        table, extra_figures = analysis_extras(context, pd.DataFrame(rows))  # e.g. SegF1 (plugins/harness_pixel)
        figures.extend(extra_figures)
        if not table.empty:
            figures.insert(0, self._summary_figure(table, context))
        return AnalysisResult(table, figures)

    def _summary_figure(self, table: pd.DataFrame, context: AnalysisContext) -> FigureRecord:
        name, metrics, title = "summary_metrics.png", ["accuracy", "recall", "f1"], "Mean over categories and seeds"
        summary = self.summarise(table)
        shown = summary[["model", "calibration", *metrics]].astype(str).to_numpy().tolist()
        store = next((job.derived for job in context.jobs), None)
        draw = lambda path: grouped_metric_bars(summary, metrics, path, title)  # noqa: E731
        render_once(context.figure_dir / name, draw, store, "grouped_metric_bars", figure_code(), shown, title)
        caption = (
            "Accuracy, recall and F1 per model and calibration (mean over categories and seeds; paper 000, Table 1)."
        )
        return FigureRecord(name, caption)

    def _job_figure(self, job: JobData, rows: pd.DataFrame, context: AnalysisContext) -> FigureRecord:
        test = job.test
        name = f"scores_{slug(job.model)}_{slug(job.category)}_seed{job.seed}.png"
        scores, labels = test["score"].to_numpy(float), test["label"].to_numpy(int)
        thresholds = dict(zip(rows["calibration"], rows["threshold"].astype(float), strict=True))
        counts = rows[["false_negatives", "false_positives", "true_positives", "true_negatives"]].to_numpy(int)
        key = ("kde_vs_test.scores", figure_code(), job.model, job.category, job.seed, list(thresholds.items()))
        data = array_digest(job.holdout, scores, labels, counts)
        render_once(context.figure_dir / name, lambda path: draw_job_figure(job, rows, path), job.derived, *key, data)
        caption = (
            f"{job.model} on {job.category}: held-out train normals vs test normals vs anomalies, "
            "every threshold marked (paper 000, Figs 9-10); right: confusion counts per calibration."
        )
        return FigureRecord(name, caption, category=job.category, model=job.model)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Mean over categories and seeds per (model, calibration); error counts summed."""
        import pandas as pd

        ok = successful(rows)
        if ok.empty:
            return pd.DataFrame()
        grouped = ok.groupby(["model", "calibration"], sort=False)
        extra = {
            "oracle": grouped["oracle"].first(),
            "weights": grouped["weights"].agg(lambda w: ", ".join(sorted(set(map(str, w))))),
            "categories": grouped["category"].nunique(),
            "seeds": grouped["seed"].nunique(),
        }  # joined in one step: adding columns one by one copies the (Arrow string) column index each time
        means = [c for c in SUMMARY_MEANS if c in ok]  # the pixel metrics are a plugin's (plugins/harness_pixel)
        parts = [grouped[means].mean(), grouped[SUMMARY_SUMS].sum(), pd.DataFrame(extra)]
        return oracle_gap(pd.concat(parts, axis=1).reset_index())

    def finding(self, rows: pd.DataFrame, summary: pd.DataFrame) -> Finding:
        """Per model: the deployable calibration's recall and F1 beside the oracle's, the gap, the misses."""
        return oracle_gap_finding(summary)


def figure_code() -> str:
    """A sha256 of :mod:`harness_paradigms.kde_figures`' source, in every figure's key: new drawing code draws anew.

    The core's ``RENDERER_VERSION`` covers the core's figures only; this kind's are a plugin's, keyed
    like the other paradigm kinds' (:func:`harness_paradigms.cached.source_digest`).
    """
    return source_digest("harness_paradigms.kde_figures")


def _prepare_extras(context: AnalysisContext, thresholds: list[dict[str, float]]) -> None:
    """``harness_analysis_prepare`` with the rows so far: pixel metrics not computed yet are NaN."""
    import pandas as pd

    pending = pending_pixel_metrics()
    rows = []
    for job, job_thresholds in zip(context.jobs, thresholds, strict=True):  # pixel metrics known, else pending
        rows.extend(calibrate_rows(job, context, job_thresholds, vars(job).get("pixel_metrics", pending)))
    analysis_prepare(context, pd.DataFrame(rows))


def _counts(job: JobData, thresholds: dict[str, float]) -> pd.DataFrame:
    """Each calibration's threshold and confusion counts on the job's test set (what its score figure shows)."""
    import pandas as pd

    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    return pd.DataFrame(
        [{"calibration": c, "threshold": t, **threshold_metrics(scores, labels, t)} for c, t in thresholds.items()]
    )


def oracle_gap(summary: pd.DataFrame) -> pd.DataFrame:
    """Add ``f1_gap``: each row's F1 minus its model's best oracle F1, in percentage points (NaN without oracle)."""
    oracle_f1 = summary["f1"].where(summary["oracle"].astype(bool)).groupby(summary["model"]).transform("max")
    return summary.assign(f1_gap=((summary["f1"] - oracle_f1) * 100).round(1))


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register kde_vs_test."""
    return {"kde_vs_test": KdeVsTest()}
