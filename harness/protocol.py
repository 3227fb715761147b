"""Protocol files: YAML -> validated, frozen :class:`ProtocolConfig`, with ``--set`` overrides.

The schema is :class:`harness.config.models.ProtocolFile` (pydantic); overrides are applied to
the parsed file and the whole is validated again, so ``--set`` values pass the same checks.
Errors name the file and line (or the ``--set`` that gave the value), the key path and the fix.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config.errors import described, error_at
from harness.config.models import DatasetConfig, EntrySpec, ProtocolFile
from harness.config.yamlio import Locator, compose_and_load, load_yaml_file
from harness.errors import ProtocolError
from harness.includes import expand_includes

__all__ = [
    "CalibrationConfig",
    "DatasetConfig",
    "ModelConfig",
    "NamedEntry",
    "ProtocolConfig",
    "apply_override",
    "load_protocol",
    "parse_override",
]


@dataclass(frozen=True)
class NamedEntry:
    """A model or calibration entry: a registered name, its options and the label rows carry."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    @classmethod
    def from_spec(cls, spec: EntrySpec) -> NamedEntry:
        """The runtime entry of a validated file entry (the label defaults to the name)."""
        return cls(spec.name, dict(spec.options), spec.label or spec.name)


ModelConfig = NamedEntry
CalibrationConfig = NamedEntry


