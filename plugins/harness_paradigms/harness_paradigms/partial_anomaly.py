"""partial_anomaly (paper 000, experiment 1): oracle thresholds from a fraction of the test anomalies.

For each fraction (10 % .. 100 %) and each of N seeded draws, the oracle threshold is fixed
from all test normals plus the drawn anomalies, then evaluated on the whole test set. The
spread of the threshold and of the false negatives shows how unstable test calibration is
when few anomalies are known. Deployable calibrations (KDE, ...) use no anomaly at all: they
appear as the reference at fraction 0.

Analysis options: ``fractions`` (default 0.1, 0.2, ..., 1.0), ``draws`` (default 10).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    FigureRecord,
    HarnessError,
    JobData,
    job_rng,
    render_once,
    save,
    slug,
    successful,
    thresholds_of,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.cached import source_digest
from harness_paradigms.options import PartialAnomalyOptions
from harness_paradigms.stress import calibrate_on, oracle_function, split_specs

if TYPE_CHECKING:
    from harness.analysis import Finding

pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")

DEFAULT_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def draw_thresholds(
    normal: np.ndarray,
    anomalous: np.ndarray,
    fractions: tuple[float, ...],
    draws: int,
    rng: np.random.Generator,
    threshold_of,
) -> pd.DataFrame:
    """One row per (fraction, draw): the threshold and its false negatives/positives on the whole test set."""
    rows = []
    for fraction in fractions:
        count = max(1, round(fraction * anomalous.size))
        for draw in range(draws):
            chosen = anomalous[rng.choice(anomalous.size, size=count, replace=False)]
            threshold = calibrate_on(normal, chosen, threshold_of)
            rows.append(
                (fraction, draw, count, threshold, int(np.sum(anomalous < threshold)), int(np.sum(normal >= threshold)))
            )
    return pd.DataFrame(
        rows, columns=["fraction", "draw", "anomalies_used", "threshold", "false_negatives", "false_positives"]
    )


def _options(options) -> tuple[tuple[float, ...], int]:
    try:
        fractions = tuple(float(f) for f in options.get("fractions", DEFAULT_FRACTIONS))
        draws = int(options.get("draws", 10))
    except (TypeError, ValueError):
        raise HarnessError("analysis.fractions must be a list of numbers and analysis.draws an integer") from None
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise HarnessError(f"analysis.fractions must be fractions in (0, 1], got {list(fractions)}")
    if draws < 1:
        raise HarnessError(f"analysis.draws must be at least 1, got {draws}")
    return fractions, draws


class PartialAnomaly(AnalysisSpec):
    """The partial_anomaly protocol kind."""

    title = "Oracle thresholds from part of the test anomalies"
    description = (
        "Each oracle threshold is fixed from all test normals plus a random fraction of the test anomalies "
        "(N seeded draws per fraction) and evaluated on the whole test set. Rows give the spread over draws. "
        "Deployable calibrations use no anomaly and appear at fraction 0 as the reference."
    )
    options_model = PartialAnomalyOptions
    options = ("fractions", "draws")
    leaderboard_note = (
        "Per fraction: threshold cv = mean over categories of the threshold's coefficient of variation across "
        "draws; false negatives summed over categories (mean and worst draw); recall mean and worst draw."
    )
    leaderboard_columns = (
        "model",
        "calibration",
        "fraction",
        "threshold_cv",
        "false_negatives_mean",
        "false_negatives_max",
        "recall_mean",
        "recall_min",
    )
    detail_columns = (
        "model",
        "seed",
        "calibration",
        "fraction",
        "threshold_mean",
        "threshold_std",
        "threshold_min",
        "threshold_max",
        "false_negatives_mean",
        "false_negatives_std",
        "false_negatives_min",
        "false_negatives_max",
        "recall_mean",
        "recall_min",
        "n_anomalous",
    )
    latex_columns = leaderboard_columns

    def check_options(self, options) -> None:
        """Reject bad fractions or draw counts before anything is fitted."""
        _options(options)

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Draw, re-calibrate, evaluate; rows per (model, category, seed, calibration, fraction).

        Each job's draws, rows and figure are kept in the derived cache beside its scores: asking
        the same question again (same scores, options, calibrations, seed and code) reads them back.
        """
        rows, figures, all_draws = [], [], []
        first_seed = min((j.seed for j in context.jobs), default=0)
        for job in context.jobs:
            job_rows, draws_table, deployed = _remembered_job_rows(job, context)
            rows.extend(job_rows)
            if draws_table is None:
                continue
            all_draws.append(draws_table)
            if job.seed == first_seed:
                n_anomalous = int((job.test["label"] == 1).sum())
                figures.append(self._figure(job, draws_table, deployed, n_anomalous, context))
        if all_draws:
            pd.concat(all_draws).to_csv(context.figure_dir / "partial_anomaly_draws.csv", index=False)
        return AnalysisResult(pd.DataFrame(rows), figures)

    def _figure(
        self,
        job: JobData,
        draws: pd.DataFrame,
        references: dict[str, float],
        n_anomalous: int,
        context: AnalysisContext,
    ) -> FigureRecord:
        name = f"partial_{slug(job.model)}_{slug(job.category)}_seed{job.seed}.png"
        drawn = draws[["fraction", "threshold", "false_negatives"]].to_numpy(np.float64)
        shown = hashlib.sha256(drawn.tobytes()).hexdigest()
        key = (job.model, job.category, job.seed, list(draws["calibration"]), drawn.shape, shown)
        store = job.derived if job.view_digest is not None else None
        render_once(
            context.figure_dir / name,
            lambda path: self._draw(job, draws, references, n_anomalous, path),
            store,
            "partial_anomaly",
            code_digest(),
            name,
            key,
            sorted(references.items()),
            n_anomalous,
        )
        caption = (
            f"{job.model} on {job.category}: oracle threshold (left) and false negatives on the whole test "
            "set (right) against the share of test anomalies available for calibration, over the draws "
            "(paper 000, Figs 3-4); dashed: deployable thresholds, which use no anomaly."
        )
        return FigureRecord(name, caption, category=job.category, model=job.model)

    def _draw(self, job: JobData, draws: pd.DataFrame, references: dict[str, Any], n_anomalous: int, path: Any) -> None:
        labels = list(dict.fromkeys(draws["calibration"]))
        fig, axes = plt.subplots(len(labels), 2, figsize=(11, 3.0 * len(labels)), squeeze=False)
        for row, label in enumerate(labels):
            table = draws[draws["calibration"] == label]
            fractions = sorted(table["fraction"].unique())
            positions = np.arange(len(fractions))
            for col, (column, title) in enumerate(
                [("threshold", "threshold"), ("false_negatives", f"false negatives (of {n_anomalous})")]
            ):
                ax = axes[row][col]
                ax.boxplot(
                    [table.loc[table["fraction"] == f, column] for f in fractions], positions=positions, widths=0.6
                )
                ax.set_xticks(positions, [f"{f:.0%}" for f in fractions], fontsize=7)
                ax.set_xlabel("share of test anomalies used to calibrate", fontsize=8)
                ax.set_ylabel(title, fontsize=8)
                ax.set_title(f"{label}: {title} over draws", fontsize=9)
                for index, (ref_label, (threshold, misses)) in enumerate(references.items()):
                    value = threshold if column == "threshold" else misses
                    ax.axhline(value, color=f"C{index + 1}", ls="--", lw=1, label=f"{ref_label} (no anomaly)")
                if references:
                    ax.legend(fontsize=7)
        fig.suptitle(f"{job.model} / {job.category} (seed {job.seed})", fontsize=10)
        save(fig, path)

    def finding(self, rows: pd.DataFrame, summary: pd.DataFrame) -> Finding:
        """The report's opening numbers (see :func:`fraction_finding`)."""
        return fraction_finding(summary)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per (model, calibration, fraction) over categories and seeds.

        ``threshold_cv`` is the mean over categories of the threshold's coefficient of variation
        across draws (scale-free, so categories with different score scales can be averaged);
        ``false_negatives_mean`` sums the per-category means; ``recall_min`` is the worst draw.
        """
        ok = successful(rows)
        if ok.empty:
            return pd.DataFrame()
        ok = ok.assign(threshold_cv=ok["threshold_std"] / ok["threshold_mean"].abs().replace(0, np.nan))
        grouped = ok.groupby(["model", "calibration", "fraction"], sort=False)
        summary = grouped.agg(
            threshold_cv=("threshold_cv", "mean"),
            false_negatives_mean=("false_negatives_mean", "sum"),
            false_negatives_max=("false_negatives_max", "sum"),
            recall_mean=("recall_mean", "mean"),
            recall_min=("recall_min", "min"),
            oracle=("oracle", "first"),
        )
        return summary.reset_index()


def _spread(table: pd.DataFrame, n_anomalous: int) -> dict[str, float]:
    recall = 1 - table["false_negatives"] / max(n_anomalous, 1)
    return {
        "threshold_mean": table["threshold"].mean(),
        "threshold_std": table["threshold"].std(ddof=0),
        "threshold_min": table["threshold"].min(),
        "threshold_max": table["threshold"].max(),
        "false_negatives_mean": table["false_negatives"].mean(),
        "false_negatives_std": table["false_negatives"].std(ddof=0),
        "false_negatives_min": int(table["false_negatives"].min()),
        "false_negatives_max": int(table["false_negatives"].max()),
        "false_positives_mean": table["false_positives"].mean(),
        "recall_mean": recall.mean(),
        "recall_std": recall.std(ddof=0),
        "recall_min": recall.min(),
        "recall_max": recall.max(),
    }


def fraction_finding(summary: pd.DataFrame) -> Finding:
    """partial_anomaly: per model, how the oracle threshold's recall varies with the share of anomalies it saw."""
    from harness.analysis import Finding

    columns = ("model", "calibration", "fraction", "recall_mean", "recall_min", "false_negatives_max", "threshold_cv")
    keep = [c for c in columns if c in summary.columns]
    ordered = summary.sort_values([c for c in ("model", "oracle", "fraction") if c in summary.columns])
    rows = tuple(tuple(row[c] for c in keep) for _, row in ordered.iterrows())
    oracle = summary[summary["oracle"].astype(bool)]
    if oracle.empty:
        return Finding("No oracle calibration in this run: the share of anomalies seen changes nothing.", tuple(keep))
    fewest = oracle[oracle["fraction"] == oracle["fraction"].min()]
    worst = fewest.loc[fewest["recall_min"].astype(float).idxmin()]
    headline = (
        f"Tuned on the test set with {float(worst['fraction']):.0%} of its anomalies, the oracle threshold's recall "
        f"drops to {float(worst['recall_min']):.3f} in the worst draw (mean {float(worst['recall_mean']):.3f}, "
        f"threshold cv {float(worst['threshold_cv']):.3f}; {worst['model']})"
    )
    deployable = summary[~summary["oracle"].astype(bool)]
    if not deployable.empty:
        row = deployable.iloc[0]
        headline += f"; {row['calibration']}, which sees no anomaly, has recall {float(row['recall_mean']):.3f}"
    numbers = {"fraction": float(worst["fraction"]), "oracle_recall_min": float(worst["recall_min"])}
    return Finding(headline + ".", tuple(keep), tuple(c.replace("_", " ") for c in keep), rows, "", numbers)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register partial_anomaly."""
    return {"partial_anomaly": PartialAnomaly()}


CODE = (
    "harness_paradigms.partial_anomaly",
    "harness_paradigms.stress",
    "harness.calibration",
    "harness.analyses.common",
)
"""The modules whose source a job's stored draws and figure depend on (with the numpy and pandas versions)."""


