"""Resolve: a protocol, the plugins and the dataset into one plan of jobs (runs no model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.analyses.base import CalibrationSpec
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


def check_model_options(protocol: Protocol, plugins: Plugins, labels: set[str] | None = None) -> None:
    """Let each model's factory reject unknown options (may import the model's library)."""
    for index, model in enumerate(protocol.models):
        if labels is not None and model.label not in labels:
            continue
        check = getattr(plugins.get("models", model.name), "check_options", None)
        if check is not None:
            try:
                check(dict(model.options), key=f"models.{index}.options")
            except ProtocolError as exc:
                raise ProtocolError(str(exc), path=protocol.path) from None


def check_analysis_options(protocol: Protocol, analysis: Any) -> None:
    """Reject analysis options the protocol kind does not declare, then let it check the values."""
    accepted = set(getattr(analysis, "options", ()))
    for name in protocol.analysis:
        if name not in accepted:
            raise ProtocolError(
                unknown_name_message(f"analysis option of {protocol.protocol}", str(name), accepted),
                path=protocol.path,
                key=f"analysis.{name}",
            )
    check = getattr(analysis, "check_options", None)
    if check is not None:
        check(dict(protocol.analysis))


def check_supervision(protocol: Protocol, plugins: Plugins) -> None:
    """A supervised model needs the protocol to declare how many labelled anomalies it may train on."""
    for index, model in enumerate(protocol.models):
        if getattr(plugins.get("models", model.name), "supervised", False) and not protocol.supervision:
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

    def __call__(
        self, model: ModelConfig, category: Category, seed: int, test_categories: tuple[Category, ...] = ()
    ) -> Job:
        """A job fitting ``model`` on ``category`` with ``seed``, scoring ``test_categories`` (default itself)."""
        info = self.plugins.owner("models", model.name)
        factory_version = str(getattr(self.plugins.get("models", model.name), "version", ""))
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
    analysis: Any
    categories: list[Category]


def resolve(protocol: Protocol, plugins: Plugins | None = None, check_options: bool = True) -> RunPlan:
    """Validate everything a run needs and list its jobs; runs no model.

    ``check_options=False`` leaves model options to be checked only for the models that will be
    fitted (cached jobs need no model library).
    """
    plugins = plugins or get_plugins()
    analysis = plugins.get("protocols", protocol.protocol, key="protocol")
    check_analysis_options(protocol, analysis)
    for index, model in enumerate(protocol.models):
        plugins.get("models", model.name, key=f"models.{index}.name")
    if check_options:
        check_model_options(protocol, plugins)
    calibrations = build_calibrations(protocol, plugins)
    check_supervision(protocol, plugins)
    categories = load_categories(open_dataset(protocol.dataset, plugins), protocol.dataset, protocol.supervision)
    maker = JobMaker(protocol, plugins)
    planner = getattr(analysis, "plan_jobs", None)
    jobs = planner(protocol, categories, maker) if planner else maker.standard(categories)
    return RunPlan(protocol, jobs, calibrations, analysis, categories)


def plan(
    protocol: Protocol, plugins: Plugins | None = None, check_options: bool = True
) -> tuple[list[Job], list[CalibrationSpec], Any]:
    """``(jobs, calibrations, analysis)`` of :func:`resolve` (kept for callers of the first release)."""
    resolved = resolve(protocol, plugins, check_options)
    return resolved.jobs, resolved.calibrations, resolved.analysis
