"""kde_vs_test's figures: score distributions with every threshold, confusion counts, metric bars.

matplotlib and scipy are imported when a figure is drawn (through :func:`harness.analysis.pyplot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.analysis import pyplot, save

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    import pandas as pd

    from harness.analysis import JobData

COLOURS = {"holdout": "#4c72b0", "test_normal": "#55a868", "anomalous": "#c44e52"}
LINE_STYLES = ("--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)))


def score_distributions(
    ax: plt.Axes,
    holdout: np.ndarray,
    test_normal: np.ndarray,
    anomalous: np.ndarray,
    thresholds: Mapping[str, float],
) -> None:
    """Histograms of held-out train normals, test normals and anomalies, thresholds marked (paper 000 Figs 9-10)."""
    groups = [
        ("held-out train normals", holdout, COLOURS["holdout"]),
        ("test normals", test_normal, COLOURS["test_normal"]),
        ("test anomalies", anomalous, COLOURS["anomalous"]),
    ]
    from scipy.stats import gaussian_kde

    thresholds = {label: value for label, value in thresholds.items() if np.isfinite(value)}
    values = np.concatenate([g[1] for g in groups if len(g[1])] + [np.array(list(thresholds.values()))])
    bins = np.linspace(values.min(), values.max(), 30) if np.ptp(values) > 0 else 10
    for label, data, colour in groups:
        if len(data):
            ax.hist(data, bins=bins, density=True, alpha=0.45, color=colour, label=f"{label} (n={len(data)})")
    if len(holdout) > 1 and np.ptp(holdout) > 0:
        grid = np.linspace(values.min(), values.max(), 300)
        ax.plot(grid, gaussian_kde(holdout)(grid), color=COLOURS["holdout"], lw=1.5, label="KDE of held-out normals")
    for index, (label, value) in enumerate(thresholds.items()):
        style = LINE_STYLES[index % len(LINE_STYLES)]
        ax.axvline(value, color="black", lw=1.2, ls=style, label=f"{label} = {value:.4g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.legend(fontsize=7, loc="upper right")


def confusion_bars(ax: plt.Axes, rows: pd.DataFrame) -> None:
    """False negatives and false positives per calibration, with TP/TN in the labels."""
    labels = rows["calibration"].tolist()
    x = np.arange(len(labels))
    fn, fp = rows["false_negatives"].to_numpy(), rows["false_positives"].to_numpy()
    ax.bar(x - 0.2, fn, width=0.4, color=COLOURS["anomalous"], label="false negatives (missed defects)")
    ax.bar(x + 0.2, fp, width=0.4, color=COLOURS["test_normal"], label="false positives (good parts rejected)")
    for i, (n_fn, n_fp) in enumerate(zip(fn, fp, strict=True)):
        ax.text(i - 0.2, n_fn, str(n_fn), ha="center", va="bottom", fontsize=8)
        ax.text(i + 0.2, n_fp, str(n_fp), ha="center", va="bottom", fontsize=8)
    counts = zip(labels, rows["true_positives"], rows["true_negatives"], strict=True)
    ax.set_xticks(x, [f"{c}\nTP={tp} TN={tn}" for c, tp, tn in counts], fontsize=7, rotation=12)
    ax.set_ylabel("images")
    ax.legend(fontsize=7, loc="best")
    ax.margins(y=0.15)


def grouped_metric_bars(summary: pd.DataFrame, metrics: Sequence[str], path: Path, title: str) -> None:
    """One bar group per (model, calibration) with a bar per metric (paper 000, Table 1 as a chart)."""
    names = [f"{m}\n{c}" for m, c in zip(summary["model"], summary["calibration"], strict=True)]
    x = np.arange(len(names))
    width = 0.8 / len(metrics)
    fig, ax = pyplot().subplots(figsize=(max(6.0, 1.1 * len(names)), 3.6))
    for index, metric in enumerate(metrics):
        ax.bar(x + (index - (len(metrics) - 1) / 2) * width, summary[metric], width=width, label=metric)
    ax.set_xticks(x, names, fontsize=7, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=len(metrics))
    save(fig, path)


def draw_job_figure(job: JobData, rows: pd.DataFrame, path: Path) -> None:
    """Score distributions with every threshold (left) and confusion counts per calibration (right)."""
    test = job.test
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    score_distributions(
        left,
        job.holdout,
        test.loc[test["label"] == 0, "score"].to_numpy(float),
        test.loc[test["label"] == 1, "score"].to_numpy(float),
        dict(zip(rows["calibration"], rows["threshold"], strict=True)),
    )
    left.set_title(f"{job.model} / {job.category} (seed {job.seed}): score distributions", fontsize=9)
    confusion_bars(right, rows)
    right.set_title("errors on the whole test set per calibration", fontsize=9)
    save(fig, path)
