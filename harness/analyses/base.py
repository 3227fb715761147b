"""What an analysis receives (cached scores per job) and returns (rows, figures)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from harness.calibration import Calibrator
from harness.contract import MetricSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class JobData:
    """The cached outcome of one job, with ground truth joined after scoring."""

    model: str
    category: str
    seed: int
    key: str
    meta: Mapping[str, Any]
    scores: pd.DataFrame
    load_maps: Callable[[], np.ndarray | None] = field(repr=False)
    load_masks: Callable[[], np.ndarray | None] = field(repr=False)
    families: Mapping[str, str] = field(default_factory=dict)
    """Defect type -> family, as the dataset declares them."""
    load_holdout_maps: Callable[[], np.ndarray | None] = field(default=lambda: None, repr=False)
    """Maps of the held-out normals (rows of ``holdout`` order), or ``None`` (no maps, or an older cache entry)."""

    @property
    def weights(self) -> str:
        """How the model's weights were initialised."""
        return str(self.meta.get("weights", "unknown"))

    @cached_property
    def holdout(self) -> np.ndarray:
        """Scores of held-out defect-free training images (what deployable calibrators see)."""
        return self.scores.loc[self.scores["split"] == "holdout", "score"].to_numpy(float)

    @cached_property
    def test(self) -> pd.DataFrame:
        """Test rows: path, score, label, defect_type."""
        return self.scores[self.scores["split"] == "test"].reset_index(drop=True)

    derived: Any = field(default=None, repr=False)
    """A :class:`harness.derived_cache.DerivedCache` beside the score cache (metric values, figures), or ``None``."""

    @cached_property
    def image_metrics(self) -> dict[str, float]:
        """Every registered image-level metric of the test scores (built-in: AUROC and AP)."""

        def compute(specs: Mapping[str, MetricSpec]) -> dict[str, float]:
            scores, labels = self.test["score"].to_numpy(float), self.test["label"].to_numpy(int)
            return {name: _metric_value(spec, scores, labels) for name, spec in specs.items()}

        return self._cached_metrics("image", compute)

    @cached_property
    def pixel_metrics(self) -> dict[str, float]:
        """Every registered pixel-level metric (built-in: pixel AUROC, AUPRO, PL) when there are maps and masks."""

        def compute(specs: Mapping[str, MetricSpec]) -> dict[str, float]:
            maps, masks = self.load_maps(), self.load_masks()
            if maps is None or masks is None or not masks.any():
                return dict.fromkeys(specs, float("nan"))
            return {name: _metric_value(spec, maps, masks) for name, spec in specs.items()}

        return self._cached_metrics("pixel", compute)

    @cached_property
    def view_digest(self) -> str | None:
        """A content hash of what this view of the job holds, or ``None`` when the entry records no checksums.

        The job's key (model, options, data by content, seed), the score entry's file checksums and
        the test rows this view keeps (paths, labels, scores): what a metric or figure of the job
        depends on, so derived artefacts can be reused while it stays the same.
        """
        import pandas as pd

        from harness.derived_cache import digest

        files = (self.meta.get("integrity") or {}).get("files") if isinstance(self.meta, Mapping) else None
        if not files:
            return None
        test = self.test
        rows = hashlib.sha256("\n".join(map(str, test.get("path", pd.Series(dtype=str)))).encode())
        rows.update(test["label"].to_numpy(np.int64).tobytes())
        rows.update(test["score"].to_numpy(np.float64).tobytes())
        rows.update(self.holdout.tobytes())
        checksums = {name: info.get("sha256") for name, info in sorted(files.items())}
        return digest("job-view", self.key, checksums, rows.hexdigest(), self.model, self.category, self.seed)

    def remember(self, name: str, compute: Callable[[], Any], *inputs: object) -> Any:
        """``compute()``, a JSON value, or the value stored for the same view of this job and ``inputs``.

        "Score once, calibrate many" for an analysis's own per-job work (draws, re-calibrations,
        tables): the value is kept in the derived cache beside the scores, keyed by
        :attr:`view_digest` (the scores this view holds), ``name`` and ``inputs`` (everything else
        it depends on: options, calibrations, seeds, and a version or hash of the code that
        computes it), and sha256-verified on every read (a damaged record is named and
        recomputed). Without a derived cache, or for an entry without checksums, it is computed
        every time. The value comes back as JSON reads it (tuples as lists) whether computed or
        stored, so a rerun gives the same result either way.

        .. versionadded:: 0.3
        """
        import json

        from harness.derived_cache import digest

        key = digest("job-value", name, self.view_digest, *inputs) if self.derived and self.view_digest else None
        value = self.derived.get_value(key) if key else None
        if value is None:
            value = json.loads(json.dumps(compute(), allow_nan=True))
            if key:
                self.derived.put_value(key, value)
        return value

    def _cached_metrics(
        self, level: str, compute: Callable[[Mapping[str, MetricSpec]], dict[str, float]]
    ) -> dict[str, float]:
        """Registered ``level`` metrics; those with a known version read from the derived cache when stored there."""
        from harness.derived_cache import digest, floats, is_number_map

        specs = _metrics(level)
        versions = {name: version for name, spec in specs.items() if (version := _version(spec, level)) is not None}
        builtin = sorted(versions)
        view = self.view_digest if self.derived is not None else None
        key = digest("metrics", level, builtin, [versions[n] for n in builtin], view) if view and builtin else None
        stored = self.derived.get_value(key) if key else None
        values = floats(stored) if is_number_map(stored, builtin) else {}
        missing = {name: spec for name, spec in specs.items() if name not in values}
        if missing:
            values.update(compute(missing))
            if key:
                self.derived.put_value(key, {name: values[name] for name in builtin})
        return {name: values[name] for name in specs}


