"""missing_type (paper 000, experiment 2): oracle thresholds calibrated without some defect types.

(A) one defect type left out of calibration, (B) one family of types left out. The oracle
threshold is fixed from all test normals plus the anomalies that remain, then evaluated on
the whole test set; the table counts the left-out anomalies it misses. Deployable
calibrations (KDE, ...) never see anomalies, so their threshold is the same in every row:
their misses among the same left-out anomalies stand alongside.

Families come from ``analysis.families`` (``{family: [types]}``), else from the dataset (the
embedded dataset and ``families.json`` files declare them). Analysis option ``modes``:
``[type, family]`` (default).
"""

from __future__ import annotations

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
    render_once,
    save,
    slug,
    successful,
    thresholds_of,
)
from harness_paradigms._lazy import lazy_module
from harness_paradigms.cached import source_digest
from harness_paradigms.options import MissingTypeOptions
from harness_paradigms.stress import calibrate_on, oracle_function

if TYPE_CHECKING:
    from harness.analysis import Finding

pd = lazy_module("pandas")
plt = lazy_module("matplotlib.pyplot")


def left_out_groups(
    defect_types: list[str], families: dict[str, str], modes: list[str]
) -> list[tuple[str, str, list[str]]]:
    """(mode, name, types) for every type, and every family whose types are present, to leave out."""
    groups = []
    if "type" in modes:
        groups += [("type", t, [t]) for t in defect_types]
    if "family" in modes:
        by_family: dict[str, list[str]] = {}
        for defect_type in defect_types:
            if defect_type in families:
                by_family.setdefault(families[defect_type], []).append(defect_type)
        groups += [("family", f, types) for f, types in sorted(by_family.items())]
    return groups


def _families(job: JobData, context: AnalysisContext) -> dict[str, str]:
    declared = context.options.get("families")
    if declared:
        return {str(t): str(f) for f, types in declared.items() for t in types}
    return dict(job.families)


