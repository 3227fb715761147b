"""noisy_training (paper 004, section 3.8 "Noisy AD", after SoftPatch): defects slipped into the training set.

A seeded share of each category's test anomalies is handed to the model as if it were normal
training data. ``rates`` (default 0, 5, 10, 20 %) is the share of the resulting training set
that is defective: n = round(rate * normals / (1 - rate)). The candidates are decided once, from
the largest rate (a seeded draw of the test anomalies, at most ``max_pool_share`` of them, default
half, so every category keeps anomalies to test on); a smaller rate uses the first n of them. All
candidates are left out of evaluation at **every** rate, so the test set is the same across rates
and only the training set varies. Held-out normals for deployable calibrations stay clean and the
same at every rate. When a category has too few anomalies for a rate, ``contamination_actual``
says what was reached.

Analysis options: ``rates`` (fractions in [0, 1)), ``contamination_seed`` (default 0),
``max_pool_share`` (default 0.5).
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    Category,
    Distinct,
    Float,
    Fraction,
    NonNegativeInt,
    OptionsModel,
    ProtocolError,
    Record,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.sweep import job_rows, numeric_order, spread, sweep_figures

pd = lazy_module("pandas")

DEFAULT_RATES = (0.0, 0.05, 0.1, 0.2)
CONTAMINANT = "contaminant"
"""The split of the candidate contaminants: out of every evaluation."""


class NoisyTrainingOptions(OptionsModel):
    """Options of ``noisy_training`` (paper 004, section 3.8)."""

    rates: Annotated[tuple[Annotated[Float, Field(ge=0, lt=1)], ...], Field(min_length=1), Distinct] = Field(
        DEFAULT_RATES, description="defective shares of the training set, each in [0, 1)"
    )
    contamination_seed: NonNegativeInt = Field(0, description="seed of the draw of candidate contaminants")
    max_pool_share: Fraction = Field(0.5, description="at most this share of a category's test anomalies is drawn")


def parse_options(options: Any) -> tuple[tuple[float, ...], int, float]:
    """(rates, contamination_seed, max_pool_share) from ``analysis:``."""
    rates = options.get("rates", DEFAULT_RATES)
    try:
        rates = tuple(dict.fromkeys(float(r) for r in (rates if isinstance(rates, (list, tuple)) else [rates])))
    except (TypeError, ValueError):
        rates = ()
    if not rates or not all(0 <= r < 1 for r in rates):
        raise ProtocolError(
            f"expected a list of fractions in [0, 1), got {options.get('rates')!r}; e.g. [0, 0.1]",
            key="analysis.rates",
        )
    seed = options.get("contamination_seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ProtocolError(f"expected an integer, got {seed!r}", key="analysis.contamination_seed")
    share = options.get("max_pool_share", 0.5)
    if not isinstance(share, (int, float)) or not 0 < share < 1:
        raise ProtocolError(f"expected a fraction in (0, 1), got {share!r}", key="analysis.max_pool_share")
    return rates, seed, float(share)


def contaminant_pool(category: Category, n_normal: int, rates, seed: int, share: float) -> list[Record]:
    """The candidate contaminants of ``category``, in draw order: enough for the largest rate, capped by ``share``."""
    from harness_paradigms.subsets import contaminant_count

    anomalies = [r for r in category.split("test") if r.label]
    wanted = contaminant_count(max(rates), n_normal)
    count = min(wanted, int(share * len(anomalies)))
    order = np.random.default_rng([seed, zlib.crc32(category.name.encode())]).permutation(len(anomalies))
    return [anomalies[i] for i in order[:count]]


def without_pool(category: Category, pool: list[Record]) -> tuple[Category, list[Record]]:
    """``category`` with the pool moved out of its test split, and the pool's records as moved."""
    moved = {r: replace(r, split=CONTAMINANT) for r in pool}
    records = [moved.get(r, r) for r in category.records]
    return Category(category.name, records, category.families), [moved[r] for r in pool]


class NoisyTraining(AnalysisSpec):
    """The noisy_training protocol kind."""

    title = "Noisy training: defects slipped into the training set"
    description = (
        "A seeded share of the test anomalies is added to each model's training set as if normal (the rate is "
        "the defective share of the training set; paper 004, section 3.8). Every candidate contaminant is left "
        "out of evaluation at every rate, so all rates are tested on the same images; held-out normals for "
        "deployable calibrations stay clean. contamination_actual is the share reached when a category has "
        "too few anomalies."
    )
    options_model = NoisyTrainingOptions
    options = ("rates", "contamination_seed", "max_pool_share")
    leaderboard_note = "Per rate: mean over categories, then mean and std over seeds."
    leaderboard_columns = (
        "model",
        "calibration",
        "contamination",
        "auroc",
        "auroc_std",
        "ap",
        "recall",
        "f1",
        "false_negatives",
        "false_positives",
        "replicates",
    )
    latex_columns = leaderboard_columns
    detail_columns = (
        "model",
        "seed",
        "contamination",
        "contamination_actual",
        "n_contaminants",
        "calibration",
        "threshold",
        "auroc",
        "ap",
        "recall",
        "f1",
        "false_negatives",
        "false_positives",
    )

    def check_options(self, options: dict[str, Any]) -> None:
        """Reject bad rates, seed or share before anything is loaded."""
        parse_options(options)

    def plan_jobs(self, protocol, categories: list[Category], maker) -> list:
        """Per category, the pool moved out of the test set; one job per (model, seed, rate)."""
        from harness.analysis import TrainingSubset
        from harness_paradigms.subsets import ContaminatedSubset, contaminant_count

        rates, contamination_seed, share = parse_options(protocol.analysis)
        jobs = []
        for category in categories:
            n_normal = len(TrainingSubset(protocol.holdout_fraction, 0).split(category)[0])
            pool = contaminant_pool(category, n_normal, rates, contamination_seed, share)
            noisy, pool = without_pool(category, pool)
            for model in protocol.models:
                for seed in protocol.seeds:
                    job = maker(model, noisy, seed)
                    for rate in rates:
                        count = min(contaminant_count(rate, n_normal), len(pool))
                        subset = ContaminatedSubset(
                            job.subset.fraction_held_out,
                            job.subset.split_seed,
                            rate=rate,
                            contamination_seed=contamination_seed,
                            contaminants=tuple(pool[:count]),
                        )
                        jobs.append(replace(job, subset=subset))
        return jobs

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per job and calibration; the metric-vs-rate figure."""
        rows = []
        for job in context.jobs:
            subset = job.meta.get("subset", {})
            count = len(subset.get("contaminants", []))
            n_fit = int(job.meta.get("n_fit") or 0)
            setting = {
                "contamination": float(subset.get("contamination", 0.0)),
                "contamination_actual": count / n_fit if n_fit else 0.0,
                "n_contaminants": count,
            }
            rows += job_rows(job, context, **setting)
        table = pd.DataFrame(rows)
        caption = "Metrics against the contamination rate of the training set (paper 004, section 3.8)."
        figures = sweep_figures(
            self.summarise(table),
            context,
            "contamination",
            ("noisy_training.png", "noisy_training.csv"),
            (
                "defective share of the training set",
                "Metric vs contamination rate per model (mean over categories; bars: std over seeds)",
                caption,
                caption,
            ),
        )
        return AnalysisResult(table, figures)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per (model, calibration, rate): mean and std over seeds of the mean over categories."""
        if rows.empty or "contamination" not in rows:
            return pd.DataFrame()
        return spread(rows, "contamination", ["seed"], numeric_order)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register noisy_training."""
    return {"noisy_training": NoisyTraining()}
