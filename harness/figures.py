"""Matplotlib figures shared by analyses (headless, PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde

COLOURS = {"holdout": "#4c72b0", "test_normal": "#55a868", "anomalous": "#c44e52"}
LINE_STYLES = ("--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)))


def save(fig: plt.Figure, path: Path) -> None:
    """Write ``fig`` as PNG (for the HTML report) and PDF (for LaTeX), readable (see ``make_readable``), and free it."""
    from harness.report.readable import make_readable

    path.parent.mkdir(parents=True, exist_ok=True)
    make_readable(fig)
    fig.tight_layout()  # one layout pass; bbox_inches="tight" would render every figure twice
    fig.savefig(path, dpi=100)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


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
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 3.6))
    for index, metric in enumerate(metrics):
        ax.bar(x + (index - (len(metrics) - 1) / 2) * width, summary[metric], width=width, label=metric)
    ax.set_xticks(x, names, fontsize=7, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=len(metrics))
    save(fig, path)


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both lower cost and higher quality, by cost."""
    order = np.argsort(cost, kind="stable")
    front, best = [], -np.inf
    for index in order:
        if quality[index] > best:
            front.append(index)
            best = quality[index]
    return np.array(front, dtype=int)


def _scatter_with_front(ax: plt.Axes, table: pd.DataFrame, cost: str, label: str) -> bool:
    data = table[["model", cost, "auroc"]].dropna()
    if data.empty:
        ax.text(0.5, 0.5, f"{label}: not measured here", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return False
    x, y = data[cost].to_numpy(float), data["auroc"].to_numpy(float)
    ax.scatter(x, y, color="#4c72b0")
    for name, xi, yi in zip(data["model"], x, y, strict=True):
        ax.annotate(str(name), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto_front(x, y)
    ax.plot(x[front], y[front], color="#c44e52", lw=1.2, ls="--", label="Pareto front")
    ax.set_xlabel(label)
    ax.set_ylabel("image AUROC (mean over categories)")
    ax.legend(fontsize=7)
    return True


def benchmark_figures(table: pd.DataFrame, context, composition: pd.DataFrame) -> list:
    """AUROC vs latency and vs CO2 (Pareto fronts), training time and size bars, dataset composition."""
    from harness.analyses.base import FigureRecord

    figures = []
    if table.empty:
        return figures
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _scatter_with_front(left, table, "latency_ms", "scoring latency per image (ms, warm median)")
    _scatter_with_front(right, table, "co2_kg", "CO2 of fit + scoring, all categories (kg, estimated)")
    save(fig, context.figure_dir / "pareto.png")
    figures.append(
        FigureRecord(
            "pareto.png",
            "Image AUROC against latency and against CO2, with the Pareto front "
            "(no model to the upper left of the dashed line is both better and cheaper).",
        )
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, column, label in (
        (left, "fit_seconds", "training time, all categories (s)"),
        (right, "size_mb", "model size (MB, serialised state)"),
    ):
        data = table[["model", column]].dropna()
        ax.bar(data["model"].astype(str), data[column], color="#4c72b0")
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    save(fig, context.figure_dir / "cost_bars.png")
    figures.append(FigureRecord("cost_bars.png", "Training time (sum over categories) and model size per model."))
    if not composition.empty:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(composition)), 3.4))
        bottom = np.zeros(len(composition))
        for column in [c for c in composition.columns if c != "category"]:
            values = composition[column].to_numpy(float)
            ax.bar(composition["category"], values, bottom=bottom, label=column)
            bottom += values
        ax.set_ylabel("images")
        ax.legend(fontsize=7)
        save(fig, context.figure_dir / "composition.png")
        figures.append(
            FigureRecord(
                "composition.png",
                "Dataset composition per category: training images used to "
                "fit, held out for calibration, and test images by label.",
            )
        )
    return figures
