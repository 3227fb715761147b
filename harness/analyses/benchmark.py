"""benchmark (papers 001 and 004): a ranked leaderboard with efficiency and CO2 columns.

Per (model, category, seed): image AUROC and AP (threshold-free) and recall, precision, F1 at a
declared calibration (``analysis.calibration``, default the protocol's first non-oracle one;
never the test set silently). Per model: means over categories (and their std over seeds), a
rank per metric (1 = best), the mean rank, and the efficiency figures measured while the jobs
ran. Category groups (``analysis.groups``, e.g. fixed objects / rotating objects / textures as
paper 001) get their own ranked tables. A paired bootstrap over test images (resampled within
each category, the same images for both models) marks which rank differences hold at 95 %.

Options: ``calibration``, ``groups`` ({name: [categories]}), ``bootstrap`` (1000),
``metrics`` ([auroc, recall, f1, ap]).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from harness import hookimpl
from harness.analyses.base import AnalysisContext, AnalysisResult, AnalysisSpec, JobData, successful
from harness.analyses.common import thresholds_of
from harness.errors import HarnessError
from harness.figures import benchmark_figures
from harness.metrics import ranking_metrics, threshold_metrics

METRICS = ("auroc", "recall", "f1", "ap")
EFFICIENCY_SUMS = ("fit_seconds", "energy_kwh", "co2_kg")
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
    ranks = rankdata(s, axis=1)
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


def rank_table(table: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Add ``<metric>_rank`` (1 = best, ties share the best rank) and ``mean_rank``; sort by it."""
    table = table.copy()
    for metric in metrics:
        table[f"{metric}_rank"] = table[metric].rank(ascending=False, method="min")
    table["mean_rank"] = table[[f"{m}_rank" for m in metrics]].mean(axis=1)
    return table.sort_values(["mean_rank", metrics[0]], ascending=[True, False]).reset_index(drop=True)


class Benchmark(AnalysisSpec):
    """The benchmark protocol kind."""

    title = "Ranked benchmark with efficiency and CO2"
    description = (
        "Models ranked per metric (1 = best) on the mean over categories, then by mean rank. Recall, precision "
        "and F1 use the declared calibration, which sees no test label. A '*' after a value marks a lead over "
        "the next model in that metric's ranking that holds in a paired bootstrap over test images (95 %). "
        "Efficiency figures were measured while the jobs ran; an empty cell says the figure could not be "
        "measured here (the notes column says why)."
    )
    options = ("calibration", "groups", "bootstrap", "metrics")
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
        "aupro",
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
        if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
            raise HarnessError(f"analysis.groups must be {{group: [categories]}}, got {groups}")

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
        """Rows per (model, category, seed), per group and global, with ranks and significance marks."""
        self.check_options(context.options)
        metrics = tuple(context.options.get("metrics", METRICS))
        spec = self._calibration(context)
        rows = [self._job_row(job, context, spec) for job in context.jobs]
        table = pd.DataFrame(rows)
        if table.empty:
            return AnalysisResult(table, [])
        # ranks within each category and seed, as paper 001's per-class appendix
        table = pd.concat(
            [rank_table(part, metrics) for _, part in table.groupby(["category", "seed"], sort=False)],
            ignore_index=True,
        )
        table["aggregate"] = "category"
        table["seed"] = table["seed"].astype("Int64")
        groups = {"all categories": list(dict.fromkeys(table["category"]))}
        groups.update({str(k): [str(c) for c in v] for k, v in (context.options.get("groups") or {}).items()})
        aggregates = [
            self._aggregate(table, name, members, metrics, context, spec)
            for name, members in groups.items()
            if set(members) & set(table["category"])
        ]
        result = pd.concat([table, *aggregates], ignore_index=True)
        figures = benchmark_figures(result[result["aggregate"] == "global"], context, self._composition(context))
        return AnalysisResult(result.assign(status="ok", error=""), figures)

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
            **ranking_metrics(scores, labels),
            **threshold_metrics(scores, labels, threshold),
            **job.pixel_metrics,
            "n_test": labels.size,
            **{k: figures.get(k, np.nan) for k in (*EFFICIENCY_SUMS, *EFFICIENCY_MEDIANS, *EFFICIENCY_MAX)},
            "notes": "; ".join(sorted({str(figures[k]) for k in NOTES if figures.get(k)})),
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
    ) -> pd.DataFrame:
        part = table[table["category"].isin(members)]
        per_seed = part.groupby(["model", "seed"], sort=False)[
            [*list(metrics), "precision", "pixel_auroc", "aupro", "pl"]
        ].mean()
        summary = per_seed.groupby("model", sort=False).mean()
        spread = per_seed.groupby("model", sort=False).std(ddof=0)
        for metric in metrics:
            summary[f"{metric}_std"] = spread[metric]
        by_model = part.groupby("model", sort=False)
        seeds = part.groupby(["model", "seed"], sort=False)
        for column in EFFICIENCY_SUMS:  # totals over the group's categories, mean over seeds
            summary[column] = seeds[column].sum(min_count=1).groupby("model", sort=False).mean()
        for column in EFFICIENCY_MEDIANS:
            summary[column] = by_model[column].median()
        for column in EFFICIENCY_MAX:
            summary[column] = by_model[column].max()
        summary["notes"] = by_model["notes"].agg(lambda n: "; ".join(sorted({x for x in n if x})))
        summary["weights"] = by_model["weights"].agg(lambda w: ", ".join(sorted(set(map(str, w)))))
        ranked = rank_table(summary.reset_index(), metrics)
        marks = self._significance(ranked, members, metrics, context, spec)
        for metric in metrics:
            ranked[f"{metric}_significant"] = ranked["model"].map(marks.get(metric, {})).fillna(False).astype(bool)
        return ranked.assign(
            category=name, aggregate="global" if name == "all categories" else "group", calibration=spec.label
        )

    def _significance(
        self, ranked: pd.DataFrame, members: list[str], metrics: tuple[str, ...], context: AnalysisContext, spec
    ) -> dict[str, dict[str, bool]]:
        """For each metric, whether each model's lead over the next-ranked one holds (paired bootstrap)."""
        resamples = int(context.options.get("bootstrap", 1000))
        if resamples <= 0 or len(ranked) < 2:
            return {}
        seed = min(job.seed for job in context.jobs)
        jobs = {(j.model, j.category): j for j in context.jobs if j.seed == seed and j.category in members}
        rng = np.random.default_rng([context.seed, 2025])
        draws: dict[str, dict[str, np.ndarray]] = {}  # model -> metric -> mean over categories per resample
        for category in members:
            sizes = {len(jobs[(m, category)].test) for m in ranked["model"] if (m, category) in jobs}
            if len(sizes) != 1:  # not the same test images: no paired comparison
                continue
            size = sizes.pop()
            index = rng.integers(0, size, size=(resamples, size))
            for model in ranked["model"]:
                job = jobs.get((model, category))
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
    def _composition(context: AnalysisContext) -> pd.DataFrame:
        first = {}
        for job in context.jobs:
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
