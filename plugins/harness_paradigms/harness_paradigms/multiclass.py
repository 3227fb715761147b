"""multiclass_unified (paper 004): one model over all categories against one model per category.

(a) A *unified* model is fitted on the defect-free training images of every category together
and tested on each category's test set; beside it, one model per category. Its thresholds are
single ones (one model, one threshold: oracles tuned on the pooled test set, deployable ones on
the pooled held-out normals); per-category models keep their own. Two aggregates are reported
side by side, and named: the **mean of categories** (the mean of the per-category figures) and
**pooled** (all test images counted together; for per-category models the pooled AUROC mixes
score scales of different models, which is why both are shown).

(b) The train-on-one, test-on-all matrix: the image AUROC of the model of each training
category on every category's test set, as a table and a heatmap.

(c) The chosen-category row of paper 004's Table 5.17 (section 5.5.6): with ``train_on:
CATEGORY`` (or ``{model label: CATEGORY}``, one chosen category per model as the thesis did),
one model per model entry is fitted on that category's normals and tested on every category;
its rows carry the setting "chosen" with one threshold (deployable ones from the chosen
category's held-out normals), and a table in Table 5.17's shape (models x categories, Average,
Chosen) is written.

Every row names its training design in a ``design`` column: "union" (one model on every
category's normals), "per category" (one model per category) or "chosen: CATEGORY".

Analysis options: ``unified`` (default true), ``cross_matrix`` (default true), ``train_on``
(default none). With
``cross_matrix: true`` the per-category models score every category's test set, which is a
different job from kde_vs_test's (fitted once, then cached); with ``false`` the per-category
jobs are kde_vs_test's own and only the unified models are fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    Category,
    FigureRecord,
    JobData,
    ProtocolError,
    ranking_metrics,
    restrict,
    save,
    slug,
    successful,
    threshold_metrics,
    thresholds_of,
    unknown_name_message,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.options import MulticlassOptions

pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")

UNIFIED = "unified"
CHOSEN = "chosen"
DESIGNS = {UNIFIED: "union", "per-category": "per category"}
METRICS = ("auroc", "ap", "accuracy", "precision", "recall", "f1")


def aggregate_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean-of-categories rows from per-category rows (one per model, seed, setting, calibration)."""
    keys = ["model", "seed", "setting", "calibration"]
    grouped = rows.groupby(keys, sort=False)
    means = grouped[list(METRICS)].mean()
    counts = grouped[["false_negatives", "false_positives", "n_test"]].sum()
    oracle = grouped[["oracle"]].first()
    return means.join(counts).join(oracle).reset_index().assign(category="mean of categories", aggregate="mean")


def pooled_row(parts: list[tuple[np.ndarray, np.ndarray, float]]) -> dict[str, float]:
    """Metrics over all test images counted together: ``parts`` = (scores, labels, threshold) per category."""
    scores = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    predicted = np.concatenate([p[0] >= p[2] for p in parts])
    # threshold_metrics at 0.5 on the 0/1 predictions keeps each category's own threshold
    return {
        **ranking_metrics(scores, labels),
        **threshold_metrics(predicted.astype(float), labels, 0.5),
        "n_test": labels.size,
    }


