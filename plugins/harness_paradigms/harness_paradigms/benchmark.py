"""benchmark (papers 001 and 004): a ranked leaderboard with efficiency and CO2 columns.

Per (model, category, seed): image AUROC and AP (threshold-free) and recall, precision, F1 at a
declared calibration (``analysis.calibration``, default the protocol's first non-oracle one;
never the test set silently). Per model: means over categories (and their std over seeds), a
rank per metric (1 = best) and the efficiency figures measured while the jobs ran. Models are
ordered as paper 001 orders its Table 1 (``rank_by: metric_mean``: by the mean of the first
metric over categories); ``rank_by: mean_rank`` (the mean of the per-metric ranks) is our own
addition, not the paper's. Category groups (``analysis.groups``: a name such as
``mvtec_ad_paper001`` or {group: [categories]}) get their own ranked tables. A paired bootstrap
over test images marks which rank differences hold at 95 %, and critical difference diagrams
(Friedman + Nemenyi over categories) show which do not.

Supervised models (those trained on the protocol's ``supervision:`` split) never change the
others' numbers: the ranked tables hold the models that train on no label, each on the whole
test set; a separate, labelled table compares every model on the test images left after the
supervision split.

Options: ``calibration``, ``groups``, ``rank_by`` (metric_mean), ``bootstrap`` (1000),
``metrics`` ([auroc, recall, f1, ap]).
"""

from __future__ import annotations

import itertools

import numpy as np

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    FigureRecord,
    HarnessError,
    JobData,
    ranking_metrics,
    successful,
    threshold_metrics,
    thresholds_of,
    tie_note,
    without_supervision_images,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.benchmark_figures import benchmark_figures, critical_difference_figure
from harness_paradigms.options import BenchmarkOptions

pd = lazy_module("pandas")
stats = lazy_module("scipy.stats")

METRICS = ("auroc", "recall", "f1", "ap")
RANK_BY = ("metric_mean", "mean_rank")
PIXEL_MEANS = ("precision", "pixel_auroc", "pixel_aupr", "aupro", "pro", "pl")
NAMED_GROUPS: dict[str, dict[str, list[str]]] = {
    # paper 001 (Cools et al. 2025) §4.2-4.4: the grouping its Tables 2-4 average over, checked by
    # tests/unit/test_paper001_tables.py against the per-category figures of its Appendix A
    "mvtec_ad_paper001": {
        "fixed objects": ["bottle", "cable", "capsule", "pill", "toothbrush", "transistor", "zipper"],
        "rotating objects": ["hazelnut", "metal_nut", "screw"],
        "textures": ["carpet", "grid", "leather", "tile", "wood"],
    },
}
"""Category groups a protocol may name in ``analysis.groups`` instead of listing them."""
SUPERVISED_COMPARISON = "supervised comparison"
EFFICIENCY_SUMS = ("fit_seconds", "energy_kwh", "co2_kg", "gpu_energy_kwh")
EFFICIENCY_MEDIANS = (
    "cpu_power_w",
    "latency_ms",
    "throughput_per_s",
    "parameters",
    "size_mb",
    "gmac",
    "gpu_power_w",
    "gpu_util_percent",
)
EFFICIENCY_MAX = ("peak_rss_mb", "gpu_memory_mb")
NOTES = ("energy_note", "gpu_note", "footprint_note", "gmac_note", "fit_note")


