"""per_type (paper 003, Tables 1 and 3): image AUROC on all anomalies and on each type or family alone.

Each group's AUROC ranks the test normals against that group's anomalies only, so a model
that finds structural defects but misses logical ones shows it (MVTec LOCO: the ``loco``
layout declares the families ``logical`` and ``structural``). The leaderboard has one row per
model with a column per group (mean over categories and seeds); a second table gives AUROC per
category with the mean (paper 003, Table 3).

Analysis option ``group_by``: ``family`` (default; falls back to types when the dataset
declares no families) or ``type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import hookimpl
from harness.analysis import (
    AnalysisContext,
    AnalysisResult,
    AnalysisSpec,
    FigureRecord,
    HarnessError,
    ranking_metrics,
    successful,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.options import PerTypeOptions

pd = lazy_module("pandas")


def anomaly_groups(types: list[str], families: Mapping[str, str], group_by: str) -> dict[str, list[str]]:
    """``{group: [defect types]}``: every type on its own, or the dataset's families."""
    if group_by == "family" and families:
        groups: dict[str, list[str]] = {}
        for defect_type in types:
            groups.setdefault(families.get(defect_type, defect_type), []).append(defect_type)
        return dict(sorted(groups.items()))
    return {t: [t] for t in types}


class PerType(AnalysisSpec):
    """The per_type protocol kind."""

    title = "AUROC per anomaly type"
    description = (
        "Image AUROC of the test normals against all anomalies, then against each family (or type) "
        "alone: logical vs structural anomalies on MVTec LOCO (paper 003, Table 1). Threshold-free, "
        "so no calibration is involved."
    )
    options_model = PerTypeOptions
    calibrates = False  # threshold-free: AUROC and AP only
    options = ("group_by",)
    leaderboard_note = "Mean over categories and seeds."
    detail_columns = ("model", "seed", "group", "auroc", "ap", "n_normal", "n_anomalous")

    def leaderboard_columns(self, summary: pd.DataFrame) -> list[str]:
        """Model, one AUROC column per group present, then provenance."""
        groups = [c for c in summary.columns if c.startswith("auroc_")]
        return ["model", *groups, "weights", "categories", "seeds"]

    latex_columns = leaderboard_columns

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Reject an unknown ``group_by`` before anything is fitted."""
        group_by = options.get("group_by", "family")
        if group_by not in ("family", "type"):
            raise HarnessError(f"analysis.group_by must be 'family' or 'type', got '{group_by}'")

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """One row per (model, category, seed, group), the group ``all`` first."""
        self.check_options(context.options)
        group_by = context.options.get("group_by", "family")
        rows = []
        for job in context.jobs:
            test = job.test
            normal = test[test["label"] == 0]
            types = sorted(test.loc[test["label"] == 1, "defect_type"].unique())
            groups = {"all": types, **anomaly_groups(types, job.families, group_by)}
            for group, types in groups.items():
                part = pd.concat([normal, test[test["defect_type"].isin(types)]])
                rows.append(
                    {
                        "model": job.model,
                        "category": job.category,
                        "seed": job.seed,
                        "weights": job.weights,
                        "group": group,
                        "types": "+".join(types),
                        **ranking_metrics(part["score"].to_numpy(float), part["label"].to_numpy(int)),
                        "n_normal": len(normal),
                        "n_anomalous": len(part) - len(normal),
                        "status": "ok",
                        "error": "",
                        "cache_key": job.key,
                    }
                )
        table = pd.DataFrame(rows)
        figures = []
        if not table.empty:
            per_category = self.per_category(table)
            per_category.to_csv(context.figure_dir / "auroc_per_category.csv", index=False)
            caption = "Image AUROC on all anomalies per category, with the mean (paper 003, Table 3)."
            figures.append(FigureRecord("auroc_per_category.csv", caption, kind="table"))
        return AnalysisResult(table, figures)

    @staticmethod
    def per_category(rows: pd.DataFrame) -> pd.DataFrame:
        """Models x categories AUROC (group ``all``, mean over seeds) and the mean over categories."""
        overall = successful(rows)
        overall = overall[overall["group"] == "all"]
        wide = overall.pivot_table(index="model", columns="category", values="auroc", aggfunc="mean", sort=False)
        wide["mean"] = wide.mean(axis=1)
        return wide.reset_index()

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One row per model: AUROC per group (``all`` first), mean over categories and seeds."""
        ok = successful(rows)
        if ok.empty:
            return pd.DataFrame()
        groups = ["all", *sorted(set(ok["group"]) - {"all"})]
        wide = ok.pivot_table(index="model", columns="group", values="auroc", aggfunc="mean", sort=False)
        wide = wide[groups].rename(columns=lambda g: f"auroc_{g}")
        grouped = ok.groupby("model", sort=False)
        wide["weights"] = grouped["weights"].agg(lambda w: ", ".join(sorted(set(map(str, w)))))
        wide["categories"] = grouped["category"].nunique()
        wide["seeds"] = grouped["seed"].nunique()
        return wide.reset_index()


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register per_type."""
    return {"per_type": PerType()}