@dataclass(frozen=True)
class ProtocolConfig:
    """A validated protocol file, as the rest of the harness reads it.

    ``spec`` is the typed file (:class:`~harness.config.models.ProtocolFile`); the other
    attributes are its parts in the shapes the pipeline uses. ``raw`` is the mapping after
    overrides, as written to ``run.json``.
    """

    path: Path
    kind: str
    version: int
    title: str
    dataset: DatasetConfig
    models: tuple[ModelConfig, ...]
    calibrations: tuple[CalibrationConfig, ...]
    seeds: tuple[int, ...]
    holdout_fraction: float
    report_formats: tuple[str, ...]
    analysis: Mapping[str, Any]
    executor: Mapping[str, Any]
    efficiency: Mapping[str, Any]
    supervision: Mapping[str, Any]
    raw: Mapping[str, Any]
    spec: ProtocolFile | None = field(default=None, repr=False, compare=False)
    locator: Locator = field(default_factory=lambda: Locator(None), repr=False, compare=False)
    overrides: Mapping[tuple[str | int, ...], str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def protocol(self) -> str:
        """The protocol kind's name (the file's ``protocol:`` key); prefer :attr:`kind`."""
        return self.kind

    def error(self, path: Sequence[str | int], message: str) -> ProtocolError:
        """A :class:`ProtocolError` at key ``path``, naming the file line or the ``--set`` that set it."""
        return error_at(path, message, source=self.path, locator=self.locator, overrides=self.overrides)

    def located(self, exc: ValidationError, data: Any, model: Any, prefix: Sequence[str | int]) -> ProtocolError:
        """A plugin options model's :class:`ValidationError` on ``data`` (found at ``prefix``) as one line."""
        path, message = described(exc, data, model)
        return self.error((*prefix, *path), message)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"dataset.categories=[bottle]"`` -> (["dataset", "categories"], ["bottle"])."""
    if "=" not in text:
        raise ProtocolError(f"--set {text!r} is not KEY=VALUE; write e.g. --set dataset.root=/data/mvtec")
    key, _, value = text.partition("=")
    if not key.strip():
        raise ProtocolError(f"--set {text!r} has an empty key")
    key = key.strip()
    try:
        parsed = compose_and_load(value, f"--set {key}")[0] if value.strip() else None
    except ProtocolError as exc:
        if "malformed YAML" not in str(exc):
            raise
        raise ProtocolError(
            f"--set {key}: value {value!r} is not valid YAML; quote it, e.g. --set \"{key}='{value}'\""
        ) from None
    return key.split("."), parsed


def apply_override(config: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    """Set ``config[k1][k2]... = value``; numeric keys index lists; missing dicts are created."""
    node: Any = config
    dotted = ".".join(keys)
    for depth, key in enumerate(keys):
        if not isinstance(node, (list, dict)):
            raise ProtocolError(f"--set {dotted}: '{'.'.join(keys[:depth])}' is a value, not a mapping")
        if isinstance(node, list) and not (key.isdigit() and int(key) < len(node)):
            raise ProtocolError(f"--set {dotted}: '{key}' is not an index of a list of {len(node)}")
        slot = int(key) if isinstance(node, list) else key
        if depth == len(keys) - 1:
            node[slot] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[slot]


def _key_path(keys: Sequence[str]) -> tuple[str | int, ...]:
    return tuple(int(k) if k.isdigit() else k for k in keys)


def _resolve_root(data: dict[str, Any], folder: Path, from_set: bool) -> dict[str, Any]:
    """A copy of ``data`` whose relative ``dataset.root`` is anchored (the file's folder, or the cwd for --set).

    The path is made absolute without resolving symlinks, so the user's path stays the one they gave.
    """
    dataset = data.get("dataset")
    root = dataset.get("root") if isinstance(dataset, dict) else None
    if not isinstance(root, str) or not root:
        return data
    path = Path(root).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() if from_set else folder) / path
    return {**data, "dataset": {**dataset, "root": str(path.absolute())}}


def load_protocol(path: Path | str, overrides: Sequence[str] = ()) -> ProtocolConfig:
    """Read, override and validate a protocol file (plugin-specific options: :func:`check_protocol`)."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"protocol file {path} not found; `harness list protocols` shows the shipped ones")
    data, node = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol file must be a YAML mapping (protocol:, dataset:, models:, ...)")
    data = expand_includes(copy.deepcopy(data), path)  # include: another file, overridden by this one
    set_keys: dict[tuple[str | int, ...], str] = {}
    for override in overrides:
        keys, value = parse_override(override)
        apply_override(data, keys, value)
        set_keys[_key_path(keys)] = override
    root_set = any(keys[:2] in (("dataset",), ("dataset", "root")) for keys in set_keys)
    checked = _resolve_root(data, path.parent, root_set)
    locator = Locator(node)
    try:
        spec = ProtocolFile.model_validate(checked)
    except ValidationError as exc:
        key, message = described(exc, checked, ProtocolFile)
        raise error_at(key, message, source=path, locator=locator, overrides=set_keys) from None
    return _config(path, spec, data, locator, set_keys)


def _config(
    path: Path, spec: ProtocolFile, raw: dict[str, Any], locator: Locator, overrides: dict[Any, str]
) -> ProtocolConfig:
    return ProtocolConfig(
        path=path,
        kind=spec.protocol,
        version=spec.version,
        title=spec.report.title or spec.title or spec.protocol,
        dataset=spec.dataset,
        models=tuple(NamedEntry.from_spec(m) for m in spec.models),
        calibrations=tuple(NamedEntry.from_spec(c) for c in spec.calibrations),
        seeds=spec.seeds,
        holdout_fraction=float(spec.holdout_fraction),
        report_formats=spec.report.formats,
        analysis=dict(spec.analysis),
        executor=dict(spec.executor),
        efficiency=dict(spec.efficiency),
        supervision=spec.supervision.model_dump() if spec.supervision else {},
        raw=raw,
        spec=spec,
        locator=locator,
        overrides=overrides,
    )


def __getattr__(name: str) -> Any:
    """``Protocol`` is the old name of :class:`ProtocolConfig` (it clashed with ``typing.Protocol``)."""
    if name == "Protocol":
        warnings.warn(
            "harness.protocol.Protocol is deprecated; use harness.protocol.ProtocolConfig",
            DeprecationWarning,
            stacklevel=2,
        )
        return ProtocolConfig
    raise AttributeError(f"module 'harness.protocol' has no attribute {name!r}")
