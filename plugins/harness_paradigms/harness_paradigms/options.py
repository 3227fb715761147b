"""The ``analysis:`` options of the paradigm kinds, as typed models.

A protocol kind declares its options with ``options_model = SomeOptions`` (a pydantic model,
best derived from :class:`harness.analysis.OptionsModel`); the harness validates the protocol's
``analysis:`` mapping against it before anything is fitted, and ``harness schema`` and the README
list its keys. The validation context carries ``calibrations`` (the protocol's calibration
labels) for checks that need them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from harness.analysis import Bool, Distinct, Float, NonNegativeInt, OptionsModel, PositiveInt, Str

BENCHMARK_METRICS = ("auroc", "recall", "f1", "ap")
PARTIAL_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


Groups = Annotated[dict[Str, tuple[Str, ...]], BeforeValidator(_none_as_empty)]


class KdeVsTestOptions(OptionsModel):
    """Options of ``kde_vs_test`` (paper 000)."""

    bootstrap: NonNegativeInt = Field(1000, description="bootstrap resamples for recall/F1 intervals; 0 = off")
    review: NonNegativeInt = Field(
        6, description="images per label-review list; 0 = off (drawn by `plugins/harness_review`)"
    )
    map_panels: Bool = Field(True, description="draw anomaly-map panels per category (`plugins/harness_review`)")


class BenchmarkOptions(OptionsModel):
    """Options of ``benchmark`` (papers 001, 004)."""

    calibration: Str | None = Field(
        None, description="label of the calibration for recall, precision, F1; default: the first non-oracle"
    )
    metrics: Annotated[tuple[Literal[BENCHMARK_METRICS], ...], Field(min_length=1), Distinct] = Field(
        BENCHMARK_METRICS, description="metrics to rank by"
    )
    rank_by: Literal["metric_mean", "mean_rank"] = Field(
        "metric_mean", description="order by the first metric's mean (paper 001) or by the mean rank (ours)"
    )
    bootstrap: NonNegativeInt = Field(1000, description="paired-bootstrap resamples for the '*' marks; 0 = off")
    groups: Str | Groups = Field(
        default_factory=dict, description="a named group set (e.g. mvtec_ad_paper001) or {group: [categories]}"
    )

    @field_validator("calibration")
    @classmethod
    def _declared(cls, label: str | None, info: ValidationInfo) -> str | None:
        labels = (info.context or {}).get("calibrations")
        if label is not None and labels is not None and label not in labels:
            raise ValueError(f"'{label}' is not among the protocol's calibrations {sorted(labels)}")
        return label


class MissingTypeOptions(OptionsModel):
    """Options of ``missing_type`` (paper 000, experiment 2)."""

    modes: Annotated[tuple[Literal["type", "family"], ...], Field(min_length=1), Distinct] = Field(
        ("type", "family"), description="leave out one defect type, one family of types, or both"
    )
    families: Annotated[dict[Str, tuple[Str, ...]] | None, BeforeValidator(lambda v: v or None)] = Field(
        None, description="{family: [types]}; null = the dataset's own families"
    )


class PartialAnomalyOptions(OptionsModel):
    """Options of ``partial_anomaly`` (paper 000, experiment 1)."""

    fractions: Annotated[tuple[Annotated[Float, Field(gt=0, le=1)], ...], Field(min_length=1), Distinct] = Field(
        PARTIAL_FRACTIONS, description="shares of the test anomalies the oracle sees, each in (0, 1]"
    )
    draws: PositiveInt = Field(10, description="seeded draws per fraction")


class PerTypeOptions(OptionsModel):
    """Options of ``per_type`` (paper 003)."""

    group_by: Literal["family", "type"] = Field("family", description="AUROC per defect family or per type")


class MulticlassOptions(OptionsModel):
    """Options of ``multiclass_unified`` (paper 004)."""

    unified: Bool = Field(True, description="fit one model on every category's normals")
    cross_matrix: Bool = Field(True, description="per-category models also score every other category")
    train_on: Str | dict[Str, Str] | None = Field(
        None, description="a category (or {model label: category}): one model fitted on it, tested on all"
    )
