"""Every shipped protocol file runs on an MVTec-layout root given with --set (models swapped for speed)."""

from pathlib import Path

import pandas as pd
import pytest

PROTOCOLS = sorted((Path(__file__).resolve().parents[2] / "protocols").glob("*.yaml"))


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
        *(["--set", "analysis.draws=2"] if protocol.stem == "partial_anomaly" else []),
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