class MissingType(AnalysisSpec):
    """The missing_type protocol kind."""

    title = "Oracle thresholds calibrated without some defect types"
    description = (
        "Each oracle threshold is fixed from all test normals plus every anomaly except the left-out type "
        "(mode 'type') or family of types (mode 'family'), then evaluated on the whole test set. "
        "'missed' counts the left-out anomalies below the threshold. Deployable calibrations see no anomaly: "
        "their rows show how the same left-out anomalies fare without test tuning."
    )
    options_model = MissingTypeOptions
    options = ("modes", "families")
    leaderboard_note = "Summed over categories, left-out groups and seeds; recall on the left-out anomalies."
    leaderboard_columns = (
        "model",
        "calibration",
        "mode",
        "left_out_missed",
        "left_out_count",
        "left_out_recall",
        "false_negatives",
        "false_positives",
    )
    detail_columns = (
        "model",
        "seed",
        "calibration",
        "mode",
        "left_out",
        "threshold",
        "left_out_missed",
        "left_out_count",
        "left_out_recall",
        "false_negatives",
        "false_positives",
    )
    latex_columns = leaderboard_columns

    def check_options(self, options) -> None:
        """Reject unknown modes or malformed families before anything is fitted."""
        modes = options.get("modes", ["type", "family"])
        if not isinstance(modes, list) or not modes or not set(modes) <= {"type", "family"}:
            raise HarnessError(f"analysis.modes must be a list from [type, family], got {modes}")
        families = options.get("families")
        if families is not None and not (
            isinstance(families, dict) and all(isinstance(v, list) for v in families.values())
        ):
            raise HarnessError(f"analysis.families must be {{family: [types]}}, got {families}")

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Rows per (model, category, seed, calibration, left-out group)."""
        self.check_options(context.options)
        modes = list(context.options.get("modes", ["type", "family"]))
        rows = []
        figures = []
        for job in context.jobs:
            test = job.test
            normal = test.loc[test["label"] == 0, "score"].to_numpy(float)
            anomalies = test[test["label"] == 1]
            families = _families(job, context)
            references = thresholds_of(job, context)
            job_rows = []
            for mode, name, types in left_out_groups(sorted(anomalies["defect_type"].unique()), families, modes):
                left_out = anomalies["defect_type"].isin(types)
                remaining = anomalies.loc[~left_out, "score"].to_numpy(float)
                held = anomalies.loc[left_out, "score"].to_numpy(float)
                for spec in context.calibrations:
                    if spec.oracle:
                        if remaining.size == 0:
                            continue  # nothing left to calibrate on
                        threshold = calibrate_on(normal, remaining, oracle_function(spec))
                    else:
                        threshold = references[spec.label]
                    missed = int(np.sum(held < threshold))
                    job_rows.append(
                        {
                            "model": job.model,
                            "category": job.category,
                            "seed": job.seed,
                            "weights": job.weights,
                            "calibration": spec.label,
                            "oracle": spec.oracle,
                            "mode": mode,
                            "left_out": name,
                            "left_out_types": "+".join(types),
                            "threshold": threshold,
                            "left_out_missed": missed,
                            "left_out_count": held.size,
                            "left_out_recall": 1 - missed / held.size,
                            "false_negatives": int(np.sum(anomalies["score"].to_numpy(float) < threshold)),
                            "false_positives": int(np.sum(normal >= threshold)),
                            "status": "ok",
                            "error": "",
                            "cache_key": job.key,
                        }
                    )
            rows.extend(job_rows)
            if job_rows and job.seed == min(j.seed for j in context.jobs):
                figures.append(self._figure(job, pd.DataFrame(job_rows), context))
        return AnalysisResult(pd.DataFrame(rows), figures)

    def _figure(self, job: JobData, rows: pd.DataFrame, context: AnalysisContext) -> FigureRecord:
        """The job's figure, drawn once per content: a rerun copies it from the derived cache beside the scores."""
        name = f"missing_{slug(job.model)}_{slug(job.category)}_seed{job.seed}.png"
        shown = rows[["mode", "left_out", "calibration", "left_out_recall"]].to_numpy().tolist()
        store = job.derived if job.view_digest is not None else None
        draw = lambda path: self._draw(job, rows, path)  # noqa: E731
        code = source_digest(__name__)
        render_once(context.figure_dir / name, draw, store, "missing_type", code, name, job.model, job.category, shown)
        caption = (
            f"{job.model} on {job.category}: recall on the anomalies left out of calibration, per left-out "
            "type and family and per calibration (paper 000, Figs 5-7)."
        )
        return FigureRecord(name, caption, category=job.category, model=job.model)

    def _draw(self, job: JobData, rows: pd.DataFrame, path: Any) -> None:
        modes = list(dict.fromkeys(rows["mode"]))
        fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 3.4), squeeze=False)
        for ax, mode in zip(axes[0], modes, strict=True):
            table = rows[rows["mode"] == mode]
            groups = list(dict.fromkeys(table["left_out"]))
            calibrations = list(dict.fromkeys(table["calibration"]))
            width = 0.8 / len(calibrations)
            for index, label in enumerate(calibrations):
                part = table[table["calibration"] == label].set_index("left_out").reindex(groups)
                ax.bar(
                    np.arange(len(groups)) + (index - (len(calibrations) - 1) / 2) * width,
                    part["left_out_recall"],
                    width=width,
                    label=label,
                )
            ax.set_xticks(np.arange(len(groups)), groups, fontsize=8, rotation=15)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("recall on the left-out anomalies", fontsize=8)
            ax.set_title(f"one {mode} left out of calibration", fontsize=9)
            ax.legend(fontsize=7)
        fig.suptitle(f"{job.model} / {job.category} (seed {job.seed})", fontsize=10)
        save(fig, path)

    def finding(self, rows: pd.DataFrame, summary: pd.DataFrame) -> Finding:
        """The report's opening numbers (see :func:`left_out_finding`)."""
        return left_out_finding(summary)

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Per (model, calibration, mode): misses and counts summed over categories, left-out groups and seeds."""
        ok = successful(rows)
        if ok.empty:
            return pd.DataFrame()
        grouped = ok.groupby(["model", "calibration", "mode"], sort=False)
        summary = grouped.agg(
            left_out_missed=("left_out_missed", "sum"),
            left_out_count=("left_out_count", "sum"),
            false_negatives=("false_negatives", "sum"),
            false_positives=("false_positives", "sum"),
            oracle=("oracle", "first"),
        )
        summary["left_out_recall"] = 1 - summary["left_out_missed"] / summary["left_out_count"]
        return summary.reset_index()


def left_out_finding(summary: pd.DataFrame) -> Finding:
    """missing_type: per model and mode, the oracle's misses among left-out defects beside the deployable's."""
    from harness.analysis import Finding

    columns = ("model", "mode", "calibration", "left_out_missed", "left_out_count", "left_out_recall")
    headers = ("model", "left out", "calibration", "left-out missed", "left-out defects", "left-out recall")
    keep = [c for c in columns if c in summary.columns]
    rows = tuple(tuple(row[c] for c in keep) for _, row in summary.iterrows())
    oracle = summary[summary["oracle"].astype(bool)]
    deployable = summary[~summary["oracle"].astype(bool)]
    worst = oracle.loc[oracle["left_out_recall"].astype(float).idxmin()] if not oracle.empty else None
    if worst is None:
        return Finding("No oracle calibration in this run: nothing was calibrated with a type left out.", tuple(keep))
    headline = (
        f"Calibrated on the test set with one defect {worst['mode']} left out, the oracle ({worst['calibration']}) "
        f"misses {int(worst['left_out_missed'])} of {int(worst['left_out_count'])} left-out defects "
        f"(recall {float(worst['left_out_recall']):.3f}, {worst['model']})"
    )
    if not deployable.empty:
        best = deployable.loc[deployable["left_out_recall"].astype(float).idxmax()]
        headline += f"; {best['calibration']} misses {int(best['left_out_missed'])} of them"
    numbers = {"oracle_left_out_missed": int(worst["left_out_missed"]), "left_out": int(worst["left_out_count"])}
    return Finding(headline + ".", tuple(keep), tuple(headers[columns.index(c)] for c in keep), rows, "", numbers)


@hookimpl
def harness_protocols() -> dict[str, object]:
    """Register missing_type."""
    return {"missing_type": MissingType()}