class MulticlassUnified(AnalysisSpec):
    """The multiclass_unified protocol kind."""

    title = "Unified model vs one model per category"
    description = (
        "'unified' is one model fitted on the normals of every category together, with one threshold; "
        "'per-category' is one model (and threshold) per category. 'mean of categories' averages the "
        "per-category figures; 'pooled' counts all test images together (for per-category models the pooled "
        "AUROC mixes different models' score scales). The matrix gives each training category's model "
        "tested on every category. 'chosen' (train_on) is one model fitted on the chosen category and tested on "
        "all, with one threshold (paper 004, Table 5.17). The design column names each row's training design: "
        "union, per category, or chosen."
    )
    options_model = MulticlassOptions
    options = ("unified", "cross_matrix", "train_on")
    leaderboard_note = "The two aggregates per setting, mean over seeds: mean of categories, and pooled."
    leaderboard_columns = (
        "model",
        "setting",
        "design",
        "calibration",
        "category",
        "auroc",
        "ap",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "false_negatives",
        "false_positives",
    )
    detail_columns = (
        "model",
        "seed",
        "setting",
        "design",
        "calibration",
        "threshold",
        "auroc",
        "ap",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "false_negatives",
        "false_positives",
    )
    latex_columns = leaderboard_columns

    def check_options(self, options: dict[str, Any]) -> None:
        """``train_on`` is a category name or a mapping of model labels to category names."""
        chosen = options.get("train_on")
        valid = chosen is None or isinstance(chosen, str)
        valid = valid or (isinstance(chosen, dict) and all(isinstance(v, str) for v in chosen.values()))
        if not valid:
            raise ProtocolError(
                f"expected a category name or {{model label: category}}, got {chosen!r}", key="analysis.train_on"
            )

    def plan_jobs(self, protocol, categories: list[Category], maker) -> list:
        """Per-category jobs (scoring every category for the matrix or the chosen row) and unified jobs."""
        options = protocol.analysis
        chosen = chosen_categories(options.get("train_on"), protocol, [c.name for c in categories])
        cross = options.get("cross_matrix", True)
        jobs = [
            maker(model, category, seed, tuple(categories) if cross or chosen.get(model.label) == category.name else ())
            for category in categories
            for model in protocol.models
            for seed in protocol.seeds
        ]
        if options.get("unified", True):
            merged = Category.merged(UNIFIED, categories)
            jobs += [
                maker(model, merged, seed, tuple(categories)) for model in protocol.models for seed in protocol.seeds
            ]
        return jobs

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Per-category rows for both settings, the two aggregates, and the cross matrix."""
        categories = list(dict.fromkeys(j.category for j in context.jobs if j.category != UNIFIED))
        rows: list[dict[str, object]] = []
        pooled: list[dict[str, object]] = []
        cross: list[dict[str, object]] = []
        chosen = context.options.get("train_on")
        for job in context.jobs:
            if job.category == UNIFIED:
                rows_, pooled_ = self._unified(job, categories, context)
            else:
                rows_, pooled_ = self._per_category(job, context)
                cross += self._cross(job, categories)
                if chosen and job.category == chosen_for(chosen, job.model):
                    rows_ += self._unified(job, categories, context, setting=CHOSEN)[0]
            rows += rows_
            pooled += pooled_
        table = pd.DataFrame(rows)
        figures: list[FigureRecord] = []
        if not table.empty:
            per_category = table[table["aggregate"] == "category"]
            pooled_table = self._pool_per_category(pooled)
            table = pd.concat([table, aggregate_rows(per_category), pooled_table], ignore_index=True)
        if cross:
            cross_table = pd.DataFrame(cross)
            figures += self._matrix(cross_table, context) if context.options.get("cross_matrix", True) else []
            figures += chosen_table(cross_table, chosen, context) if chosen else []
        if not table.empty:
            table = table.assign(status="ok", error="", design=table["setting"].map(DESIGNS))
            is_chosen = table["setting"] == CHOSEN
            table.loc[is_chosen, "design"] = "chosen: " + table.loc[is_chosen, "model"].map(
                lambda model: chosen_for(chosen, model)
            )
        return AnalysisResult(table, figures)

    # -- part (a) --------------------------------------------------------------------------------
    def _per_category(self, job: JobData, context: AnalysisContext):
        own = restrict(job, job.category, holdout="own")
        thresholds = thresholds_of(own, context)
        rows, parts = [], []
        for spec in context.calibrations:
            rows.append(self._row(own, "per-category", spec, thresholds[spec.label]))
            parts.append(
                {
                    "model": job.model,
                    "seed": job.seed,
                    "calibration": spec.label,
                    "oracle": spec.oracle,
                    "category": job.category,
                    "scores": own.test["score"].to_numpy(float),
                    "labels": own.test["label"].to_numpy(int),
                    "threshold": thresholds[spec.label],
                }
            )
        return rows, parts

    def _unified(self, job: JobData, categories: list[str], context: AnalysisContext, setting: str = UNIFIED):
        thresholds = thresholds_of(job, context)  # pooled holdout, pooled test: one threshold for the one model
        rows = [
            self._row(restrict(job, category), setting, spec, thresholds[spec.label])
            for category in categories
            for spec in context.calibrations
        ]
        test = job.test
        for spec in context.calibrations:
            scores, labels = test["score"].to_numpy(float), test["label"].to_numpy(int)
            rows.append(
                {
                    "model": job.model,
                    "seed": job.seed,
                    "setting": setting,
                    "calibration": spec.label,
                    "oracle": spec.oracle,
                    "category": "pooled (all test images)",
                    "aggregate": "pooled",
                    "threshold": thresholds[spec.label],
                    **pooled_row([(scores, labels, thresholds[spec.label])]),
                    "cache_key": job.key,
                }
            )
        return rows, []

    @staticmethod
    def _row(job: JobData, setting: str, spec, threshold: float) -> dict[str, object]:
        scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
        return {
            "model": job.model,
            "seed": job.seed,
            "setting": setting,
            "calibration": spec.label,
            "oracle": spec.oracle,
            "category": job.category,
            "aggregate": "category",
            "threshold": threshold,
            **ranking_metrics(scores, labels),
            **threshold_metrics(scores, labels, threshold),
            "n_test": labels.size,
            "weights": job.weights,
            "cache_key": job.key,
        }

    @staticmethod
    def _pool_per_category(parts: list[dict[str, object]]) -> pd.DataFrame:
        if not parts:
            return pd.DataFrame()
        frame = pd.DataFrame(parts)
        rows = []
        for (model, seed, calibration), group in frame.groupby(["model", "seed", "calibration"], sort=False):
            metrics = pooled_row(list(zip(group["scores"], group["labels"], group["threshold"], strict=True)))
            rows.append(
                {
                    "model": model,
                    "seed": seed,
                    "setting": "per-category",
                    "calibration": calibration,
                    "oracle": bool(group["oracle"].iloc[0]),
                    "category": "pooled (all test images)",
                    "aggregate": "pooled",
                    **metrics,
                }
            )
        return pd.DataFrame(rows)

    # -- part (b) --------------------------------------------------------------------------------
    @staticmethod
    def _cross(job: JobData, categories: list[str]) -> list[dict[str, object]]:
        rows = []
        for category in categories:
            test = restrict(job, category).test
            if test.empty:
                continue
            metrics = ranking_metrics(test["score"].to_numpy(float), test["label"].to_numpy(int))
            rows.append(
                {
                    "model": job.model,
                    "seed": job.seed,
                    "train_category": job.category,
                    "test_category": category,
                    **metrics,
                }
            )
        return rows

    def _matrix(self, cross: pd.DataFrame, context: AnalysisContext) -> list[FigureRecord]:
        if cross["test_category"].nunique() < 2:
            return []
        records = []
        first_seed = cross["seed"].min()
        for model, table in cross[cross["seed"] == first_seed].groupby("model", sort=False):
            matrix = table.pivot(index="train_category", columns="test_category", values="auroc")
            name = f"cross_{slug(str(model))}"
            matrix.round(4).to_csv(context.figure_dir / f"{name}.csv")
            fig, ax = plt.subplots(figsize=(1.2 * len(matrix.columns) + 2.5, 1.0 * len(matrix) + 1.5))
            image = ax.imshow(matrix.to_numpy(float), cmap="viridis", vmin=0.5, vmax=1.0)
            ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=8)
            for (i, j), value in np.ndenumerate(matrix.to_numpy(float)):
                ax.text(
                    j,
                    i,
                    f"{value:.3f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value < 0.8 else "black",
                )
            ax.set_xlabel("tested on")
            ax.set_ylabel("trained on")
            fig.colorbar(image, ax=ax, label="image AUROC")
            ax.set_title(f"{model}: train on one, test on all (seed {first_seed})", fontsize=9)
            save(fig, context.figure_dir / f"{name}.png")
            caption = (
                f"{model}: image AUROC of the model trained on each category (rows) on every category's test "
                "set (columns); the diagonal is the usual per-category result (paper 004, Table 5.17)."
            )
            records += [
                FigureRecord(f"{name}.csv", caption, model=str(model), kind="table"),
                FigureRecord(f"{name}.png", caption, model=str(model)),
            ]
        return records

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The aggregate rows, mean over seeds: mean-of-categories and pooled, for both settings."""
        ok = successful(rows)
        aggregates = ok[ok["aggregate"].isin(["mean", "pooled"])] if "aggregate" in ok else ok.iloc[0:0]
        if aggregates.empty:
            return pd.DataFrame()
        keys = ["model", "setting", "design", "calibration", "category"]
        summary = aggregates.groupby(keys, sort=False)[list(METRICS)].mean()
        summary[["false_negatives", "false_positives"]] = aggregates.groupby(keys, sort=False)[
            ["false_negatives", "false_positives"]
        ].sum()
        summary["oracle"] = aggregates.groupby(keys, sort=False)["oracle"].first()
        return summary.reset_index()