def code_digest() -> str:
    """A sha256 of the source of :data:`CODE` and the numpy and pandas versions (once per process)."""
    return source_digest(*CODE)


def _remembered_job_rows(
    job: JobData, context: AnalysisContext
) -> tuple[list[dict[str, Any]], pd.DataFrame | None, dict[str, tuple[float, int]]]:
    """:func:`_job_rows`, read back from the derived cache when the same question was asked of the same scores.

    Stored only when every calibrator is a built-in one (a plugin's calibrator may change without
    the harness knowing).
    """
    if not all(type(spec.calibrator).__module__ == "harness.calibration" for spec in context.calibrations):
        return _job_rows(job, context)

    def compute() -> dict[str, Any]:
        rows, table, deployed = _job_rows(job, context)
        draws = None if table is None else {column: table[column].tolist() for column in table}
        return {"rows": rows, "draws": draws, "deployed": deployed}

    described = [
        [spec.label, spec.name, spec.oracle, type(spec.calibrator).__name__, vars(spec.calibrator)]
        for spec in context.calibrations
    ]
    fractions, draws = _options(context.options)
    inputs = (list(fractions), draws, context.seed, described, job.weights)
    value = job.remember("partial_anomaly", compute, code_digest(), *inputs)
    table = None if value["draws"] is None else pd.DataFrame(value["draws"])
    deployed = {label: (threshold, missed) for label, (threshold, missed) in value["deployed"].items()}
    return value["rows"], table, deployed


