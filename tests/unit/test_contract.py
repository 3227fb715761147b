"""The typed plugin contract: ModelSpec, DetectorInfo, AnalysisSpec, hooks through pluggy, whole-plugin rejection."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, Field

import harness
from harness.analyses.base import DETAIL_COLUMNS, LEADERBOARD_COLUMNS, AnalysisResult, analysis_spec
from harness.contract import model_spec
from harness.errors import ProtocolError
from harness.plugins import Plugins


class Constant:
    def __init__(self, level: float = 0.0):
        self.level = level

    def fit(self, samples):
        return self

    def score(self, samples):
        return harness.Scores(np.full(len(samples), self.level))


# --- ModelSpec normalisation -------------------------------------------------------------


def test_a_plain_factory_becomes_a_model_spec():
    spec = model_spec(Constant)
    assert isinstance(spec, harness.ModelSpec)
    assert spec.factory is Constant and spec.version == "" and not spec.supervised
    assert spec.reason_unavailable() is None
    assert isinstance(spec(level=2.0), Constant)  # a spec builds like the factory it wraps


def test_legacy_factory_attributes_are_kept():
    def build(**options):
        return Constant(**options)

    build.version = "7"
    build.supervised = True
    build.why_unavailable = lambda: "needs a GPU"
    seen = []
    build.check_options = lambda options, key: seen.append((options, key))
    spec = model_spec(build)
    assert (spec.version, spec.supervised, spec.reason_unavailable()) == ("7", True, "needs a GPU")
    spec.validate_options({"level": 1}, key="models.0.options")
    assert seen == [({"level": 1}, "models.0.options")]


def test_a_model_spec_is_kept_and_its_options_model_checks_values():
    class Options(BaseModel, extra="forbid"):
        level: float = Field(0.0, ge=0)

    spec = harness.ModelSpec(Constant, version="2", options=Options, continual=True, cache_files=lambda o: ["w.pt"])
    assert model_spec(spec) is spec and spec.continual
    assert spec.validate_options({"level": 0.5}) == {"level": 0.5}
    with pytest.raises(ProtocolError, match=r"key 'models.0.options'.*level.*greater than or equal to 0"):
        spec.validate_options({"level": -1}, key="models.0.options")
    with pytest.raises(ProtocolError, match="colour"):
        spec.validate_options({"colour": 1}, key="models.0.options")
    assert [p.name for p in spec.files({})] == ["w.pt"]


def test_a_model_that_is_not_callable_rejects_its_plugin():
    class Plugin:
        @harness.hookimpl
        def harness_models(self):
            return {"good": Constant, "bad": 42}

    plugins = Plugins(autoload=False)
    info = plugins.register(Plugin(), "half-bad")
    assert "model 'bad'" in info.error and "good" not in plugins.registry("models")


# --- DetectorInfo ------------------------------------------------------------------------


def test_detector_info_reads_the_legacy_attributes():
    detector = Constant()
    detector.weights, detector.parameters, detector.input_size = "pretrained", 12, [8, 8]
    detector.shared_fit_seconds, detector.device = 3, "cpu"
    info = harness.detector_info(detector)
    assert info == harness.DetectorInfo(
        name="Constant", weights="pretrained", parameters=12, input_size=(8, 8), device="cpu", shared_fit_seconds=3.0
    )


def test_detector_info_defaults_and_a_declared_info():
    assert harness.detector_info(Constant()) == harness.DetectorInfo(name="Constant")
    detector = Constant()
    detector.info = harness.DetectorInfo(weights="random-init", supervised=True)
    info = harness.detector_info(detector)
    assert (info.name, info.weights, info.supervised) == ("Constant", "random-init", True)


def test_a_torch_style_parameters_method_is_not_a_count():
    detector = Constant()
    detector.parameters = lambda: iter(())
    assert harness.detector_info(detector).parameters is None


def test_the_core_reads_detector_attributes_only_through_detector_info():
    from pathlib import Path

    root = Path(harness.__file__).parent
    attributes = ("weights", "torch_module", "input_size", "shared_fit_seconds", "supervised", "parameters")
    offenders = [
        f"{path.relative_to(root)}: {line.strip()}"
        for path in root.rglob("*.py")
        if path.name != "types.py"
        for line in path.read_text().splitlines()
        if ("getattr(detector" in line or "hasattr(detector" in line) and any(a in line for a in attributes)
    ]
    assert not offenders, offenders


# --- AnalysisSpec ------------------------------------------------------------------------


class Counting:
    title = "count"

    def analyse(self, context):
        return AnalysisResult(pd.DataFrame({"model": ["m"], "status": ["ok"]}), [])


def test_analysis_spec_defaults():
    spec = analysis_spec(Counting())
    assert isinstance(spec, harness.AnalysisSpec) and spec.title == "count"
    assert spec.description == "" and spec.option_names() == set()
    assert spec.columns("leaderboard", pd.DataFrame()) == list(LEADERBOARD_COLUMNS)
    assert spec.columns("detail", pd.DataFrame()) == list(DETAIL_COLUMNS)
    assert spec.leaderboard_note == "Summary over categories and seeds."
    spec.check_options({"anything": 1})  # accepts by default

    class Maker:
        def standard(self, categories):
            return [f"job:{c}" for c in categories]

    assert spec.plan_jobs(None, ["a", "b"], Maker()) == ["job:a", "job:b"]
    rows = pd.DataFrame({"status": ["ok", "failed"]})
    assert list(spec.summarise(rows)["status"]) == ["ok"]


def test_analysis_spec_reads_overrides_and_column_functions():
    class Options(BaseModel):
        draws: int = 10

    class Custom(harness.AnalysisSpec):
        options = Options
        leaderboard_columns = staticmethod(lambda summary: ["model", *sorted(summary.columns.drop("model"))])

    spec = analysis_spec(Custom())
    assert spec.option_names() == {"draws"}
    assert spec.columns("leaderboard", pd.DataFrame({"model": [], "b": [], "a": []})) == ["model", "a", "b"]


def test_a_protocol_kind_without_analyse_rejects_its_plugin():
    class Plugin:
        @harness.hookimpl
        def harness_protocols(self):
            return {"empty": object()}

    info = Plugins(autoload=False).register(Plugin(), "no-analyse")
    assert "needs analyse" in info.error


def test_in_house_kinds_are_analysis_specs():
    harness_paradigms = pytest.importorskip("harness_paradigms")
    plugins = Plugins(autoload=False)
    plugins.register(harness_paradigms, "paradigms")
    assert all(isinstance(a, harness.AnalysisSpec) for a in plugins.registry("protocols").values())
    assert type(plugins.analysis("kde_vs_test")).__name__ == "KdeVsTest"  # subclasses, not wrapped


# --- hooks through pluggy; clashes ------------------------------------------------------


def test_registration_hooks_are_called_through_pluggy():
    calls = []
    plugins = Plugins(autoload=False)
    undo = plugins.manager.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name), lambda *a: None)

    class Plugin:
        @harness.hookimpl
        def harness_models(self):
            return {"constant": Constant}

    plugins.register(Plugin(), "constant-plugin")
    undo()
    assert "harness_models" in calls and plugins.owner("models", "constant").name == "constant-plugin"


def test_trace_env_writes_hook_calls_to_stderr():
    code = "from harness.plugins import Plugins; Plugins(autoload=False)"
    env = {**os.environ, "HARNESS_TRACE_PLUGINS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "harness_models" in result.stderr and "harness_metrics" in result.stderr
    env["HARNESS_TRACE_PLUGINS"] = "0"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "harness_models" not in quiet.stderr


def test_a_clashing_plugin_is_rejected_whole_naming_both():
    class Clashing:
        @harness.hookimpl
        def harness_models(self):
            return {"fresh_model": Constant}

        @harness.hookimpl
        def harness_calibrations(self):
            return {"kde": object}

    plugins = Plugins(autoload=False)
    info = plugins.register(Clashing(), "clashing")
    assert "registered by both 'harness.calibration' and 'clashing'" in info.error
    assert "fresh_model" not in plugins.registry("models") and info.registers == {}
    assert not plugins.manager.is_registered(Clashing) and plugins.manager.get_plugin("clashing") is None


def test_files_a_model_reads_enter_the_cache_key_by_content(tmp_path, small_protocol):
    from harness.planning import resolve
    from harness.protocol import load_protocol

    weights = tmp_path / "teacher.bin"
    weights.write_bytes(b"first")
    spec = harness.ModelSpec(Constant, version="1", cache_files=lambda options: [weights])

    class Plugin:
        @harness.hookimpl
        def harness_models(self):
            return {"constant": spec}

    plugins = Plugins(autoload=False)
    plugins.register(pytest.importorskip("harness_paradigms"), "paradigms")  # kde_vs_test, the protocol's kind
    plugins.register(Plugin(), "constant-plugin")
    protocol = load_protocol(small_protocol, ("models=[{name: constant}]",))
    before = [job.key for job in resolve(protocol, plugins).jobs]
    assert resolve(protocol, plugins).models["constant"] is spec
    weights.write_bytes(b"second")  # same path, new content
    after = [job.key for job in resolve(protocol, plugins).jobs]
    assert before and not set(before) & set(after)


def test_the_former_analysis_name_warns_and_still_works():
    import harness.analyses

    with pytest.warns(DeprecationWarning, match="AnalysisSpec"):
        from harness.analyses import Analysis
    assert Analysis is harness.AnalysisSpec
    with pytest.warns(DeprecationWarning):
        assert harness.analyses.base.Analysis is harness.AnalysisSpec


def test_list_metrics_shows_level_and_direction(cli):
    code, out, _ = cli("list", "metrics")
    assert code == 0 and "auroc" in out and "image level, higher is better" in out and "pixel level" in out


def test_a_run_records_the_detector_info_in_its_cache_entry(cli, tmp_path, small_protocol):
    import json
    import os

    code, _, stderr = cli("run", str(small_protocol), "--out", str(tmp_path / "out"))
    assert code == 0, stderr
    metas = list(Path(os.environ["HARNESS_CACHE_DIR"]).rglob("meta.json"))
    assert metas
    meta = json.loads(metas[0].read_text())
    assert (meta["detector"], meta["weights"], meta["device"], meta["supervised"]) == (
        "FixedScores",
        "none",
        None,
        False,
    )


def test_options_models_are_part_of_both_specs():
    class Options(BaseModel):
        draws: int = 10

    class Kind(harness.AnalysisSpec):
        options_model = Options

    assert analysis_spec(Kind()).option_names() == {"draws"}
    assert harness.AnalysisSpec.options_model is None

    def build(**options):
        return Constant(**options)

    build.options_model = Options
    assert model_spec(build).options is Options


def test_preload_is_read_from_a_spec_or_a_plain_factory_and_imported_once_before_forking(monkeypatch):
    import sys

    from harness.contract import ModelSpec, model_spec
    from harness.isolation import preload_models

    class Factory:
        preload = ("colorsys",)

        def __call__(self, **options):
            raise AssertionError("preloading never builds a detector")

    assert model_spec(Factory()).preload == ("colorsys",)
    assert ModelSpec(factory=Factory(), preload=["colorsys"]).preload == ("colorsys",)

    class Plugins:
        def model(self, name):
            broken = ModelSpec(factory=Factory(), preload=("no_such_module_x",))
            return {"ok": model_spec(Factory()), "broken": broken}[name]

    monkeypatch.setattr("harness.plugins.get_plugins", lambda: Plugins())
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    preload_models(["broken", "ok", "ok"])  # a module that does not import is left to its job
    assert "colorsys" in sys.modules
