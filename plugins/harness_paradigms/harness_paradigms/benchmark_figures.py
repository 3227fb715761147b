"""The benchmark's figures: Pareto fronts, cost bars, dataset composition, critical difference diagrams.

The critical difference diagrams follow Demšar (JMLR 2006): a Friedman test over categories
(blocks) and models (groups), then Nemenyi's post-hoc test for every pair, drawn with
``scikit_posthocs.critical_difference_diagram`` (models joined by a bar do not differ at 5 %).
"""

from __future__ import annotations

import numpy as np

from harness.analysis import FigureRecord, save
from harness_paradigms._lazy import lazy_module

pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")
scikit_posthocs = lazy_module("scikit_posthocs")
stats = lazy_module("scipy.stats")


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


def benchmark_figures(table: pd.DataFrame, context, composition: pd.DataFrame) -> list[FigureRecord]:
    """AUROC vs latency and vs CO2 (Pareto fronts), training time and size bars, dataset composition."""
    figures: list[FigureRecord] = []
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


def friedman_nemenyi(per_category: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame, float]:
    """Average rank per model (1 = best, higher metric is better), Nemenyi p-values, Friedman p-value.

    ``per_category`` has one row per category (block) and one column per model; rows with a
    missing value are left out, as the Friedman test needs complete blocks.
    """
    data = per_category.dropna()
    ranks = data.rank(axis=1, ascending=False).mean()
    p_values = scikit_posthocs.posthoc_nemenyi_friedman(data.to_numpy())
    p_values.index = p_values.columns = data.columns
    return ranks, p_values, float(stats.friedmanchisquare(*data.to_numpy().T).pvalue)


def critical_difference_figure(rows: pd.DataFrame, metrics: tuple[str, ...], path) -> FigureRecord | None:
    """One critical difference diagram per metric over the categories in ``rows`` (per-category rows).

    Needs at least three models and two categories with every model present; ``None`` otherwise.
    """
    per_metric = {
        metric: rows.groupby(["category", "model"])[metric].mean().unstack("model").dropna() for metric in metrics
    }
    per_metric = {m: data for m, data in per_metric.items() if data.shape[0] >= 2 and data.shape[1] >= 3}
    if not per_metric:
        return None
    fig, axes = plt.subplots(len(per_metric), 1, figsize=(8, 1.9 * len(per_metric)), squeeze=False)
    notes = []
    for ax, (metric, data) in zip(axes[:, 0], per_metric.items(), strict=True):
        ranks, p_values, friedman_p = friedman_nemenyi(data)
        scikit_posthocs.critical_difference_diagram(ranks, p_values, ax=ax)
        ax.set_title(f"{metric}: average rank over {len(data)} categories (Friedman p = {friedman_p:.3g})", fontsize=9)
        notes.append(f"{metric} Friedman p = {friedman_p:.3g}")
    save(fig, path)
    return FigureRecord(
        path.name,
        "Critical difference diagrams (Demšar 2006): average rank of each model over categories (1 = best); "
        "a Friedman test over categories, then Nemenyi's post-hoc test (scikit-posthocs); models joined by a "
        "bar do not differ at the 5 % level. " + "; ".join(notes) + ".",
    )
