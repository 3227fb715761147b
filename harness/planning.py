"""Resolve: a protocol, the plugins and the dataset into one plan of jobs (runs no model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.analyses.base import AnalysisSpec, CalibrationSpec
from harness.contract import ModelSpec
from harness.data.base import Category
from harness.data.shaping import load_categories, open_dataset
from harness.errors import ProtocolError, unknown_name_message
from harness.plugins import Plugins, get_plugins
from harness.protocol import ModelConfig, Protocol
from harness.scoring import Job, TrainingSubset


def build_calibrations(protocol: Protocol, plugins: Plugins) -> list[CalibrationSpec]:
    """Instantiate the protocol's calibrators (bad options are protocol errors)."""
    specs = []
    for index, entry in enumerate(protocol.calibrations):
        factory = plugins.get("calibrations", entry.name, key=f"calibrations.{index}.name")
        try:
            calibrator = factory(**dict(entry.options))
        except TypeError as exc:
            raise ProtocolError(
                f"invalid options for calibration '{entry.name}': {exc}",
                path=protocol.path,
                key=f"calibrations.{index}.options",
            ) from None
        specs.append(CalibrationSpec(entry.label, entry.name, calibrator))
    return specs


def resolve_models(protocol: Protocol, plugins: Plugins) -> dict[str, ModelSpec]:
    """Each model of the protocol (by name) looked up once; an unknown name raises with its key."""
    return {
        model.name: plugins.model(model.name, key=f"models.{index}.name") for index, model in enumerate(protocol.models)
    }


def check_model_options(
    protocol: Protocol, models: Mapping[str, ModelSpec] | Plugins, labels: set[str] | None = None
) -> None:
    """Check each model's options against its spec (may import the model's library).

    ``models`` is :func:`resolve_models`'s mapping, or the plugins to look them up in.
    """
    specs = resolve_models(protocol, models) if isinstance(models, Plugins) else models
    for index, model in enumerate(protocol.models):
        if labels is not None and model.label not in labels:
            continue
        try:
            specs[model.name].validate_options(model.options, key=f"models.{index}.options")
        except ProtocolError as exc:
            raise ProtocolError(str(exc), path=protocol.path) from None


def check_analysis_options(protocol: Protocol, analysis: AnalysisSpec) -> None:
    """Reject analysis options the protocol kind does not declare, then let it check the values."""
    accepted = analysis.option_names()
    for name in protocol.analysis:
        if name not in accepted:
            raise ProtocolError(
                unknown_name_message(f"analysis option of {protocol.protocol}", str(name), accepted),
                path=protocol.path,
                key=f"analysis.{name}",
            )
    analysis.check_options(dict(protocol.analysis))


def check_supervision(protocol: Protocol, models: Mapping[str, ModelSpec]) -> None:
    """A supervised model needs the protocol to declare how many labelled anomalies it may train on."""
    for index, model in enumerate(protocol.models):
        if models[model.name].supervised and not protocol.supervision:
            raise ProtocolError(
                f"model '{model.name}' is supervised: declare how many labelled anomalies it may "
                "train on, e.g. supervision: {anomaly_train_fraction: 0.5}",
                path=protocol.path,
                key=f"models.{index}.name",
            )


@dataclass(frozen=True)
class JobMaker:
    """Builds jobs for a protocol; analyses that need other jobs than the standard ones use it."""

    protocol: Protocol
    plugins: Plugins
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    """The protocol's models as :func:`resolve_models` found them (looked up here when absent)."""

    def __call__(
        self, model: ModelConfig, category: Category, seed: int, test_categories: tuple[Category, ...] = ()
    ) -> Job:
        """A job fitting ``model`` on ``category`` with ``seed``, scoring ``test_categories`` (default itself)."""
        info = self.plugins.owner("models", model.name)
        spec = self.models.get(model.name) or self.plugins.model(model.name)
        factory_version = spec.identity(model.options)  # version, and the content of the files it reads
        subset = TrainingSubset(self.protocol.holdout_fraction, seed)
        return Job(
            model,
            category,
            seed,
            subset,
            self.protocol.dataset.image_size,
            info.name,
            info.version,
            factory_version,
            test_categories,
            dict(self.protocol.efficiency),
        )

    def standard(self, categories: list[Category]) -> list[Job]:
        """One job per category, model and seed: fit on the category, score its own test images."""
        return [
            self(model, category, seed)
            for category in categories
            for model in self.protocol.models
            for seed in self.protocol.seeds
        ]


@dataclass(frozen=True)
class RunPlan:
    """What a run will do: its jobs, calibrators, analysis (protocol kind) and categories."""

    protocol: Protocol
    jobs: list[Job]
    calibrations: list[CalibrationSpec]
    analysis: AnalysisSpec
    categories: list[Category]
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    """Each model name's :class:`ModelSpec`, looked up once."""


def resolve(protocol: Protocol, plugins: Plugins | None = None, check_options: bool = True) -> RunPlan:
    """Validate everything a run needs and list its jobs; runs no model.

    ``check_options=False`` leaves model options to be checked only for the models that will be
    fitted (cached jobs need no model library).
    """
    plugins = plugins or get_plugins()
    analysis = plugins.analysis(protocol.protocol, key="protocol")
    check_analysis_options(protocol, analysis)
    models = resolve_models(protocol, plugins)
    if check_options:
        check_model_options(protocol, models)
    calibrations = build_calibrations(protocol, plugins)
    check_supervision(protocol, models)
    categories = load_categories(open_dataset(protocol.dataset, plugins), protocol.dataset, protocol.supervision)
    jobs = analysis.plan_jobs(protocol, categories, JobMaker(protocol, plugins, models))
    return RunPlan(protocol, jobs, calibrations, analysis, categories, models)


def plan(
    protocol: Protocol, plugins: Plugins | None = None, check_options: bool = True
) -> tuple[list[Job], list[CalibrationSpec], AnalysisSpec]:
    """``(jobs, calibrations, analysis)`` of :func:`resolve` (kept for callers of the first release)."""
    resolved = resolve(protocol, plugins, check_options)
    return resolved.jobs, resolved.calibrations, resolved.analysis
