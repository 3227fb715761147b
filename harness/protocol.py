"""Protocol files: YAML -> validated, frozen configuration, with ``--set`` overrides.

Errors name the file, the dotted key and (where the file has it) the line, then the fix.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ProtocolError, unknown_name_message
from harness.includes import expand_includes

TOP_LEVEL_KEYS = {
    "protocol",
    "version",
    "title",
    "description",
    "dataset",
    "models",
    "calibrations",
    "seeds",
    "holdout_fraction",
    "report",
    "analysis",
    "executor",
    "efficiency",
    "supervision",
}
DATASET_KEYS = {
    "layout",
    "root",
    "categories",
    "image_size",
    "options",
    "synthetic",
    "max_train_images",
    "max_test_images_per_type",
    "rebalance_normals",
}
ENTRY_KEYS = {"name", "label", "options"}
REPORT_KEYS = {"formats", "title"}
REPORT_FORMATS = {"html", "latex"}


@dataclass(frozen=True)
class DatasetConfig:
    """Where the images come from. ``root=None`` means the embedded synthetic dataset."""

    layout: str = "mvtec"
    root: Path | None = None
    categories: tuple[str, ...] | None = None
    image_size: tuple[int, int] = (128, 128)
    options: Mapping[str, Any] = field(default_factory=dict)
    synthetic: Mapping[str, Any] = field(default_factory=dict)
    max_train_images: int | None = None
    max_test_images_per_type: int | None = None
    rebalance_normals: float | None = None
    """Move training normals into the test set until this share of test images is good (paper 001)."""

    @property
    def effective_layout(self) -> str:
        """``synthetic`` when no root is given for the mvtec or loco layout, else ``layout``."""
        return "synthetic" if self.root is None and self.layout in ("mvtec", "loco", "synthetic") else self.layout

    @property
    def effective_options(self) -> dict[str, Any]:
        """Options passed to the layout."""
        return dict(self.synthetic if self.effective_layout == "synthetic" else self.options)


@dataclass(frozen=True)
class NamedEntry:
    """A model or calibration entry: a registered name, its options and the label rows carry."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


ModelConfig = NamedEntry
CalibrationConfig = NamedEntry


@dataclass(frozen=True)
class Protocol:
    """A validated protocol file."""

    path: Path
    protocol: str
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


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"dataset.categories=[bottle]"`` -> (["dataset", "categories"], ["bottle"])."""
    if "=" not in text:
        raise ProtocolError(f"--set {text!r} is not KEY=VALUE; write e.g. --set dataset.root=/data/mvtec")
    key, _, value = text.partition("=")
    if not key.strip():
        raise ProtocolError(f"--set {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ProtocolError(f"--set {key}: value {value!r} is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), parsed


def apply_override(config: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    """Set ``config[k1][k2]... = value``; numeric keys index lists; missing dicts are created."""
    node: Any = config
    dotted = ".".join(keys)
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ProtocolError(f"--set {dotted}: '{key}' is not an index of a list of {len(node)}")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        else:
            raise ProtocolError(f"--set {dotted}: '{'.'.join(keys[:depth])}' is a value, not a mapping")


class _Locator:
    """Finds the line of a dotted key in the YAML source, for error messages."""

    def __init__(self, text: str) -> None:
        try:
            self.root = yaml.compose(text)
        except yaml.YAMLError:
            self.root = None

    def line(self, key: str) -> int | None:
        node = self.root
        for part in key.replace("[", ".").replace("]", "").split("."):
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
            else:
                return None
            if node is None:
                return None
        return node.start_mark.line + 1 if node is not None else None


def load_protocol(path: Path | str, overrides: Sequence[str] = ()) -> Protocol:
    """Read, override and validate a protocol file."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"protocol file {path} not found; `harness list protocols` shows the shipped ones")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProtocolError(f"{where}: malformed YAML ({problem}); fix the syntax at that line") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol file must be a YAML mapping (protocol:, dataset:, models:, ...)")
    data = expand_includes(copy.deepcopy(data), path)
    for override in overrides:
        keys, value = parse_override(override)
        apply_override(data, keys, value)
    return _validate(path, data, _Locator(text))


