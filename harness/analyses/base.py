"""What an analysis receives (cached scores per job) and returns (rows, figures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from harness.calibration import Calibrator
from harness.metrics import PIXEL_METRICS, ranking_metrics


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

    @cached_property
    def image_metrics(self) -> dict[str, float]:
        """AUROC and AP of the test scores."""
        return ranking_metrics(self.test["score"].to_numpy(float), self.test["label"].to_numpy(int))

    @cached_property
    def pixel_metrics(self) -> dict[str, float]:
        """Each of ``harness.metrics.PIXEL_METRICS`` when the model gives maps and the dataset has masks."""
        maps, masks = self.load_maps(), self.load_masks()
        if maps is None or masks is None or not masks.any():
            return {name: float("nan") for name in PIXEL_METRICS}
        return {name: metric(maps, masks) for name, metric in PIXEL_METRICS.items()}


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
    return JobData(job.model, category, job.seed, job.key, job.meta, frame, maps, masks, job.families)


def restrict(job: JobData, category: str, holdout: str = "all") -> JobData:
    """The same job seen through the test images of one source category.

    ``holdout="all"`` keeps every held-out normal (a unified model's pooled calibration set);
    ``"own"`` keeps only that category's.
    """
    scores = job.scores
    is_test = scores["split"] == "test"
    in_category = scores["category"] == category
    keep_holdout = ~is_test & (in_category if holdout == "own" else True)
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


class Analysis(Protocol):
    """A protocol kind."""

    title: str
    description: str
    options: tuple[str, ...]
    """Names of the keys this kind accepts under ``analysis:`` in a protocol."""

    def analyse(self, context: AnalysisContext) -> AnalysisResult:
        """Compute rows and figures from cached scores."""

    def summarise(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The leaderboard: rows aggregated for the report's first table."""


def successful(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that did not fail (all rows when there is no ``status`` column)."""
    return rows[rows["status"] == "ok"] if "status" in rows else rows
