"""The protocol file's schema: one pydantic model per section, each key typed with its default and doc.

``ProtocolFile`` is the file as written (its JSON schema is ``harness schema``; the README's
protocol reference is generated from it). Sections whose keys depend on a plugin (a layout's
``dataset.options``, a model's or calibration's ``options``, a protocol kind's ``analysis``)
are mappings here and are checked against the plugin's own options model by
:func:`harness.config.check.check_protocol`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from harness.config.types import Bool, Distinct, Float, Fraction, NonNegativeInt, OptionsModel, PositiveInt, Str

DEFAULT_CALIBRATIONS = ("test_f1_oracle", "test_youden_oracle", "kde")


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


def _set_fields(model: OptionsModel) -> dict[str, Any]:
    """The keys the file set, as a plain mapping (what the rest of the harness reads)."""
    return model.model_dump(exclude_unset=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value


def _image_pair(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a positive integer or [height, width]")
    return value


Mapping_ = Annotated[dict[str, Any], BeforeValidator(_none_as_empty)]
ImageSize = Annotated[
    tuple[PositiveInt, PositiveInt],
    BeforeValidator(_image_pair),
    Field(
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {"type": "array", "prefixItems": [{"type": "integer", "exclusiveMinimum": 0}] * 2},
            ]
        }
    ),
]


class SyntheticOptions(OptionsModel):
    """Options of the embedded synthetic dataset (used when there is no ``dataset.root``)."""

    n_train: PositiveInt = Field(60, description="defect-free training images per category")
    n_test_good: PositiveInt = Field(20, description="defect-free test images per category")
    n_per_defect: PositiveInt = Field(6, description="test images per defect type")
    size: PositiveInt = Field(128, description="image side in pixels")
    seed: NonNegativeInt = Field(0, description="generator seed")


class DatasetConfig(OptionsModel):
    """Where the images come from. ``root=None`` means the embedded synthetic dataset."""

    layout: Str = Field(
        "mvtec",
        description=(
            "registered layout: mvtec, loco, folder, synthetic, visa, mvtec_ad2, mvtec_3d, btech, kolektor_sdd2, "
            "mpdd, real_iad (harness list datasets)"
        ),
    )
    root: Path | None = Field(
        None,
        description="dataset folder, relative to the protocol file (to the working directory with --set); "
        "null = the embedded dataset",
    )
    categories: Annotated[tuple[Annotated[Str, Field(min_length=1)], ...] | None, Field(min_length=1), Distinct] = (
        Field(None, description="categories to run, e.g. [bottle, screw]; null = every category found")
    )
    image_size: ImageSize = Field(128, validate_default=True, description="side, or [height, width], images resize to")
    options: Mapping_ = Field(default_factory=dict, description="the layout's own options (see Datasets)")
    synthetic: Annotated[SyntheticOptions, BeforeValidator(_none_as_empty), AfterValidator(_set_fields)] = Field(
        default_factory=dict, validate_default=True, description="options of the embedded dataset"
    )
    max_train_images: PositiveInt | None = Field(None, description="seeded subsample of the training normals")
    max_test_images_per_type: PositiveInt | None = Field(
        None, description="seeded subsample of each test type (good included)"
    )
    rebalance_normals: Fraction | None = Field(
        None, description="move train normals into test until this share of it is good (paper 001)"
    )
    audit: Bool | None = Field(
        None,
        description="audit the dataset (near-duplicates, label conflicts, masks, unreadable files) into the report; "
        "null = on for data on disk, off for the embedded synthetic dataset; never changes a number",
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _single_category(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def effective_layout(self) -> str:
        """``synthetic`` when no root is given for the mvtec or loco layout, else ``layout``."""
        return "synthetic" if self.root is None and self.layout in ("mvtec", "loco", "synthetic") else self.layout

    @property
    def effective_options(self) -> dict[str, Any]:
        """Options passed to the layout."""
        return dict(self.synthetic if self.effective_layout == "synthetic" else self.options)


class EntrySpec(OptionsModel):
    """A model or calibration entry: a registered name, its options and the label its rows carry."""

    name: Annotated[Str, Field(min_length=1)] = Field(description="registered name (harness list models/calibrations)")
    label: Str | None = Field(None, description="name shown in results; defaults to the name; unique per list")
    options: Mapping_ = Field(default_factory=dict, description="the model's or calibration's own options")


def _entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


Entries = Annotated[tuple[Annotated[EntrySpec, BeforeValidator(_entry)], ...], Field(min_length=1)]


class ReportSection(OptionsModel):
    """What ``harness run`` renders."""

    formats: Annotated[tuple[Literal["html", "latex"], ...], Distinct] = Field(
        ("html", "latex"), description="report formats"
    )
    title: Str | None = Field(None, description="report title (default: the top-level title)")


class SupervisionSection(OptionsModel):
    """Labelled anomalies set aside for supervised models; they leave every model's evaluation."""

    anomaly_train_fraction: Fraction = Field(description="share of each defect type's test images to train on")
    seed: NonNegativeInt = Field(0, description="seed of that draw")