def _job_rows(
    job: JobData, context: AnalysisContext
) -> tuple[list[dict[str, Any]], pd.DataFrame | None, dict[str, tuple[float, int]]]:
    """One job's rows (oracle draws per fraction, deployable references), its draws, and the deployed thresholds.

    The deployed thresholds map each deployable calibration to (threshold, anomalies it misses).
    """
    fractions, draws = _options(context.options)
    oracles, deployable = split_specs(context)
    test = job.test
    normal = test.loc[test["label"] == 0, "score"].to_numpy(float)
    anomalous = test.loc[test["label"] == 1, "score"].to_numpy(float)
    base = {
        "model": job.model,
        "category": job.category,
        "seed": job.seed,
        "weights": job.weights,
        "n_anomalous": anomalous.size,
        "n_normal": normal.size,
        "status": "ok",
        "error": "",
        "cache_key": job.key,
    }
    rows, job_draws = [], []
    for spec in oracles:
        rng = job_rng(context, job, spec.label)
        table = draw_thresholds(normal, anomalous, fractions, draws, rng, oracle_function(spec))
        table = table.assign(calibration=spec.label)
        job_draws.append(table)
        for fraction, group in table.groupby("fraction"):
            spread = _spread(group, anomalous.size)
            rows.append(
                {**base, "calibration": spec.label, "oracle": True, "fraction": fraction, "draws": len(group), **spread}
            )
    references = thresholds_of(job, context)
    deployed = {}
    for spec in deployable:
        threshold = references[spec.label]
        missed = int(np.sum(anomalous < threshold))
        deployed[spec.label] = (threshold, missed)
        fixed = pd.DataFrame(
            {
                "threshold": [threshold],
                "false_negatives": [missed],
                "false_positives": [int(np.sum(normal >= threshold))],
            }
        )
        spread = _spread(fixed, anomalous.size)
        rows.append({**base, "calibration": spec.label, "oracle": False, "fraction": 0.0, "draws": 1, **spread})
    if not job_draws:
        return rows, None, deployed
    draws_table = pd.concat(job_draws).assign(model=job.model, category=job.category, seed=job.seed)
    return rows, draws_table, deployed
