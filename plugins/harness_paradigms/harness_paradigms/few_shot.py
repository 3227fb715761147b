"""few_shot (paper 004, section 3.6 "Few Shot"): how a detector does when trained on k normal images.

For each k (default 1, 2, 4, 8, 16 and all) and each of ``draws`` seeded draws, the model is
fitted on k images drawn from the standard fit split of the defect-free training images; the
held-out normals that deployable calibrations (KDE, quantile, ...) use are the standard split's,
the same for every k and draw, so only the training set varies. ``all`` is the standard job,
shared with kde_vs_test through the cache. A k at least as large as the fit split is fitted once
(every draw would be the same set).

Rows: one per (model, category, seed, shots, draw, calibration). Leaderboard: per shots, the
mean and standard deviation over draws and seeds of the mean over categories.

Analysis options: ``shots`` (list of positive integers and/or ``all``), ``draws`` (default 5).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    Category,
    Distinct,
    OptionsModel,
    PositiveInt,
    ProtocolError,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.sweep import job_rows, numeric_order, spread, sweep_figures

pd = lazy_module("pandas")

DEFAULT_SHOTS = (1, 2, 4, 8, 16, "all")
ALL = "all"


class FewShotOptions(OptionsModel):
    """Options of ``few_shot`` (paper 004, section 3.6)."""

    shots: Annotated[tuple[PositiveInt | Literal["all"], ...], Field(min_length=1), Distinct] = Field(
        DEFAULT_SHOTS, description="numbers of normal training images (k), and/or all"
    )
    draws: PositiveInt = Field(5, description="seeded draws of the k training images per k")


def parse_options(options: Any) -> tuple[tuple[int | str, ...], int]:
    """(shots, draws) from ``analysis:``; a clear protocol error for anything else."""
    shots = options.get("shots", DEFAULT_SHOTS)
    draws = options.get("draws", 5)
    if isinstance(shots, (int, str)):
        shots = [shots]
    valid = isinstance(shots, (list, tuple)) and shots
    valid = valid and all(s == ALL or (isinstance(s, int) and not isinstance(s, bool) and s > 0) for s in shots)
    if not valid:
        raise ProtocolError(
            f"expected a list of positive integers and/or 'all', got {shots!r}; e.g. [1, 4, 16, all]",
            key="analysis.shots",
        )
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ProtocolError(f"expected a positive integer, got {draws!r}", key="analysis.draws")
    return tuple(dict.fromkeys(shots)), draws


def shots_of(meta: dict[str, Any]) -> tuple[int | str, int]:
    """(shots, draw) of a cached job from its subset description; the standard split is ``all``."""
    subset = meta.get("subset", {})
    return subset.get("shots", ALL), int(subset.get("draw", 0))


class FewShot(AnalysisSpec):
    """The few_shot protocol kind."""

    title = "Few-shot training: metrics against the number of normal training images"
    description = (
        "Each model is fitted on k defect-free training images (seeded draws per k) and tested on the full "
        "test set; deployable calibrations use the same held-out normals for every k, so only the training "
        "set varies (paper 004, section 3.6). The leaderboard gives, per k, the mean and the standard deviation "
        "over draws and seeds of the mean over categories."
    )
    options_model = FewShotOptions
    options = ("shots", "draws")
    leaderboard_note = "Per k: mean over categories, then mean and std over draws and seeds."
    leaderboard_columns = (
        "model",
        "calibration",
        "shots",
        "auroc",
        "auroc_std",
        "ap",
        "ap_std",
        "recall",
        "recall_std",
        "f1",
        "f1_std",
        "replicates",
    )
    latex_columns = leaderboard_columns
    detail_columns = (
        "model",
        "seed",
        "shots",
        "draw",
        "n_fit",
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
        """Reject bad ``shots`` or ``draws`` before anything is loaded."""
        parse_options(options)

    def plan_jobs(self, protocol, categories: list[Category], maker) -> list:
        """One job per (category, model, seed, k, draw); ``all`` is the standard job."""
        from harness_paradigms.subsets import FewShotSubset

        shots, draws = parse_options(protocol.analysis)
        jobs = []
        for category in categories:
            for model in protocol.models:
                for seed in protocol.seeds:
                    standard = maker(model, category, seed)
                    available = len(standard.subset.split(category)[0])
                    for k in shots:
                        if k == ALL:
                            jobs.append(standard)
                            continue
                        for draw in range(draws if k < available else 1):
                            subset = FewShotSubset(
                                standard.subset.fraction_held_out, standard.subset.split_seed, shots=k, draw=draw
                            )
                            jobs.append(replace(standard, subset=subset))
        return jobs

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per job and calibration; the spread table and the metric-vs-k figure."""
        rows = []
        for job in context.jobs:
            shots, draw = shots_of(job.meta)
            rows += job_rows(job, context, shots=str(shots), draw=draw)
        table = pd.DataFrame(rows)
        caption = "Metrics against k, the number of normal training images, per model (paper 004, section 3.6)."
        figures = sweep_figures(
            self.summarise(table),
            context,
            "shots",
            ("few_shot.png", "few_shot_spread.csv"),
            (
                "normal training images (k)",
                "Metric vs k per model (mean over categories; bars: std over draws and seeds)",
                caption,
                caption + " Mean and std over draws.",
            ),
        )
        return AnalysisResult(table, figures)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per (model, calibration, shots): mean and std over (seed, draw) of the mean over categories."""
        if rows.empty or "shots" not in rows:
            return pd.DataFrame()
        rows = rows.assign(shots=rows["shots"].astype(str))
        return spread(rows, "shots", ["seed", "draw"], numeric_order)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register few_shot."""
    return {"few_shot": FewShot()}