class EfficiencyOptions(OptionsModel):
    """How efficiency is measured while jobs run (measuring never changes scores)."""

    energy: Bool = Field(True, description="track energy with codecarbon (offline)")
    latency_repeats: PositiveInt = Field(5, description="warm scoring repeats; latency is their median")
    grid_intensity: Annotated[Float, Field(ge=0)] = Field(0.475, description="kg CO2 per kWh (paper 001)")
    country: Annotated[Str, Field(pattern="^[A-Z]{3}$")] = Field(
        "BEL", description="ISO 3166 alpha-3 country for codecarbon"
    )
    sample_seconds: Annotated[Float, Field(gt=0)] = Field(0.05, description="memory and GPU sampling period")


class LocalExecutorOptions(OptionsModel):
    """Jobs on this machine, each in its own process (a crash or timeout fails only that job)."""

    name: Literal["local"] = Field("local", description="executor")
    workers: PositiveInt = Field(1, description="jobs at a time")
    gpus: NonNegativeInt | Literal["auto", "none"] | None = Field(
        None, description="one worker per GPU: a count or auto; null = no pinning"
    )
    timeout: Annotated[Float, Field(gt=0)] | None = Field(
        None, description="seconds a job may run before it is stopped as failed; null = no limit"
    )
    isolate: Bool = Field(True, description="each job in its own process; false = in this process (debugging)")


class RayExecutorOptions(OptionsModel):
    """Jobs as Ray tasks on an existing cluster."""

    name: Literal["ray"] = Field(description="executor")
    address: Str | None = Field(None, description="cluster address, e.g. 127.0.0.1:6379; null = local Ray")
    cpus_per_job: Annotated[Float, Field(gt=0)] = Field(1, description="CPUs per task")
    gpus_per_job: Annotated[Float, Field(ge=0)] = Field(0, description="GPUs per task")


class SubmititExecutorOptions(OptionsModel):
    """Jobs as a SLURM job array through submitit."""

    name: Literal["submitit"] = Field(description="executor")
    folder: Str | None = Field(None, description="submitit's log folder")
    cluster: Literal["slurm", "local", "debug"] | None = Field(None, description="null = auto-detect")
    slurm: Mapping_ = Field(default_factory=dict, description="SLURM parameters, e.g. {partition: gpu}")


def _executor_name(value: Any) -> Any:
    value = _none_as_empty(value)
    return {"name": "local", **value} if isinstance(value, dict) and "name" not in value else value


ExecutorOptions = Annotated[
    Union[LocalExecutorOptions, RayExecutorOptions, SubmititExecutorOptions],  # noqa: UP007 (discriminated)
    Field(discriminator="name"),
]


class ProtocolFile(OptionsModel):
    """A protocol file as written: registered names and their options, no code."""

    protocol: Annotated[Str, Field(min_length=1)] = Field(
        description="the protocol kind, e.g. kde_vs_test (harness list protocols)"
    )
    version: PositiveInt = Field(1, description="bump when the numbers this file produces change")
    title: Str | None = Field(None, description="report title (default: the kind)")
    description: Str | None = Field(None, description="free text for readers of the file")
    dataset: Annotated[DatasetConfig, BeforeValidator(_none_as_empty)] = Field(
        default_factory=DatasetConfig, description="where the images come from"
    )
    models: Entries = Field(description="models: names, or {name, label, options}")
    calibrations: Entries = Field(
        DEFAULT_CALIBRATIONS, validate_default=True, description="threshold sources: names or entries"
    )
    seeds: Annotated[tuple[NonNegativeInt, ...], BeforeValidator(_one_or_many), Field(min_length=1), Distinct] = Field(
        (0,), description="one fit per model, category and seed"
    )
    holdout_fraction: Annotated[Float, Field(ge=0, lt=1)] = Field(
        0.25, description="share of training normals held out from fitting for calibration"
    )
    report: Annotated[ReportSection, BeforeValidator(_none_as_empty)] = Field(
        default_factory=ReportSection, description="report formats and title"
    )
    analysis: Mapping_ = Field(default_factory=dict, description="options of the protocol kind (see Protocols)")
    executor: Annotated[ExecutorOptions, BeforeValidator(_executor_name), AfterValidator(_set_fields)] = Field(
        default_factory=lambda: {"name": "local"}, description="where jobs run: local, ray, submitit"
    )
    efficiency: Annotated[EfficiencyOptions, BeforeValidator(_none_as_empty), AfterValidator(_set_fields)] = Field(
        default_factory=dict, description="how efficiency is measured"
    )
    supervision: Annotated[SupervisionSection | None, BeforeValidator(lambda v: v or None)] = Field(
        None, description="labelled anomalies for supervised models"
    )

    @field_validator("models", "calibrations")
    @classmethod
    def _distinct_labels(cls, entries: tuple[EntrySpec, ...]) -> tuple[EntrySpec, ...]:
        labels = [entry.label or entry.name for entry in entries]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"two entries share the label '{twice[0]}'; give each a distinct 'label:'")
        return entries
