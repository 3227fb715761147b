"""continual (paper 004, section 3.9 "Continual AD" and Table 4.3): categories taught one after another.

Categories are taught in the declared ``sequence`` (default: the dataset's category order).
After step k every category seen so far is evaluated, which gives the matrix T (step x category;
image AUROC by default, ``metric: ap`` for AP) and the forgetting measure of paper 004's Table 4.3
(after IM-IAD, Xie et al.):

    FM_j^k = max_{l in 1..k-1} T_{l,j} - T_{k,j}     for a category j taught before step k,

with its mean over those categories, (1 / (k - 1)) * sum_j FM_j^k (Chaudhry et al., 2018, as
IM-IAD averages it), reported per step; the last step's is the headline.

Design (the ``design`` column): a model whose registration declares ``continual = True`` is taught
incrementally, ``fit`` on the first category, then ``fit_more`` on each next one (each step's job
replays the sequence from the start, so every job stays independent and cached);
any other model is refitted from scratch on the union of the categories seen so far ("union"),
which forgets nothing by construction and is the joint-training reference. ``design: union``
forces the union design for every model. Step 1 is the ordinary per-category job (shared with
kde_vs_test through the cache). Deployable thresholds use each category's own held-out normals.

Analysis options: ``sequence`` (category names), ``metric`` (auroc | ap), ``design`` (auto | union).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    Category,
    FigureRecord,
    JobData,
    OptionsModel,
    ProtocolError,
    Str,
    restrict,
    save,
    slug,
    successful,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.sweep import job_rows

patheffects = lazy_module("matplotlib.patheffects")
pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")

METRICS = ("auroc", "ap")
DESIGNS = ("auto", "union")


class ContinualOptions(OptionsModel):
    """Options of ``continual`` (paper 004, section 3.9, Table 4.3)."""

    sequence: Annotated[tuple[Str, ...], Field(min_length=2)] | None = Field(
        None, description="the categories in teaching order; null = the dataset's category order"
    )
    metric: Literal[METRICS] = Field("auroc", description="what the matrix T holds: auroc or ap")
    design: Literal[DESIGNS] = Field(
        "auto", description="auto: incremental where the model declares it; union: refit on the union everywhere"
    )


def forgetting(matrix: pd.DataFrame, taught: dict[str, int] | None = None) -> pd.DataFrame:
    """FM_j^k for a T matrix (rows: steps, columns: categories; ``taught``: the step each was taught at).

    Entry (k, j) is ``max(T[l, j] for taught_j <= l < k) - T[k, j]`` where category j was taught
    before step k, else NaN (not yet seen, or taught at step k itself). By default the columns are
    in teaching order, the i-th taught at step i. A step missing from the rows (a failed job) is
    left out of the max.
    """
    taught = taught or {column: index + 1 for index, column in enumerate(matrix.columns)}
    result = pd.DataFrame(np.nan, index=matrix.index, columns=matrix.columns)
    for step in matrix.index:
        for column in matrix.columns:
            earlier = matrix.loc[[s for s in matrix.index if taught[column] <= s < step], column].dropna()
            if not earlier.empty:
                result.loc[step, column] = earlier.max() - matrix.loc[step, column]
    return result


def mean_forgetting(fm: pd.DataFrame) -> pd.Series:
    """The mean of FM_j^k over the categories taught before each step k (NaN at step 1)."""
    return fm.mean(axis=1, skipna=True)


def parse_options(options: Any, names: list[str] | None = None) -> tuple[list[str] | None, str, str]:
    """(sequence, metric, design); the sequence is checked against ``names`` when given."""
    sequence = options.get("sequence")
    if sequence is not None:
        if isinstance(sequence, str):
            sequence = [sequence]
        if not isinstance(sequence, list) or not all(isinstance(s, str) for s in sequence) or len(sequence) < 2:
            raise ProtocolError(
                f"expected a list of two or more category names, got {sequence!r}", key="analysis.sequence"
            )
        if len(set(sequence)) != len(sequence):
            raise ProtocolError(f"a category appears twice in {sequence}", key="analysis.sequence")
        if names is not None:
            missing = [s for s in sequence if s not in names]
            if missing:
                raise ProtocolError(
                    f"categories {missing} are not among the protocol's categories {names}; "
                    "fix analysis.sequence or dataset.categories",
                    key="analysis.sequence",
                )
    metric = options.get("metric", "auroc")
    if metric not in METRICS:
        raise ProtocolError(f"expected one of {list(METRICS)}, got {metric!r}", key="analysis.metric")
    design = options.get("design", "auto")
    if design not in DESIGNS:
        raise ProtocolError(f"expected one of {list(DESIGNS)}, got {design!r}", key="analysis.design")
    return sequence, metric, design


def step_of(job: JobData) -> tuple[int, tuple[str, ...], str]:
    """(step, categories seen, design) of a cached continual job; step 1 is the plain per-category job."""
    subset = job.meta.get("subset", {})
    seen = tuple(subset.get("union", [job.category]))
    return len(seen), seen, str(subset.get("design", "first step"))


class Continual(AnalysisSpec):
    """The continual protocol kind."""

    title = "Continual learning: categories taught in sequence, with the forgetting measure"
    description = (
        "Categories are taught one after another; after each step every category seen so far is tested, giving "
        "the matrix T (step x category) and the forgetting measure FM_j^k = max_{l<k} T_{l,j} - T_{k,j} with its "
        "mean over earlier categories (paper 004, Table 4.3, after IM-IAD). design 'incremental': the detector "
        "declares continual fitting and is taught with fit then fit_more; design 'union': the detector cannot "
        "continue fitting, so it is refitted on the union of the categories seen so far (a joint-training "
        "reference, not continual learning). Thresholds use each category's own held-out normals."
    )
    options_model = ContinualOptions
    options = ("sequence", "metric", "design")
    leaderboard_note = (
        "Per model, design and step: the mean of the metric over the categories seen so far, and the mean "
        "forgetting over the categories taught before that step (mean over seeds)."
    )
    leaderboard_columns = ("model", "design", "step", "learned", "metric", "average", "forgetting", "seeds")
    latex_columns = leaderboard_columns
    detail_columns = (
        "model",
        "seed",
        "design",
        "step",
        "learned",
        "calibration",
        "threshold",
        "auroc",
        "ap",
        "forgetting",
        "recall",
        "f1",
        "false_negatives",
        "false_positives",
    )

    def check_options(self, options: dict[str, Any]) -> None:
        """Reject bad options before anything is loaded."""
        parse_options(options)

    def plan_jobs(self, protocol, categories: list[Category], maker) -> list:
        """One job per (step, model, seed): the plain job at step 1, union or incremental jobs after."""
        from harness_paradigms.subsets import UnionSubset, supports_continual

        sequence, _, design = parse_options(protocol.analysis, [c.name for c in categories])
        by_name = {c.name: c for c in categories}
        ordered = [by_name[name] for name in (sequence or by_name)]
        if len(ordered) < 2:
            raise ProtocolError("continual needs at least two categories to teach", key="dataset.categories")
        jobs = []
        for model in protocol.models:
            incremental = design == "auto" and supports_continual(maker.plugins.get("models", model.name))
            for seed in protocol.seeds:
                jobs.append(maker(model, ordered[0], seed))
                for k in range(2, len(ordered) + 1):
                    seen = tuple(ordered[:k])
                    merged = Category.merged("+".join(c.name for c in seen), seen)
                    job = maker(model, merged, seed, seen)
                    names = tuple(c.name for c in seen)
                    subset = UnionSubset(
                        job.subset.fraction_held_out, job.subset.split_seed, categories=names, incremental=incremental
                    )
                    jobs.append(replace(job, subset=subset))
        return jobs

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per (step, seen category, calibration) with the forgetting column; T and FM heatmaps."""
        _, metric, _ = parse_options(context.options)
        rows = []
        designs = {}
        for job in context.jobs:
            step, seen, design = step_of(job)
            if step > 1:
                designs[job.model] = design
            for name in seen:
                own = restrict(job, name, holdout="own")
                rows += job_rows(own, context, step=step, learned=seen[-1], design=design)
        table = pd.DataFrame(rows)
        if table.empty:
            return AnalysisResult(table, [])
        table["design"] = table["model"].map(designs).fillna(table["design"])
        table["metric"] = metric
        table = add_forgetting(table, metric)
        return AnalysisResult(table, self._figures(table, metric, context))

    def _figures(self, table: pd.DataFrame, metric: str, context: AnalysisContext) -> list[FigureRecord]:
        records = []
        first_seed = table["seed"].min()
        one = table[(table["seed"] == first_seed) & (table["calibration"] == table["calibration"].iloc[0])]
        for model, rows in one.groupby("model", sort=False):
            matrix, fm = matrices(rows, metric)
            name = f"continual_{slug(str(model))}"
            out = matrix.copy()
            out["mean forgetting"] = mean_forgetting(fm)
            out.round(4).to_csv(context.figure_dir / f"{name}.csv")
            design = rows["design"].iloc[0]
            heatmap(matrix, fm, f"{model} ({design}), seed {first_seed}", metric, context.figure_dir / f"{name}.png")
            caption = (
                f"{model}, design '{design}': {metric} after each step (rows) on each category seen so far "
                "(columns), and the forgetting FM_j^k = max_{l<k} T_{l,j} - T_{k,j} (paper 004, Table 4.3)."
            )
            records += [
                FigureRecord(f"{name}.csv", caption, model=str(model), kind="table"),
                FigureRecord(f"{name}.png", caption, model=str(model)),
            ]
        return records

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per (model, design, step): mean metric over seen categories and mean forgetting, mean over seeds."""
        ok = successful(rows)
        if ok.empty or "step" not in ok:
            return pd.DataFrame()
        one = ok[ok["calibration"] == ok["calibration"].iloc[0]]
        metric = str(one["metric"].iloc[0])
        per_seed = one.groupby(["model", "design", "seed", "step", "learned"], sort=False).agg(
            average=(metric, "mean"), forgetting=("forgetting", "mean")
        )
        summary = per_seed.groupby(level=["model", "design", "step", "learned"], sort=False).agg(
            average=("average", "mean"), forgetting=("forgetting", "mean"), seeds=("average", "size")
        )
        return summary.reset_index().assign(metric=metric).sort_values(["model", "step"], kind="stable")


def matrices(rows: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """T (steps x categories in teaching order) and FM from one model's and seed's rows of one calibration."""
    taught = {str(c): int(step) for c, step in rows.groupby("category")["step"].min().items()}
    for step, learned in rows[["step", "learned"]].drop_duplicates().itertuples(index=False):
        taught[str(learned)] = int(step)
    order = sorted(taught, key=lambda category: taught[category])
    matrix = rows.pivot_table(index="step", columns="category", values=metric, aggfunc="first")
    matrix = matrix.reindex(index=sorted(matrix.index), columns=order)
    return matrix, forgetting(matrix, taught)


def add_forgetting(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A ``forgetting`` column: FM_j^k of each row's (model, seed, step, category), NaN where undefined."""
    values = []
    for (model, seed), rows in table.groupby(["model", "seed"], sort=False):
        one = rows[rows["calibration"] == rows["calibration"].iloc[0]]
        _, fm = matrices(one, metric)
        long = fm.stack(future_stack=True).rename("forgetting").reset_index()
        values.append(long.assign(model=model, seed=seed))
    merged = pd.concat(values, ignore_index=True)
    return table.merge(merged, on=["model", "seed", "step", "category"], how="left")


def heatmap(matrix: pd.DataFrame, fm: pd.DataFrame, title: str, metric: str, path) -> None:
    """T beside FM, values written in the cells."""
    fig, axes = plt.subplots(1, 2, figsize=(2.4 * len(matrix.columns) + 3, 0.7 * len(matrix) + 2))
    for ax, frame, label, cmap, limits in (
        (axes[0], matrix, f"T ({metric})", "viridis", (0.5, 1.0)),
        (axes[1], fm, "forgetting FM", "magma_r", (0.0, max(0.05, float(np.nanmax(fm.to_numpy(float), initial=0))))),
    ):
        values = frame.to_numpy(float)
        image = ax.imshow(values, cmap=cmap, vmin=limits[0], vmax=limits[1])
        ax.set_xticks(range(len(frame.columns)), frame.columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(frame.index)), [f"step {s}" for s in frame.index], fontsize=8)
        for (i, j), value in np.ndenumerate(values):
            if not np.isnan(value):
                ax.text(
                    j,
                    i,
                    f"{value:.3f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
                )
        ax.set_xlabel("tested on")
        fig.colorbar(image, ax=ax, label=label)
    fig.suptitle(title, fontsize=9)
    save(fig, path)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register continual."""
    return {"continual": Continual()}
