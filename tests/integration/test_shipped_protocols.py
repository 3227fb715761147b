"""Every shipped protocol file runs on an MVTec-layout root given with --set (models swapped for speed)."""

from pathlib import Path

import pandas as pd
import pytest

PROTOCOLS = sorted((Path(__file__).resolve().parents[2] / "protocols").glob("*.yaml"))


SMALLER = {  # fewer draws and shots: the same file and code paths, a fraction of the jobs
    "partial_anomaly": ["--set", "analysis.draws=2"],
    "few_shot": ["--set", "analysis.draws=2", "--set", "analysis.shots=[2, all]"],
}


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.stem for p in PROTOCOLS])
def test_shipped_protocol_runs_on_an_mvtec_root(cli, tmp_path, protocol, synthetic_root):
    out = tmp_path / "out"
    code, _, stderr = cli(
        "run",
        str(protocol),
        "--out",
        str(out),
        "--set",
        f"dataset.root={synthetic_root}",
        "--set",
        "dataset.categories=[disc, grain]",
        "--set",
        "dataset.image_size=32",
        "--set",
        "models=[{name: fixed_scores}]",
        *SMALLER.get(protocol.stem, []),
    )
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert not rows.empty and (rows["status"] == "ok").all()
    assert (out / "report.html").is_file() and (out / "report.tex").is_file()


def _available_models(config):
    """The protocol's model entries whose factory can run here (its library is installed)."""
    from harness.plugins import get_plugins

    registry = get_plugins().registry("models")
    available = []
    for entry in config.models:
        factory = registry.get(entry.name)
        why = getattr(factory, "why_unavailable", None)  # a ModelSpec holds None when the model always runs
        reason = (why() if callable(why) else None) if factory is not None else "not installed"
        if reason is None:
            available.append(entry)
    return available


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.stem for p in PROTOCOLS])
def test_shipped_protocol_validates_as_shipped_with_its_real_model_options(cli, protocol):
    """No model swapped: every analysis, calibration and model option is checked as written."""
    import json

    from harness.config.check import check_protocol
    from harness.protocol import load_protocol

    config = load_protocol(protocol)
    check_protocol(config, models=False)  # analysis and calibration options, names: whatever is installed
    available = _available_models(config)
    if not available:
        pytest.skip(f"no model of {protocol.name} can run here")
    overrides = []
    if len(available) < len(config.models):  # a missing library skips that model only
        entries = [{"name": m.name, "label": m.label, "options": dict(m.options)} for m in available]
        overrides = ["--set", f"models={json.dumps(entries)}"]
    code, stdout, stderr = cli("validate", str(protocol), *overrides)
    assert code == 0, stderr
    assert "valid" in stdout and "held-out" in stdout and "defect types" in stdout


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=[p.stem for p in PROTOCOLS])
def test_shipped_model_options_are_accepted_as_written(cli, protocol):
    """The models a shipped protocol declares, with their options as written, pass validation and build."""
    from harness.plugins import get_plugins
    from harness.protocol import load_protocol

    code, _, stderr = cli("validate", str(protocol))
    assert code == 0, stderr
    plugins = get_plugins()
    for model in load_protocol(protocol).models:
        factory = plugins.get("models", model.name)
        check = getattr(factory, "check_options", None)
        if check is not None:
            check(dict(model.options), key=f"{protocol.name}: {model.label}")
        else:  # construction binds every option to the detector's parameters; fitting would load weights
            factory(**dict(model.options))