def chosen_categories(train_on: object, protocol, names: list[str]) -> dict[str, str]:
    """Model label -> chosen training category from ``train_on``, each checked to be a protocol category."""
    if train_on is None:
        return {}
    labels = [model.label for model in protocol.models]
    chosen = {label: train_on for label in labels} if isinstance(train_on, str) else dict(train_on)
    for label, category in chosen.items():
        if label not in labels:
            raise ProtocolError(unknown_name_message("model label", str(label), labels), key="analysis.train_on")
        if category not in names:
            raise ProtocolError(unknown_name_message("category", str(category), names), key="analysis.train_on")
    return chosen


def chosen_for(train_on: object, model: str) -> str | None:
    """The category ``model`` is trained on in the chosen-category design (None when it has none)."""
    return train_on if isinstance(train_on, str) else dict(train_on or {}).get(model)


def chosen_table(cross: pd.DataFrame, train_on: object, context: AnalysisContext) -> list[FigureRecord]:
    """Paper 004's Table 5.17: per model, AUROC of the chosen category's model on every category, Average, Chosen."""
    rows = []
    for model, table in cross.groupby("model", sort=False):
        trained = chosen_for(train_on, str(model))
        own = table[table["train_category"] == trained]
        if own.empty:
            continue
        per_category = own.groupby("test_category", sort=False)["auroc"].mean()  # mean over seeds
        rows.append({"model": model, **per_category.to_dict(), "Average": per_category.mean(), "Chosen": trained})
    if not rows:
        return []
    pd.DataFrame(rows).round(4).to_csv(context.figure_dir / "chosen_category.csv", index=False)
    caption = (
        "Design 'chosen': image AUROC of one model per method fitted on its chosen category's normals and tested on "
        "every category, with the average over categories (paper 004, section 5.5.6, Table 5.17; mean over seeds)."
    )
    return [FigureRecord("chosen_category.csv", caption, kind="table")]


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register multiclass_unified."""
    return {"multiclass_unified": MulticlassUnified()}
