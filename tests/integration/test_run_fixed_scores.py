"""End-to-end runs with an instant in-process model: outputs, cache, leakage, determinism."""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from harness_paradigms.kde_vs_test import calibrate_rows

from conftest import FixedScores
from harness.analyses.base import AnalysisContext, CalibrationSpec, JobData
from harness.planning import build_calibrations
from harness.plugins import get_plugins
from harness.protocol import load_protocol

REQUIRED_COLUMNS = [
    "model",
    "category",
    "seed",
    "calibration",
    "weights",
    "threshold",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "false_negatives",
    "false_positives",
    "auroc",
    "ap",
]


def test_run_writes_every_output(cli, small_protocol, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = cli("run", str(small_protocol), "--out", str(out))
    assert code == 0, stdout
    for name in ("results.csv", "report.html", "report.tex", "run.json", "figures/manifest.json"):
        assert (out / name).is_file(), name
    rows = pd.read_csv(out / "results.csv")
    assert set(REQUIRED_COLUMNS) <= set(rows.columns)
    assert len(rows) == 2 * 4  # categories x calibrations
    assert set(rows["calibration"]) == {"test_f1_oracle", "test_youden_oracle", "kde", "quantile"}
    assert rows.loc[rows["calibration"] == "kde", "oracle"].eq(False).all()
    assert rows["pixel_auroc"].notna().all() and rows["aupro"].notna().all()
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"fitted": 2, "cached": 0, "failed": 0}
    assert {"versions", "hardware", "config", "seeds", "dataset", "jobs"} <= set(run)
    assert run["protocol_plugin"]["name"] == "paradigms" and run["protocol_plugin"]["version"]  # whose analysis code
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script>" in html and "http" not in html.split("<body>")[1][:200]
    assert html.count('class="oracle"') >= 2


def test_second_run_fits_nothing_and_gives_identical_results(cli, small_protocol, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(small_protocol), "--out", str(out), "--cache", str(tmp_path / "cache"))[0] == 0
    first = (out / "results.csv").read_text()
    FixedScores.calls = []
    assert cli("run", str(small_protocol), "--out", str(out), "--cache", str(tmp_path / "cache"))[0] == 0
    assert FixedScores.calls == []
    assert json.loads((out / "run.json").read_text())["counts"]["fitted"] == 0
    assert (out / "results.csv").read_text() == first
    # an empty cache with the same seed refits and still gives the same numbers
    fresh = tmp_path / "fresh"
    assert cli("run", str(small_protocol), "--out", str(fresh), "--cache", str(tmp_path / "new-cache"))[0] == 0
    assert FixedScores.calls == ["fit"] * 2
    assert (fresh / "results.csv").read_text() == first


def test_kde_figures_are_copied_on_a_rerun_and_drawn_anew_with_new_code(cli, small_protocol, tmp_path, monkeypatch):
    """kde_vs_test's figures are a plugin's: keyed by its drawing code, not only by the core's RENDERER_VERSION."""
    from harness_paradigms import kde_vs_test

    cache, calls, original = tmp_path / "cache", [], kde_vs_test.draw_job_figure
    assert cli("run", str(small_protocol), "--out", str(tmp_path / "first"), "--cache", str(cache))[0] == 0
    monkeypatch.setattr(kde_vs_test, "draw_job_figure", lambda *a: calls.append("drawn") or original(*a))
    assert cli("run", str(small_protocol), "--out", str(tmp_path / "again"), "--cache", str(cache))[0] == 0
    assert calls == []  # the same figures: copied from the derived cache
    monkeypatch.setattr(kde_vs_test, "figure_code", lambda: "new drawing code")
    assert cli("run", str(small_protocol), "--out", str(tmp_path / "new-code"), "--cache", str(cache))[0] == 0
    assert calls == ["drawn"] * 2  # one score figure per category, drawn anew
    for figure in (tmp_path / "first" / "figures").glob("*.png"):  # the same drawing: the same bytes
        assert figure.read_bytes() == (tmp_path / "new-code" / "figures" / figure.name).read_bytes()


def test_report_rerenders_from_stored_results(cli, small_run):
    out = small_run
    (out / "report.html").unlink()
    FixedScores.calls = []
    code, _, _ = cli("report", str(out))
    assert code == 0 and (out / "report.html").is_file() and FixedScores.calls == []


