"""What the user sees: per-job lines off a terminal, the results table, run.log, -q, list, --help, trackers."""

import importlib.util
import io
import json
import logging

import pytest

from harness.cli import cli as click_group
from harness.console import console_filter


def test_run_prints_job_lines_a_results_table_and_writes_run_log(cli, small_protocol, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = cli("run", str(small_protocol), "--out", str(out))
    assert code == 0, stderr
    assert "[1/2] fixed_scores / weave (seed 0): fitted" in stdout  # captured output is not a terminal
    assert "[2/2] fixed_scores / disc (seed 0): fitted" in stdout
    assert "fitted" not in stderr  # stderr keeps to warnings and errors
    assert "F1 gap (pts)" in stdout and "test_youden_oracle" in stdout and "misses" in stdout
    log = (out / "run.log").read_text()
    assert "[1/2] fixed_scores / weave" in log and "jobs: 2 fitted, 0 from cache, 0 failed" in log
    code, stdout, stderr = cli("-q", "run", str(small_protocol), "--out", str(out))
    assert code == 0 and stdout == "" and "[1/" not in stderr
    assert "jobs: 0 fitted, 2 from cache" in (out / "run.log").read_text()  # the log file keeps everything


def test_job_lines_stay_off_a_terminal_where_the_progress_bar_shows_them():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    record = logging.LogRecord("harness", logging.INFO, __file__, 1, "[1/2] x", None, None)
    record.job = True
    assert console_filter(Terminal())(record) is False
    assert console_filter(io.StringIO())(record) is True
    record.job, record.levelno = False, logging.WARNING  # the CLI's own handler prints warnings
    assert console_filter(io.StringIO())(record) is False


def test_run_and_validate_take_a_shipped_protocol_by_name(cli):
    code, stdout, stderr = cli("validate", "kde_vs_test", "--set", "models=[{name: fixed_scores}]")
    assert code == 0, stderr
    assert "valid" in stdout and "kde_vs_test" in stdout
    code, _, stderr = cli("run", "kde_vs_tst")
    assert code == 2 and "Did you mean 'kde_vs_test'" in stderr and "Traceback" not in stderr


def test_list_has_headers_and_json(cli):
    code, stdout, _ = cli("list", "calibrations")
    assert code == 0 and stdout.splitlines()[0].split() == ["NAME", "PLUGIN", "STATUS", "ORACLE"]
    code, stdout, _ = cli("list", "protocols", "--json")
    rows = json.loads(stdout)
    shipped = {r["name"]: r for r in rows if r["type"] == "file"}
    assert shipped["kde_vs_test"]["kind"] == "kde_vs_test" and "paper 000" in shipped["kde_vs_test"]["about"]
    assert {r["name"] for r in rows if r["type"] == "kind"} >= {"kde_vs_test", "benchmark", "per_type"}
    code, stdout, _ = cli("list", "protocols")
    assert stdout.splitlines()[0].split() == ["NAME", "KIND", "ABOUT"]


def test_list_models_marks_default_downloads(cli):
    _, stdout, _ = cli("list", "models", "--json")
    models = {r["name"]: r for r in json.loads(stdout)}
    if "padim" not in models:
        pytest.skip("the anomalib plugin is not installed")
    assert "ImageNet backbone weights" in models["padim"]["download"]
    assert models["dinomaly"]["download"] and models["ganomaly"]["download"] == ""
    assert models["fixed_scores"]["download"] == ""


def test_every_command_help_shows_an_example(cli):
    for name in click_group.commands:
        code, stdout, _ = cli(name, "--help")
        assert code == 0 and "Example" in stdout, name
    assert "_HARNESS_COMPLETE=bash_source harness" in cli("--help")[1]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow not installed (adharness[trackers])")
def test_mlflow_gets_params_metrics_and_figures(cli, small_protocol, tmp_path):
    from mlflow.tracking import MlflowClient

    out, store = tmp_path / "out", (tmp_path / "mlruns").as_uri()
    code, _, stderr = cli("run", str(small_protocol), "--out", str(out), "--tracker", f"mlflow={store}")
    assert code == 0, stderr
    client = MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "kde_vs_test"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["models"] == "fixed_scores" and run.data.params["protocol"] == "kde_vs_test"
    results = json.loads((out / "results.json").read_text())
    kde = next(r for r in results["leaderboard"] if r["calibration"] == "kde")
    assert run.data.metrics["fixed_scores/kde/f1"] == pytest.approx(kde["f1"])
    assert run.data.metrics["finding/missed"] == results["finding"]["numbers"]["missed"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.csv", "results.json", "report.html", "figures"} <= artifacts


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed")
def test_tensorboard_gets_scalars_figures_and_the_finding(cli, small_run, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = small_run
    code, stdout, stderr = cli("track", str(out), "--tracker", f"tensorboard={tmp_path / 'tb'}")
    assert code == 0 and "TensorBoard" in stdout, stderr
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    results = json.loads((out / "results.json").read_text())
    oracle = next(r for r in results["leaderboard"] if r["calibration"] == "test_f1_oracle")
    (scalar,) = events.Scalars("fixed_scores/test_f1_oracle/recall")
    assert scalar.value == pytest.approx(oracle["recall"])
    assert any(tag.startswith("figures/") for tag in events.Tags()["images"])
    assert "finding/text_summary" in events.Tags()["tensors"]


def test_an_unknown_tracker_stops_before_anything_runs(cli, small_protocol, tmp_path):
    code, _, stderr = cli("run", str(small_protocol), "--out", str(tmp_path / "out"), "--tracker", "wandb")
    assert code == 2 and "unknown tracker 'wandb'" in stderr and not (tmp_path / "out").exists()
