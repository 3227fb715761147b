"""Typed registrations: what a plugin's hooks return, normalised in one place.

``harness_models()`` maps names to a :class:`ModelSpec` or, as before, to a plain factory (a
callable with optional attributes ``version``, ``why_unavailable()``, ``check_options(options,
key=)`` and ``supervised``): :func:`model_spec` turns either into a ``ModelSpec``.
``harness_metrics()`` maps names to :class:`MetricSpec`; ``harness_report_sections()`` returns
:class:`ReportSection` objects. Protocol kinds are :class:`harness.analyses.base.AnalysisSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from harness.errors import ProtocolError
from harness.integrity import content_digest
from harness.types import Detector, DetectorFactory

if TYPE_CHECKING:  # annotations only: registering a model must not import pandas
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and what the harness needs to know before building it.

    Attributes:
        factory: ``factory(**options) -> Detector``; ``options`` are the model's ``options`` from
            the protocol file (after validation by ``options`` when given).
        version: enters the score-cache key; bump it when the scores the model gives change.
        options: a pydantic model of the accepted options (checked when the protocol is loaded,
            before anything is fitted), or ``None`` to accept any keywords the factory takes.
        supervised: the model trains on labelled anomalies too (``fit(samples, anomalies=...)``);
            a protocol must then declare ``supervision:``.
        continual: the detector can continue fitting (``fit`` called again adds to what it learnt),
            for the continual-learning protocols.
        why_unavailable: returns why the model cannot run on this machine, or ``None`` when it can.
        cache_files: ``cache_files(options) -> paths`` of the files (or folders) the model reads
            (weights, teachers), so that the cache key hashes their content, not their path.
        check_options: a legacy check ``check_options(options, key=...)`` raising
            :class:`harness.ProtocolError`; prefer ``options``.
        description: one line for ``harness list models``.
        inputs: per-sample inputs the model needs besides the image, e.g. ``("xyz",)``: its samples
            then carry ``.xyz``, MVTec 3D-AD's point cloud (float32 H x W x 3 at the image size,
            loaded on access, handed over under an opaque name like the image). A dataset whose
            layout does not offer an input is refused with one line before anything is fitted.
            Known inputs: :data:`harness.data.extra_inputs.INPUTS`. Default: none.
        preload: modules the detector imports when built (e.g. ``("anomalib.models",)``): the harness
            imports them once in its own process before it forks the jobs that fit this model, so
            each job's process does not pay for the import again. Never imported for a run whose
            jobs are all cached, nor when the plugin is only listed. Default: none.

    """

    factory: DetectorFactory
    version: str = ""
    options: type[BaseModel] | None = None
    supervised: bool = False
    continual: bool = False
    why_unavailable: Callable[[], str | None] | None = None
    cache_files: Callable[[Mapping[str, Any]], Sequence[Path | str]] | None = None
    check_options: Callable[..., Any] | None = None
    description: str = ""
    inputs: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not callable(self.factory):
            raise TypeError(f"ModelSpec.factory must be callable, got {type(self.factory).__name__}")
        _check_inputs(self.inputs)
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "preload", tuple(self.preload))
        if self.options is not None and not (isinstance(self.options, type) and issubclass(self.options, BaseModel)):
            raise TypeError("ModelSpec.options must be a pydantic BaseModel subclass or None")

    def __call__(self, **options: Any) -> Detector:
        """Build a detector: ``factory(**options)`` (so a spec stands wherever a factory did)."""
        return self.factory(**options)

    def reason_unavailable(self) -> str | None:
        """Why the model cannot run here, or ``None``."""
        return self.why_unavailable() if self.why_unavailable is not None else None

    def validate_options(self, options: Mapping[str, Any], key: str = "options") -> dict[str, Any]:
        """``options`` checked against the options model and the legacy check; raises ProtocolError.

        Returns the options as given (the model's defaults are the factory's business, so that the
        cache key stays what the protocol file says).
        """
        options = dict(options)
        if self.options is not None:
            try:
                self.options.model_validate(options)
            except ValidationError as exc:
                raise ProtocolError(validation_message(exc), key=key) from None
        if self.check_options is not None:
            self.check_options(options, key=key)
        return options

    def files(self, options: Mapping[str, Any]) -> list[Path]:
        """The files and folders the model reads with ``options`` (for the cache key)."""
        return [Path(p) for p in self.cache_files(options)] if self.cache_files is not None else []

    def identity(self, options: Mapping[str, Any]) -> str:
        """What enters the score-cache key for the model's code and files.

        ``version``, plus the content hash of every file :meth:`files` names (a missing one enters as
        "missing"), so new weights at the same path give new scores.
        """
        files = self.files(options)
        if not files:
            return self.version
        parts = [f"{p.name}:{content_digest(p) if p.exists() else 'missing'}" for p in files]
        return f"{self.version} files[{', '.join(parts)}]"