class Spy:
    """A deployable calibrator that records what it is handed (it would use test data if it got any)."""

    oracle = False

    def __init__(self):
        self.seen = []

    def threshold(self, data):
        self.seen.append(data)
        test = np.asarray(data.test_scores if data.test_scores is not None else [])
        return float(np.median(np.r_[data.holdout_scores, test]))  # reads the test scores when handed them


def test_deployable_thresholds_never_see_the_test_set(small_protocol, small_run, tmp_path):
    out = small_run
    protocol = load_protocol(small_protocol)
    spy = Spy()
    calibrations = [*build_calibrations(protocol, get_plugins()), CalibrationSpec("spy", "spy", spy)]
    key = json.loads((out / "run.json").read_text())["jobs"][0]["key"]
    scores = pd.read_csv(out / "scores" / f"{key}.csv")
    changed = scores.copy()
    test = changed["split"] == "test"
    labels = changed.loc[test, "label"].to_numpy()
    # the most adversarial change: anomalous labels to the lowest-scoring test images, and every
    # test score moved far above the held-out ones
    order = np.argsort(changed.loc[test, "score"].to_numpy(), kind="stable")
    relabelled = np.zeros_like(labels)
    relabelled[order[: labels.sum()]] = 1
    changed.loc[test, "label"] = relabelled
    changed.loc[test, "score"] = changed.loc[test, "score"] * 10 + 100

    def thresholds(table):
        job = JobData("m", "c", 0, key, {}, table, lambda: None, lambda: None)
        rows = calibrate_rows(job, AnalysisContext([job], calibrations, tmp_path, {}))
        return {r["calibration"]: r["threshold"] for r in rows}

    original, shuffled = thresholds(scores), thresholds(changed)
    for name in ("kde", "quantile", "spy"):
        assert original[name] == shuffled[name], name
    assert all(d.test_scores is None and d.test_labels is None for d in spy.seen)
    holdout = scores.loc[scores["split"] == "holdout", "score"].to_numpy()
    assert all(np.array_equal(d.holdout_scores, holdout) for d in spy.seen)
    assert (
        original["test_f1_oracle"] != shuffled["test_f1_oracle"]
        or original["test_youden_oracle"] != shuffled["test_youden_oracle"]
    )


@pytest.mark.parametrize(
    ("mode", "reason"), [("nan", "non-finite"), ("raise", "RuntimeError: boom"), ("shape", "Expected maps of shape")]
)
def test_failing_model_is_isolated(cli, small_protocol, tmp_path, mode, reason):
    text = small_protocol.read_text().replace(
        "  - name: fixed_scores",
        f"  - name: fixed_scores\n  - name: fixed_scores\n    label: broken\n    options: {{fail: {mode}}}",
    )
    small_protocol.write_text(text)
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(small_protocol), "--out", str(out))
    assert code == 1 and "failed" in stderr
    rows = pd.read_csv(out / "results.csv")
    failed = rows[rows["status"] == "failed"]
    assert set(failed["model"]) == {"broken"} and failed["error"].str.contains(reason).all()
    html = (out / "report.html").read_text()
    assert "Failed jobs" in html and "broken" in html
    assert (rows["status"] == "ok").sum() == 8


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_report_compiles_standalone(small_run):
    out = small_run
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (out / "report.pdf").is_file()


def test_a_real_mvtec_layout_root_is_given_with_set(cli, small_protocol, tmp_path, synthetic_root):
    out = tmp_path / "out"
    code, _, stderr = cli(
        "run",
        str(small_protocol),
        "--out",
        str(out),
        "--set",
        f"dataset.root={synthetic_root}",
        "--set",
        "dataset.categories=[disc]",
    )
    assert code == 0, stderr
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["layout"] == "mvtec" and run["dataset"]["root"] == str(synthetic_root)
    assert set(pd.read_csv(out / "results.csv")["category"]) == {"disc"}


def test_validate_runs_no_model(cli, small_protocol):
    code, stdout, _ = cli("validate", str(small_protocol))
    assert code == 0 and "valid" in stdout and "2 job(s)" in stdout
    assert FixedScores.calls == []