def bootstrap_metric(
    scores: np.ndarray, labels: np.ndarray, threshold: float, index: np.ndarray
) -> dict[str, np.ndarray]:
    """AUROC, AP, recall and F1 of every bootstrap resample (rows of ``index``) at once."""
    s, y = scores[index], labels[index].astype(bool)
    n_pos = y.sum(axis=1)
    n_neg = y.shape[1] - n_pos
    ranks = stats.rankdata(s, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = ((ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        order = np.argsort(-s, axis=1, kind="stable")
        hits = np.take_along_axis(y, order, axis=1)
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
        ap = (precision_at * hits).sum(axis=1) / n_pos
        predicted = s >= threshold
        tp = (predicted & y).sum(axis=1)
        fp = (predicted & ~y).sum(axis=1)
        fn = (~predicted & y).sum(axis=1)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    return {"auroc": auroc, "ap": ap, "recall": recall, "f1": f1}


def rank_table(table: pd.DataFrame, metrics: tuple[str, ...], rank_by: str = "metric_mean") -> pd.DataFrame:
    """Add ``<metric>_rank`` (1 = best, ties share the best rank) and ``mean_rank``; sort by ``rank_by``.

    ``metric_mean`` (paper 001, Table 1) orders by the first metric's value; ``mean_rank`` (ours)
    by the mean of the per-metric ranks. Either way the other key breaks ties.
    """
    table = table.copy()
    for metric in metrics:
        table[f"{metric}_rank"] = table[metric].rank(ascending=False, method="min")
    table["mean_rank"] = table[[f"{m}_rank" for m in metrics]].mean(axis=1)
    keys = [metrics[0], "mean_rank"] if rank_by == "metric_mean" else ["mean_rank", metrics[0]]
    ascending = [key == "mean_rank" for key in keys]
    return table.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)


def mean_over_categories(part: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per model: the mean over categories (per seed, then over seeds) and ``<metric>_std`` over seeds."""
    columns = [*metrics, *(c for c in PIXEL_MEANS if c in part and c not in metrics)]
    per_seed = part.groupby(["model", "seed"], sort=False)[columns].mean()
    summary = per_seed.groupby("model", sort=False).mean()
    spread = per_seed.groupby("model", sort=False).std(ddof=0)
    for metric in metrics:
        summary[f"{metric}_std"] = spread[metric]
    return summary


def resolve_groups(groups: object) -> dict[str, list[str]]:
    """``analysis.groups`` as {group: [categories]}: a named set (``NAMED_GROUPS``) or the mapping itself."""
    if isinstance(groups, str):
        return {name: list(members) for name, members in NAMED_GROUPS[groups].items()}
    return {str(k): [str(c) for c in v] for k, v in (groups or {}).items()}


class Benchmark(AnalysisSpec):
    """The benchmark protocol kind."""

    title = "Ranked benchmark with efficiency and CO2"
    description = (
        "Models ranked per metric (1 = best) on the mean over categories and ordered as paper 001 orders its "
        "Table 1 (rank_by: metric_mean, by the first metric), unless the protocol asks for rank_by: mean_rank "
        "(the mean of the per-metric ranks: our addition, not the paper's). Models trained on the supervision "
        "split are compared with the others in a separate table, on the test images left after it. Recall, precision "
        "and F1 use the declared calibration, which sees no test label. A '*' after a value marks a lead over "
        "the next model in that metric's ranking that holds in a paired bootstrap over test images (95 %). "
        "Efficiency figures were measured while the jobs ran; an empty cell says the figure could not be "
        "measured here (the notes column says why)."
    )
    options_model = BenchmarkOptions
    options = ("calibration", "groups", "rank_by", "bootstrap", "metrics")
    leaderboard_note = (
        "Mean over categories (and seeds; results.csv has the std over seeds in *_std); time, energy "
        "and CO2 summed over categories, latency and size the median."
    )
    leaderboard_columns = (
        "model",
        "mean_rank",
        "auroc",
        "auroc_rank",
        "recall",
        "recall_rank",
        "f1",
        "f1_rank",
        "ap",
        "ap_rank",
        "pixel_auroc",
        "pixel_aupr",
        "aupro",
        "pro",
        "pl",
        "fit_seconds",
        "latency_ms",
        "throughput_per_s",
        "peak_rss_mb",
        "parameters",
        "size_mb",
        "gmac",
        "energy_kwh",
        "co2_kg",
        "gpu_power_w",
        "notes",
    )
    detail_columns = (
        "model",
        "mean_rank",
        "auroc",
        "auroc_rank",
        "recall",
        "recall_rank",
        "f1",
        "f1_rank",
        "ap",
        "ap_rank",
        "precision",
        "threshold",
        "fit_seconds",
        "latency_ms",
    )
    latex_columns = (
        "model",
        "auroc",
        "auroc_rank",
        "recall",
        "recall_rank",
        "f1",
        "f1_rank",
        "ap",
        "ap_rank",
        "mean_rank",
        "fit_seconds",
        "latency_ms",
        "size_mb",
        "gmac",
        "co2_kg",
    )

    def check_options(self, options) -> None:
        """Reject malformed groups or metrics before anything is fitted."""
        metrics = options.get("metrics", list(METRICS))
        if not isinstance(metrics, list) or not metrics or not set(metrics) <= set(METRICS):
            raise HarnessError(f"analysis.metrics must be a list from {list(METRICS)}, got {metrics}")
        groups = options.get("groups") or {}
        if isinstance(groups, str):
            if groups not in NAMED_GROUPS:
                raise HarnessError(
                    f"analysis.groups '{groups}' is not a named group set; use one of {sorted(NAMED_GROUPS)}"
                )
        elif not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
            raise HarnessError(
                f"analysis.groups must be a name {sorted(NAMED_GROUPS)} or {{group: [categories]}}, got {groups}"
            )
        if options.get("rank_by", "metric_mean") not in RANK_BY:
            raise HarnessError(f"analysis.rank_by must be one of {list(RANK_BY)}, got {options.get('rank_by')!r}")

    def _calibration(self, context: AnalysisContext):
        name = context.options.get("calibration")
        specs = {s.label: s for s in context.calibrations}
        if name is None:
            deployable = [s for s in context.calibrations if not s.oracle]
            if not deployable:
                raise HarnessError("benchmark needs a calibration that sees no test label (e.g. kde) in calibrations")
            return deployable[0]
        if name not in specs:
            raise HarnessError(
                f"analysis.calibration '{name}' is not among the protocol's calibrations {sorted(specs)}"
            )
        return specs[name]

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per (model, category, seed), per group and global, with ranks and significance marks.

        The ranked tables hold the models that train on no label; when a supervised model ran, the
        supervised comparison (every model on the images left after the supervision split) follows
        as separate rows (``aggregate`` ``supervised comparison``) and a table in the report.
        """
        self.check_options(context.options)
        metrics = tuple(context.options.get("metrics", METRICS))
        spec = self._calibration(context)
        unsupervised = [job for job in context.jobs if not job.meta.get("supervised")]
        result = self._ranked(unsupervised, context, spec, metrics)
        if result.empty:
            return AnalysisResult(result, [])
        global_rows = result[result["aggregate"] == "global"]
        figures = benchmark_figures(global_rows, context, self._composition(unsupervised))
        categories = result[result["aggregate"] == "category"]
        diagram = critical_difference_figure(categories, metrics, context.figure_dir / "critical_difference.png")
        figures += [diagram] if diagram is not None else []
        if any(job.meta.get("supervised") for job in context.jobs):
            comparison, table = self._supervised_comparison(context, spec, metrics)
            result = pd.concat([result, comparison], ignore_index=True)
            figures.append(table)
        return AnalysisResult(result.assign(status="ok", error=""), figures)

    def _ranked(
        self, jobs: list[JobData], context: AnalysisContext, spec, metrics: tuple[str, ...], label: str = ""
    ) -> pd.DataFrame:
        """Per-category rows ranked within (category, seed), then the global and group aggregates."""
        rank_by = context.options.get("rank_by", "metric_mean")
        table = pd.DataFrame([self._job_row(job, context, spec) for job in jobs])
        if table.empty:
            return table
        table = pd.concat(
            [rank_table(part, metrics, rank_by) for _, part in table.groupby(["category", "seed"], sort=False)],
            ignore_index=True,
        )
        table["aggregate"] = f"{label} category".strip()
        table["seed"] = table["seed"].astype("Int64")
        groups = {"all categories": list(dict.fromkeys(table["category"]))}
        groups.update(resolve_groups(context.options.get("groups")))
        aggregates = [
            self._aggregate(table, name, members, metrics, context, spec, jobs, label)
            for name, members in groups.items()
            if set(members) & set(table["category"])
        ]
        return pd.concat([table, *aggregates], ignore_index=True)

    def _supervised_comparison(
        self, context: AnalysisContext, spec, metrics: tuple[str, ...]
    ) -> tuple[pd.DataFrame, FigureRecord]:
        """Every model on the test images left after the supervision split, as rows and a report table."""
        jobs = [without_supervision_images(job) for job in context.jobs]
        rows = self._ranked(jobs, context, spec, metrics, label=SUPERVISED_COMPARISON)
        overall = rows[rows["aggregate"] == f"{SUPERVISED_COMPARISON} global"]
        columns = ["model", *metrics, *(f"{m}_rank" for m in metrics), "n_test"]
        overall.reindex(columns=columns).to_csv(context.figure_dir / "supervised_comparison.csv", index=False)
        record = FigureRecord(
            "supervised_comparison.csv",
            "Supervised comparison: every model, supervised ones included, on the test images left after the "
            "supervision split (the images supervised models trained on are out for all). The ranked tables "
            "above evaluate the models that train on no label on the whole test set.",
            kind="table",
        )
        return rows, record

    @staticmethod
    def _job_row(job: JobData, context: AnalysisContext, spec) -> dict[str, object]:
        scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
        threshold = thresholds_of(job, context)[spec.label]
        figures = dict(job.meta.get("efficiency") or {"energy_note": "efficiency: not recorded in this cache entry"})
        return {
            "model": job.model,
            "category": job.category,
            "seed": job.seed,
            "calibration": spec.label,
            "weights": job.weights,
            "threshold": threshold,
            "threshold_note": (tie := tie_note(threshold, job.holdout)),
            **ranking_metrics(scores, labels),
            **threshold_metrics(scores, labels, threshold),
            **job.pixel_metrics,
            "n_test": labels.size,
            **{k: figures.get(k, np.nan) for k in (*EFFICIENCY_SUMS, *EFFICIENCY_MEDIANS, *EFFICIENCY_MAX)},
            "notes": "; ".join(sorted({str(figures[k]) for k in NOTES if figures.get(k)} | {tie} - {""})),
            "cache_key": job.key,
        }

    def _aggregate(
        self,
        table: pd.DataFrame,
        name: str,
        members: list[str],
        metrics: tuple[str, ...],
        context: AnalysisContext,
        spec,
        jobs: list[JobData],
        label: str = "",
    ) -> pd.DataFrame:
        part = table[table["category"].isin(members)]
        summary = mean_over_categories(part, metrics)
        by_model = part.groupby("model", sort=False)
        seeds = part.groupby(["model", "seed"], sort=False)
        for column in EFFICIENCY_SUMS:  # totals over the group's categories, mean over seeds
            summary[column] = seeds[column].sum(min_count=1).groupby("model", sort=False).mean()
        for column in EFFICIENCY_MEDIANS:
            summary[column] = by_model[column].median()
        for column in EFFICIENCY_MAX:
            summary[column] = by_model[column].max()
        summary["n_test"] = seeds["n_test"].sum().groupby("model", sort=False).mean()
        summary["notes"] = by_model["notes"].agg(lambda n: "; ".join(sorted({x for x in n if x})))
        summary["weights"] = by_model["weights"].agg(lambda w: ", ".join(sorted(set(map(str, w)))))
        ranked = rank_table(summary.reset_index(), metrics, context.options.get("rank_by", "metric_mean"))
        marks = self._significance(ranked, members, metrics, context, spec, jobs)
        for metric in metrics:
            ranked[f"{metric}_significant"] = ranked["model"].map(marks.get(metric, {})).fillna(False).astype(bool)
        aggregate = "global" if name == "all categories" else "group"
        return ranked.assign(category=name, aggregate=f"{label} {aggregate}".strip(), calibration=spec.label)

    def _significance(
        self,
        ranked: pd.DataFrame,
        members: list[str],
        metrics: tuple[str, ...],
        context: AnalysisContext,
        spec,
        jobs: list[JobData],
    ) -> dict[str, dict[str, bool]]:
        """For each metric, whether each model's lead over the next-ranked one holds (paired bootstrap)."""
        resamples = int(context.options.get("bootstrap", 1000))
        if resamples <= 0 or len(ranked) < 2:
            return {}
        seed = min(job.seed for job in jobs)
        by_key = {(j.model, j.category): j for j in jobs if j.seed == seed and j.category in members}
        rng = np.random.default_rng([context.seed, 2025])
        draws: dict[str, dict[str, np.ndarray]] = {}  # model -> metric -> mean over categories per resample
        for category in members:
            sizes = {len(by_key[(m, category)].test) for m in ranked["model"] if (m, category) in by_key}
            if len(sizes) != 1:  # not the same test images: no paired comparison
                continue
            size = sizes.pop()
            index = rng.integers(0, size, size=(resamples, size))
            for model in ranked["model"]:
                job = by_key.get((model, category))
                if job is None:
                    continue
                scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
                values = bootstrap_metric(scores, labels, thresholds_of(job, context)[spec.label], index)
                for metric in metrics:
                    draws.setdefault(model, {}).setdefault(metric, []).append(values[metric])
        marks: dict[str, dict[str, bool]] = {}
        for metric in metrics:
            order = ranked.sort_values(metric, ascending=False)["model"].tolist()
            marks[metric] = {}
            for better, worse in itertools.pairwise(order):
                if metric not in draws.get(better, {}) or metric not in draws.get(worse, {}):
                    continue
                difference = np.nanmean(draws[better][metric], axis=0) - np.nanmean(draws[worse][metric], axis=0)
                marks[metric][better] = bool(np.nanpercentile(difference, 2.5) > 0)
        return marks

    @staticmethod
    def _composition(jobs: list[JobData]) -> pd.DataFrame:
        first = {}
        for job in jobs:
            first.setdefault(job.category, job)
        rows = []
        for category, job in first.items():
            test = job.test
            rows.append(
                {
                    "category": category,
                    "train (fit)": job.meta.get("n_fit", np.nan),
                    "train (held out)": len(job.holdout),
                    "test good": int((test["label"] == 0).sum()),
                    "test defective": int((test["label"] == 1).sum()),
                }
            )
        return pd.DataFrame(rows)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The global ranked table, significance marks joined to the values."""
        ok = successful(rows)
        table = ok[ok.get("aggregate", pd.Series(dtype=str)) == "global"] if "aggregate" in ok else ok.iloc[0:0]
        return table.reset_index(drop=True)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register benchmark."""
    return {"benchmark": Benchmark()}