def _check_inputs(inputs: object) -> None:
    from harness.data.extra_inputs import INPUTS

    if not isinstance(inputs, (tuple, list)) or not all(isinstance(name, str) for name in inputs):
        raise TypeError(f"ModelSpec.inputs must be a tuple of input names, e.g. ('xyz',), got {inputs!r}")
    unknown = [name for name in inputs if name not in INPUTS]
    if unknown:
        raise ValueError(f"ModelSpec.inputs: unknown input(s) {unknown}; known: {sorted(INPUTS)}")


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``key: what is wrong`` for the first error, and how many more."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where + ': ' if where else ''}{first['msg']}{more}"


def model_spec(entry: object) -> ModelSpec:
    """Normalise what ``harness_models()`` returned for one name: a ModelSpec, or a plain factory."""
    if isinstance(entry, ModelSpec):
        return entry
    if not callable(entry):
        raise TypeError(f"a model must be a ModelSpec or a callable factory, got {type(entry).__name__}")
    why = getattr(entry, "why_unavailable", None)
    options_model = getattr(entry, "options_model", None)
    return ModelSpec(
        factory=entry,
        version=str(getattr(entry, "version", "") or ""),
        options=options_model if isinstance(options_model, type) and issubclass(options_model, BaseModel) else None,
        supervised=bool(getattr(entry, "supervised", False)),
        why_unavailable=why if callable(why) else None,
        check_options=getattr(entry, "check_options", None),
        description=_first_line(getattr(entry, "__doc__", None)),
        inputs=_declared_inputs(getattr(entry, "inputs", ())),
        preload=_declared_inputs(getattr(entry, "preload", ())),
    )


def _declared_inputs(value: object) -> tuple[str, ...]:
    """A plain factory's ``inputs`` (or ``preload``) attribute when it is a sequence of names (anything else: none)."""
    if isinstance(value, (tuple, list)) and all(isinstance(name, str) for name in value):
        return tuple(value)
    return ()


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


@dataclass(frozen=True)
class MetricSpec:
    """A metric computed for every job from its test scores (``harness_metrics``).

    Attributes:
        name: the result column it fills.
        higher_is_better: its direction (report arrows, ranking).
        level: "image": ``function(scores, labels) -> float`` over the test images' scores and
            0/1 labels; "pixel": ``function(maps, masks) -> float`` over the test images' anomaly
            maps (N, H, W) and boolean masks, computed only when the model gives maps and the
            dataset has masks.
        function: computes the metric; NaN when it is undefined (e.g. a single class).
        description: one line for the documentation.
        version: what the value depends on besides its inputs (the code's and libraries'
            versions), a string or a function returning one (called only when a value is cached,
            so it may read files or package metadata). With one, each job's value is kept in the
            derived cache beside the scores, keyed by it and by the job's content: it must change
            whenever the value could. Without one (the default), the value is computed every run.

    """

    name: str
    higher_is_better: bool
    level: Literal["image", "pixel"]
    function: Callable[..., float]
    description: str = ""
    version: str | Callable[[], str] | None = None

    def __post_init__(self) -> None:
        if self.level not in ("image", "pixel"):
            raise ValueError(f"MetricSpec.level must be 'image' or 'pixel', got {self.level!r}")
        if not callable(self.function):
            raise TypeError("MetricSpec.function must be callable")

    def __call__(self, *arrays: np.ndarray) -> float:
        """The metric's value as a float."""
        return float(self.function(*arrays))


@dataclass(frozen=True)
class ReportSection:
    """An extra section of ``report.html`` and ``report.tex`` (``harness_report_sections``); everything is escaped.

    Attributes:
        title: the section heading.
        text: paragraphs (separated by blank lines).
        table: an optional table, rendered like the report's own.

    """

    title: str
    text: str = ""
    table: pd.DataFrame | None = field(default=None, repr=False)