def _version(spec: MetricSpec, level: str) -> object:
    """What ``spec``'s value depends on besides its inputs (its values may be cached), or ``None``.

    The harness' own metrics: their module's and libraries' versions; a plugin's: its ``MetricSpec.version``.
    """
    if getattr(spec.function, "__module__", "") in ("harness.metrics", "harness.builtin_metrics"):
        from harness.metrics import metric_versions

        return metric_versions(level)
    try:
        return spec.version() if callable(spec.version) else spec.version
    except Exception as exc:  # a plugin's bug: its values are computed every run, never cached
        warnings.warn(
            f"metric '{spec.name}': version failed ({type(exc).__name__}: {exc}); not cached",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _metrics(level: str) -> dict[str, MetricSpec]:
    from harness.plugins import get_plugins

    return {name: spec for name, spec in get_plugins().metrics().items() if spec.level == level}


def _metric_value(spec: MetricSpec, *arrays: np.ndarray) -> float:
    """The metric, or NaN with a warning naming it when a plugin's function fails."""
    try:
        return spec(*arrays)
    except Exception as exc:
        warnings.warn(f"metric '{spec.name}' failed: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        return float("nan")


def _positions_loader(load: Callable[[], np.ndarray | None], positions: np.ndarray) -> Callable[[], np.ndarray | None]:
    def loader() -> np.ndarray | None:
        full = load()
        return None if full is None else full[positions]

    return loader


def _keep_rows(job: JobData, keep: pd.Series, category: str) -> JobData:
    """``job`` with only the score rows in ``keep``; maps and masks follow the kept test rows."""
    is_test = job.scores["split"] == "test"
    positions = np.flatnonzero(keep[is_test].to_numpy())
    frame = job.scores[keep].reset_index(drop=True)
    maps, masks = _positions_loader(job.load_maps, positions), _positions_loader(job.load_masks, positions)
    held = np.flatnonzero(keep[job.scores["split"] == "holdout"].to_numpy())
    holdout_maps = _positions_loader(job.load_holdout_maps, held)
    return JobData(
        job.model, category, job.seed, job.key, job.meta, frame, maps, masks, job.families, holdout_maps, job.derived
    )


def restrict(job: JobData, category: str, holdout: str = "all") -> JobData:
    """The same job seen through the test images of one source category.

    ``holdout="all"`` keeps every held-out normal (a unified model's pooled calibration set);
    ``"own"`` keeps only that category's.
    """
    scores = job.scores
    is_test = scores["split"] == "test"
    in_category = scores["category"] == category
    keep_holdout = (scores["split"] == "holdout") & (in_category if holdout == "own" else True)
    return _keep_rows(job, keep_holdout | (is_test & in_category), category)


def without_supervision_images(job: JobData) -> JobData:
    """The job seen through the test images left after the protocol's supervision split."""
    scores = job.scores
    if "supervision" not in scores or not scores["supervision"].astype(bool).any():
        return job
    return _keep_rows(job, ~scores["supervision"].astype(bool), job.category)


def evaluation_view(job: JobData) -> JobData:
    """What every analysis evaluates: a supervised model without the test images it trained on.

    Models that train on no label keep the whole test set, so adding a supervised model never
    changes their numbers.
    """
    return without_supervision_images(job) if job.meta.get("supervised") else job


@dataclass(frozen=True)
class CalibrationSpec:
    """A configured calibrator and the label its rows carry."""

    label: str
    name: str
    calibrator: Calibrator

    @property
    def oracle(self) -> bool:
        """Whether it reads test labels."""
        return bool(getattr(self.calibrator, "oracle", False))


@dataclass(frozen=True)
class FigureRecord:
    """A figure (PNG) or table (CSV) written by an analysis, with what the report needs to place it."""

    file: str
    caption: str
    category: str | None = None
    model: str | None = None
    kind: str = "figure"  # "figure" (PNG) or "table" (CSV rendered as a table in both reports)


@dataclass
class AnalysisContext:
    """Everything an analysis may use. It never gets a detector: only cached scores."""

    jobs: Sequence[JobData]
    calibrations: Sequence[CalibrationSpec]
    figure_dir: Path
    options: Mapping[str, Any]
    seed: int = 0
    """Seed for the analysis's own randomness (draws, bootstrap): the protocol's first seed."""


@dataclass
class AnalysisResult:
    """Result rows (one per model, category, seed, calibration, setting) and figures."""

    rows: pd.DataFrame
    figures: list[FigureRecord]


_AT_THRESHOLD = ("accuracy", "precision", "recall", "f1", "false_negatives", "false_positives")
_THRESHOLD_FREE = ("auroc", "ap")
_PIXEL = ("pixel_auroc", "aupro", "pl")
_METRICS = (*_AT_THRESHOLD, *_THRESHOLD_FREE, *_PIXEL)

LEADERBOARD_COLUMNS: tuple[str, ...] = ("model", "calibration", "weights", *_METRICS)
"""The report's first table, unless a protocol kind declares its own ``leaderboard_columns``."""
DETAIL_COLUMNS: tuple[str, ...] = ("model", "seed", "calibration", "threshold", *_METRICS)
"""The per-category tables, unless a protocol kind declares its own ``detail_columns``."""
LATEX_COLUMNS: tuple[str, ...] = ("model", "calibration", *_AT_THRESHOLD, *_THRESHOLD_FREE)
"""The LaTeX summary table, unless a protocol kind declares its own ``latex_columns``."""

Columns = Sequence[str] | Callable[["pd.DataFrame"], Sequence[str]]
"""A column list, or a function of the summary table for data-dependent columns."""


class AnalysisSpec:
    """A protocol kind (``harness_protocols``): every extension point, with its default.

    Subclass it and override what you need; only :meth:`analyse` is required. An object that is
    not a subclass (today's duck-typed contract) is wrapped by :func:`analysis_spec`, which reads
    the same names with the same defaults.

    Attributes:
        title: the report's heading.
        description: one paragraph under the heading (what the protocol asks, which paper).
        options_model: a pydantic model of the keys accepted under ``analysis:`` (typed, with
            defaults and ranges; checked when the protocol is loaded, before anything is fitted).
        options: the former declaration, a tuple of key names (still read, with a
            DeprecationWarning, when there is no ``options_model``).
        leaderboard_note: the sentence above the report's first table.
        leaderboard_columns: the report's first table (default :data:`LEADERBOARD_COLUMNS`).
        detail_columns: the per-category tables (default :data:`DETAIL_COLUMNS`).
        latex_columns: the LaTeX summary table (default :data:`LATEX_COLUMNS`).
        preload: modules its analysis imports (e.g. ``("scipy.stats", "matplotlib.pyplot")``),
            imported while the run waits for its jobs, so the analysis does not wait for them after.
        calibrates: whether it applies the protocol's calibrations to its jobs (default True). A
            threshold-free kind sets False: its jobs then need no held-out normals for them.

    """

    title: str = ""
    description: str = ""
    options_model: type[BaseModel] | None = None
    options: tuple[str, ...] | type[Any] = ()
    leaderboard_note: str = "Summary over categories and seeds."
    leaderboard_columns: Columns = LEADERBOARD_COLUMNS
    detail_columns: Columns = DETAIL_COLUMNS
    latex_columns: Columns = LATEX_COLUMNS
    preload: tuple[str, ...] = ()
    calibrates: bool = True

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Compute rows and figures from cached scores (required)."""
        raise NotImplementedError(f"{type(self).__name__} must implement analyse(context)")

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The leaderboard: rows aggregated for the report's first table (default: the successful rows)."""
        return successful(rows)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Reject bad ``analysis:`` values with :class:`harness.ProtocolError` (default: accept)."""

    def plan_jobs(self, protocol: Any, categories: list[Any], maker: Any) -> list[Any]:
        """The jobs to run (default: ``maker.standard(categories)``, one per category, model and seed).

        ``maker(model, category, seed, test_categories=())`` builds any other job.
        """
        return maker.standard(categories)

    def option_names(self) -> set[str]:
        """The names accepted under ``analysis:``."""
        model = self.options_model or self.options
        fields = getattr(model, "model_fields", None)
        return set(fields) if fields is not None else {str(name) for name in self.options}

    def finding(self, rows: pd.DataFrame, summary: pd.DataFrame) -> Any:
        """The result in numbers the report opens with: a :class:`harness.report.finding.Finding`.

        ``rows`` are the successful result rows, ``summary`` the leaderboard. The default reads the
        leaderboard (:func:`harness.report.finding.default_finding`): the oracle gap per model where
        it has oracle and deployable rows, else the models ranked by the first metric it has.
        """
        from harness.report.finding import default_finding

        return default_finding(summary)

    def columns(self, which: str, summary: pd.DataFrame) -> list[str]:
        """``leaderboard``, ``detail`` or ``latex`` columns, resolved against the summary table."""
        columns = getattr(self, f"{which}_columns")
        return list(columns(summary) if callable(columns) else columns)


def __getattr__(name: str) -> Any:
    if name == "Analysis":  # the typing.Protocol of the first release
        warnings.warn(
            "harness.analyses.Analysis is renamed harness.AnalysisSpec; import that instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return AnalysisSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_EXTENSION_ATTRIBUTES = tuple(AnalysisSpec.__annotations__)
"""What a duck-typed kind may declare as attributes: every one :class:`AnalysisSpec` annotates."""
_EXTENSION_METHODS = ("analyse", "summarise", "finding", "check_options", "plan_jobs")


class _DuckTypedAnalysis(AnalysisSpec):
    """An analysis registered without subclassing :class:`AnalysisSpec`, seen through it.

    Its attributes and methods shadow the defaults (a method it sets to ``None`` keeps the default).
    """

    def __init__(self, wrapped: object) -> None:
        if not callable(getattr(wrapped, "analyse", None)):
            raise TypeError(f"a protocol kind needs analyse(context); {type(wrapped).__name__} has none")
        self.wrapped = wrapped
        for name in _EXTENSION_ATTRIBUTES:
            if hasattr(wrapped, name):
                setattr(self, name, getattr(wrapped, name))
        for name in _EXTENSION_METHODS:
            if getattr(wrapped, name, None):
                setattr(self, name, getattr(wrapped, name))

    def __getattr__(self, name: str) -> Any:  # anything else the plugin's own code reads
        wrapped = self.__dict__.get("wrapped")
        if wrapped is None:
            raise AttributeError(name)
        return getattr(wrapped, name)


def analysis_spec(entry: object) -> AnalysisSpec:
    """Normalise what ``harness_protocols()`` returned for one kind into an :class:`AnalysisSpec`."""
    return entry if isinstance(entry, AnalysisSpec) else _DuckTypedAnalysis(entry)


def successful(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that did not fail (all rows when there is no ``status`` column)."""
    return rows[rows["status"] == "ok"] if "status" in rows else rows