def _validate(path: Path, data: dict[str, Any], locator: _Locator) -> Protocol:
    def fail(key: str, message: str) -> ProtocolError:
        line = locator.line(key)
        return ProtocolError(message, path=f"{path}:{line}" if line else path, key=key)

    def check_keys(mapping: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
        for key in mapping:
            if key not in allowed:
                raise fail(f"{prefix}{key}", unknown_name_message("key", str(key), allowed))

    def as_mapping(value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise fail(key, f"expected a mapping, but got {type(value).__name__} {value!r}")
        return value

    check_keys(data, TOP_LEVEL_KEYS, "")
    kind = data.get("protocol")
    if not isinstance(kind, str) or not kind:
        raise fail("protocol", "missing 'protocol:' (the analysis to run, e.g. kde_vs_test)")
    version = data.get("version", 1)
    if not isinstance(version, int):
        raise fail("version", f"expected an integer, but got {version!r}")

    dataset_raw = as_mapping(data.get("dataset"), "dataset")
    check_keys(dataset_raw, DATASET_KEYS, "dataset.")
    size = dataset_raw.get("image_size", 128)
    if isinstance(size, int) and size > 0:
        image_size = (size, size)
    elif isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        image_size = (size[0], size[1])
    else:
        raise fail("dataset.image_size", f"expected a positive integer or [height, width], but got {size!r}")
    categories = dataset_raw.get("categories")
    if categories is not None:
        if isinstance(categories, str):
            categories = [categories]
        if not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories):
            raise fail("dataset.categories", f"expected a non-empty list of names or null, but got {categories!r}")
    limits = {}
    for key in ("max_train_images", "max_test_images_per_type"):
        value = dataset_raw.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise fail(f"dataset.{key}", f"expected a positive integer or null, but got {value!r}")
        limits[key] = value
    share = dataset_raw.get("rebalance_normals")
    if share is not None and (not isinstance(share, (int, float)) or not 0 < share < 1):
        raise fail("dataset.rebalance_normals", f"expected a share in (0, 1) or null, but got {share!r}")
    limits["rebalance_normals"] = share
    root = dataset_raw.get("root")
    if root is not None and not isinstance(root, str):
        raise fail("dataset.root", f"expected a folder path, but got {root!r}")
    dataset = DatasetConfig(
        layout=str(dataset_raw.get("layout", "mvtec")),
        root=Path(root).expanduser() if root else None,
        categories=tuple(categories) if categories else None,
        image_size=image_size,
        options=as_mapping(dataset_raw.get("options"), "dataset.options"),
        synthetic=as_mapping(dataset_raw.get("synthetic"), "dataset.synthetic"),
        **limits,
    )

    def named_entries(section: str, raw: Any, example: str) -> tuple[NamedEntry, ...]:
        """A list of ``name`` or ``{name, options, label}`` entries with distinct labels."""
        if not isinstance(raw, list) or not raw:
            raise fail(section, f"expected a non-empty list, e.g. {example}")
        entries = []
        for index, entry in enumerate(raw):
            key = f"{section}.{index}"
            entry = as_mapping({"name": entry} if isinstance(entry, str) else entry, key)
            check_keys(entry, ENTRY_KEYS, f"{key}.")
            if not isinstance(entry.get("name"), str):
                raise fail(f"{key}.name", f"each entry needs a 'name:' (see `harness list {section}`)")
            options = as_mapping(entry.get("options"), f"{key}.options")
            entries.append(NamedEntry(entry["name"], options, str(entry.get("label") or entry["name"])))
        labels = [e.label for e in entries]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise fail(section, f"two entries share the label {duplicates[0]!r}; give each a distinct 'label:'")
        return tuple(entries)

    models = named_entries("models", data.get("models"), "[{name: padim}]")
    calibrations = named_entries(
        "calibrations", data.get("calibrations", ["test_f1_oracle", "test_youden_oracle", "kde"]), "[kde]"
    )

    seeds = data.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise fail("seeds", f"expected a non-empty list of integers, but got {seeds!r}")
    holdout = data.get("holdout_fraction", 0.25)
    if not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise fail("holdout_fraction", f"expected a fraction in [0, 1), but got {holdout!r}")
    report_raw = as_mapping(data.get("report"), "report")
    check_keys(report_raw, REPORT_KEYS, "report.")
    formats = report_raw.get("formats", ["html", "latex"])
    if not isinstance(formats, list) or not set(formats) <= REPORT_FORMATS:
        raise fail("report.formats", f"expected a list from {sorted(REPORT_FORMATS)}, but got {formats!r}")
    return Protocol(
        path=path,
        protocol=kind,
        version=version,
        title=str(report_raw.get("title") or data.get("title") or kind),
        dataset=dataset,
        models=models,
        calibrations=calibrations,
        seeds=tuple(seeds),
        holdout_fraction=float(holdout),
        report_formats=tuple(formats),
        analysis=as_mapping(data.get("analysis"), "analysis"),
        executor=as_mapping(data.get("executor"), "executor"),
        efficiency=as_mapping(data.get("efficiency"), "efficiency"),
        supervision=_supervision(as_mapping(data.get("supervision"), "supervision"), fail),
        raw=data,
    )


def _supervision(raw: dict[str, Any], fail: Any) -> dict[str, Any]:
    """``supervision: {anomaly_train_fraction: f, seed: s}``: labelled anomalies supervised models may train on."""
    unknown = set(raw) - {"anomaly_train_fraction", "seed"}
    if unknown:
        raise fail(
            f"supervision.{sorted(unknown)[0]}",
            unknown_name_message("key", sorted(unknown)[0], {"anomaly_train_fraction", "seed"}),
        )
    if not raw:
        return {}
    fraction = raw.get("anomaly_train_fraction")
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise fail("supervision.anomaly_train_fraction", f"expected a fraction in (0, 1), but got {fraction!r}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int):
        raise fail("supervision.seed", f"expected an integer, but got {seed!r}")
    return {"anomaly_train_fraction": float(fraction), "seed": seed}
