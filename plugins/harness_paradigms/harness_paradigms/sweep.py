"""Helpers for protocols that sweep one training setting (few_shot's shots, noisy_training's contamination).

Rows are computed per job and calibration; the leaderboard averages over categories first, then
gives the mean and the sample standard deviation over replicates (seeds, draws) per setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.analysis import (
    AnalysisContext,
    FigureRecord,
    JobData,
    reference_calibration,
    save,
    successful,
    threshold_metrics,
    thresholds_of,
)
from harness_paradigms._lazy import lazy_module

pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")

METRICS = ("auroc", "ap", "recall", "f1", "precision", "accuracy")
SPREAD = ("auroc", "ap", "recall", "f1")


def job_rows(job: JobData, context: AnalysisContext, **setting: object) -> list[dict[str, object]]:
    """One row per calibration of ``job``, with the protocol's ``setting`` columns."""
    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    thresholds = thresholds_of(job, context)
    return [
        {
            "model": job.model,
            "category": job.category,
            "seed": job.seed,
            **setting,
            "calibration": spec.label,
            "oracle": spec.oracle,
            "weights": job.weights,
            "threshold": thresholds[spec.label],
            **threshold_metrics(scores, labels, thresholds[spec.label]),
            **job.image_metrics,
            "n_fit": job.meta.get("n_fit"),
            "n_holdout": len(job.holdout),
            "n_test": len(labels),
            "n_anomalous": int(labels.sum()),
            "status": "ok",
            "error": "",
            "cache_key": job.key,
        }
        for spec in context.calibrations
    ]


def spread(rows: pd.DataFrame, setting: str, replicates: Sequence[str], order: Callable[[object], float]):
    """Mean over categories per replicate, then mean and std (``<metric>_std``) over replicates per setting."""
    ok = successful(rows)
    if ok.empty:
        return pd.DataFrame()
    keys = ["model", "calibration", setting]
    per_replicate = ok.groupby([*keys, *replicates], sort=False)[list(METRICS)].mean()
    grouped = per_replicate.groupby(level=keys, sort=False)
    summary = grouped.mean()
    summary[[f"{m}_std" for m in SPREAD]] = grouped[list(SPREAD)].std(ddof=1).to_numpy()
    summary["replicates"] = grouped.size()
    ok_grouped = ok.groupby(keys, sort=False)
    summary["oracle"] = ok_grouped["oracle"].first()
    summary[["false_negatives", "false_positives"]] = ok_grouped[["false_negatives", "false_positives"]].sum()
    summary["categories"] = ok_grouped["category"].nunique()
    summary = summary.reset_index()
    summary["_order"] = summary[setting].map(order)
    return summary.sort_values(["model", "calibration", "_order"], kind="stable").drop(columns="_order")


def metric_figure(
    summary: pd.DataFrame,
    setting: str,
    reference: str | None,
    path: Path,
    xlabel: str,
    title: str,
) -> None:
    """Threshold-free AUROC and AP, and the ``reference`` calibration's recall and F1, against the setting."""
    panels = [("auroc", None), ("ap", None)] + ([("recall", reference), ("f1", reference)] if reference else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    first = summary["calibration"].iloc[0]
    for ax, (metric, calibration) in zip(axes[0], panels, strict=True):
        table = summary[summary["calibration"] == (calibration or first)]
        for model, lines in table.groupby("model", sort=False):
            labels = [str(v) for v in lines[setting]]
            std = lines[f"{metric}_std"].fillna(0.0)
            ax.errorbar(range(len(labels)), lines[metric], yerr=std, marker="o", capsize=3, label=str(model))
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{metric} ({calibration})" if calibration else metric)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def numeric_order(value: object) -> float:
    """Sort key: numbers by value, anything else ("all") last."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return math.inf if math.isnan(number) else number


def sweep_figures(
    summary: pd.DataFrame, context: AnalysisContext, setting: str, files: tuple[str, str], labels: Sequence[str]
) -> list[FigureRecord]:
    """The summary as a table and the metric-vs-``setting`` figure (nothing for an empty summary).

    ``files`` are the (png, csv) names; ``labels`` the x label, the title, the caption and the
    table's caption.
    """
    if summary.empty:
        return []
    png, csv = files
    xlabel, title, caption, table_caption = labels
    summary.round(4).to_csv(context.figure_dir / csv, index=False)
    reference = reference_calibration(context)
    metric_figure(summary, setting, reference.label if reference else None, context.figure_dir / png, xlabel, title)
    return [FigureRecord(png, caption), FigureRecord(csv, table_caption, kind="table")]
