"""The protocol schema: JSON schema, the generated README reference, declared options of every plugin kind."""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import pytest

from harness import schema
from harness.config.check import check_analysis_options, check_model_options, check_protocol
from harness.config.models import EfficiencyOptions, LocalExecutorOptions
from harness.errors import ProtocolError
from harness.executors import LocalExecutor
from harness.plugins import Plugins
from harness.protocol import load_protocol

REPO = Path(__file__).resolve().parents[2]


def test_readme_protocol_reference_is_generated_and_current():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert schema.START in text and schema.END in text
    assert text == schema.splice(text, schema.reference_markdown()), "run: python -m harness.schema --write README.md"


def test_harness_schema_prints_the_json_schema(cli):
    code, stdout, _ = cli("schema")
    printed = json.loads(stdout)
    assert code == 0 and printed == schema.protocol_schema()
    assert {"protocol", "dataset", "models", "calibrations", "seeds", "analysis", "executor"} <= set(
        printed["properties"]
    )
    assert printed["additionalProperties"] is False and printed["required"] == ["protocol", "models"]


def test_every_schema_key_has_a_description():
    def walk(node, where):
        for name, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{where}.{name} needs Field(description=...)"
        for name, definition in node.get("$defs", {}).items():
            walk(definition, name)

    walk(schema.protocol_schema(), "ProtocolFile")


def test_every_builtin_kind_and_calibration_declares_an_options_model():
    plugins = Plugins(autoload=False)
    for kind in ("protocols", "calibrations"):
        for name, entry in plugins.registry(kind).items():
            assert getattr(entry, "options_model", None) is not None, f"{kind} {name} declares no options_model"


def test_calibration_options_models_match_the_constructors():
    plugins = Plugins(autoload=False)
    for name, factory in plugins.registry("calibrations").items():
        parameters = inspect.signature(factory).parameters
        fields = factory.options_model.model_fields
        assert set(fields) == set(parameters), name
        for key, field in fields.items():
            assert field.default == parameters[key].default, f"{name}.{key}"


def test_efficiency_and_executor_defaults_match_the_code():
    meters = pytest.importorskip("harness_efficiency.meters")  # the efficiency plugin applies the defaults
    assert EfficiencyOptions().model_dump() == meters.DEFAULTS
    parameters = inspect.signature(LocalExecutor).parameters
    local = LocalExecutorOptions()
    assert (local.workers, local.gpus) == (parameters["workers"].default, parameters["gpus"].default)


class LegacyKind:
    """A third-party protocol kind written against the first contract: option names only."""

    title = "legacy"
    description = "declares option names as a tuple"
    options = ("draws",)


def _legacy_config(tmp_path, analysis):
    path = tmp_path / "p.yaml"
    path.write_text(f"protocol: legacy\nmodels: [fixed_scores]\nanalysis: {analysis}\n")
    return load_protocol(path)


def test_a_kind_with_only_an_options_tuple_still_works_with_a_deprecation_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match="options_model"):
        check_analysis_options(_legacy_config(tmp_path, "{draws: 3}"), LegacyKind())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ProtocolError, match=r"p.yaml:3, key 'analysis.drawz'.*Did you mean 'draws'"):
            check_analysis_options(_legacy_config(tmp_path, "{drawz: 3}"), LegacyKind())


def test_model_options_are_checked_by_the_factorys_check_options(tmp_path):
    class Factory:
        @staticmethod
        def check_options(options, key):
            if "depth" in options:
                raise ProtocolError("unknown option 'depth'", key=f"{key}.depth")

        def __call__(self, **options):
            raise AssertionError("validation builds no model")

    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels:\n  - name: checked\n    options: {depth: 3}\n")
    config = load_protocol(path)
    with pytest.raises(ProtocolError, match=r"p.yaml:4, key 'models.0.options.depth': unknown option 'depth'"):
        check_model_options(config, Factory(), 0)


def test_check_protocol_names_unknown_names_with_their_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("protocol: kde_vs_test\nmodels: [fixed_scores]\ncalibrations:\n  - kdee\n")
    with pytest.raises(ProtocolError, match=r"p.yaml:4, key 'calibrations.0.name': unknown calibration 'kdee'"):
        check_protocol(load_protocol(path))
