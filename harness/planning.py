"""Resolve: a protocol, the plugins and the dataset into one plan of jobs (runs no model)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.analyses.base import AnalysisSpec, CalibrationSpec
from harness.config import check as config_check
from harness.contract import ModelSpec
from harness.data.base import Category
from harness.data.extra_inputs import check_inputs
from harness.data.shaping import load_categories, open_dataset
from harness.plugins import Plugins, get_plugins
from harness.protocol import ModelConfig, ProtocolConfig
from harness.scoring import Job, TrainingSubset


def build_calibrations(protocol: ProtocolConfig, plugins: Plugins) -> list[CalibrationSpec]:
    """Instantiate the protocol's calibrators (bad options are protocol errors naming the file's line)."""
    specs = []
    for index, entry in enumerate(protocol.calibrations):
        factory = plugins.get("calibrations", entry.name, key=f"calibrations.{index}.name")
        calibrator = config_check.check_calibration_options(protocol, factory, index)
        specs.append(CalibrationSpec(entry.label, entry.name, calibrator))
    return specs


def check_model_options(protocol: ProtocolConfig, plugins: Plugins, labels: set[str] | None = None) -> None:
    """Check each model's options against its spec (may import the model's library); ``labels`` limits which.

    Errors name the protocol file's line.
    """
    for index, model in enumerate(protocol.models):
        if labels is None or model.label in labels:
            spec = plugins.model(model.name, key=f"models.{index}.name")
            config_check.check_model_options(protocol, spec, index)


@dataclass(frozen=True)
class JobMaker:
    """Builds jobs for a protocol; analyses that need other jobs than the standard ones use it."""

    protocol: ProtocolConfig
    plugins: Plugins
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    """The protocol's models as :func:`resolve` found them (looked up here when absent)."""

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
            inputs=spec.inputs,
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

    protocol: ProtocolConfig
    jobs: list[Job]
    calibrations: list[CalibrationSpec]
    analysis: AnalysisSpec
    categories: list[Category]
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    """Each model name's :class:`ModelSpec`, looked up once."""


def resolve(protocol: ProtocolConfig, plugins: Plugins | None = None, check_options: bool = True) -> RunPlan:
    """Validate everything a run needs and list its jobs; runs no model.

    ``check_options=False`` leaves model options to be checked only for the models that will be
    fitted (cached jobs need no model library).
    """
    plugins = plugins or get_plugins()
    analysis = config_check.check_protocol(protocol, plugins, models=check_options)
    # each model looked up once; an unknown name raises with its key
    models = {m.name: plugins.model(m.name, key=f"models.{i}.name") for i, m in enumerate(protocol.models)}
    calibrations = build_calibrations(protocol, plugins)
    categories = load_categories(open_dataset(protocol.dataset, plugins), protocol.dataset, protocol.supervision)
    jobs = analysis.plan_jobs(protocol, categories, JobMaker(protocol, plugins, models))
    check_inputs(jobs, protocol.dataset.effective_layout)  # a model needing xyz on a layout without: one line
    check_held_out(protocol, jobs, calibrations if analysis.calibrates else [])
    return RunPlan(protocol, jobs, calibrations, analysis, categories, models)


def check_held_out(protocol: ProtocolConfig, jobs: list[Job], calibrations: list[CalibrationSpec]) -> None:
    """A calibration that thresholds on held-out normals (``needs_holdout``), and a job that would hold none out.

    Found here, before any fit, rather than when the first job is calibrated; ``calibrations`` are the
    ones the protocol kind applies (none for a threshold-free kind, ``AnalysisSpec.calibrates``).
    """
    needing = [c.label for c in calibrations if getattr(c.calibrator, "needs_holdout", False)]
    for job in jobs if needing else ():
        if not job.subset.split(job.category)[1]:
            train = sum(len(part.split("train")) for part in job.category.members or (job.category,))
            raise protocol.error(
                ("holdout_fraction",),
                f"calibration '{needing[0]}' needs held-out normal images, but category '{job.category.name}' "
                f"would hold out none of its {train} training images; raise holdout_fraction (now "
                f"{protocol.holdout_fraction:g}) or drop the calibrations that need them ({', '.join(needing)})",
            )


def plan(
    protocol: ProtocolConfig, plugins: Plugins | None = None, check_options: bool = True
) -> tuple[list[Job], list[CalibrationSpec], AnalysisSpec]:
    """``(jobs, calibrations, analysis)`` of :func:`resolve` (kept for callers of the first release)."""
    resolved = resolve(protocol, plugins, check_options)
    return resolved.jobs, resolved.calibrations, resolved.analysis
