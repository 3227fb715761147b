"""Outputs a user chooses: the finding, typed results (JSON, Parquet), LaTeX tables that compile, compare."""

import json
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import SMALL_SYNTHETIC, copy_run, run_once
from harness.ownership import record
from harness.plugins import get_plugins

pytestmark = pytest.mark.xdist_group("report_outputs")  # each kind's run is made once, in one process

PDFLATEX = shutil.which("pdflatex")
DATASET = f"{{synthetic: {SMALL_SYNTHETIC}, categories: [weave, disc], image_size: 32}}"
EXTRA = {
    "benchmark": "efficiency: {energy: false}\nanalysis: {bootstrap: 50}",
    "partial_anomaly": "analysis: {fractions: [0.5, 1.0], draws: 2}",
    "few_shot": "analysis: {shots: [2, all], draws: 2}",
    "kde_vs_test": "analysis: {bootstrap: 50}",
}
"""Per kind: protocol lines that keep the run small (every registered kind runs, with or without)."""


def _protocol(tmp_path, kind, model_label="fixed_scores_ü_ß_日本"):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"""
protocol: {kind}
title: "{kind}: 50% & #1 ~ café"
dataset: {DATASET}
models: [{{name: fixed_scores, label: "{model_label}"}}]
calibrations: [test_f1_oracle, kde]
seeds: [0]
{EXTRA.get(kind, "")}
""")
    return path


def _kinds():
    return sorted(get_plugins().registry("protocols"))


def _pdflatex(folder, name):
    done = subprocess.run(
        [PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", name],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",  # pdflatex's log is not UTF-8
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout[-3000:]


@pytest.fixture(scope="module")
def kind_run(tmp_path_factory):
    """``kind_run(kind)``: the output folder of one run of ``kind``, made once per module and process."""
    made = {}

    def run(kind):
        if kind not in made:
            folder = tmp_path_factory.mktemp(kind)
            out, cache = folder / "out", folder / "cache"
            assert run_once("-q", "run", str(_protocol(folder, kind)), "--out", str(out), "--cache", str(cache)) == 0
            made[kind] = out
        return made[kind]

    return run


@pytest.mark.parametrize("kind", _kinds())
def test_every_kind_writes_a_finding_typed_results_and_latex_tables(kind_run, kind):
    out = kind_run(kind)
    document = json.loads((out / "results.json").read_text())
    assert document["schema"] == "harness.results/1" and document["protocol"] == kind
    assert document["finding"]["headline"] and document["rows"]
    assert all(set(document["data_fingerprints"].values()))
    for column, kind_of in document["columns"].items():  # counts are integers in JSON, Parquet and CSV
        if column in ("seed", "false_negatives", "n_test", "n_anomalous"):
            assert kind_of == "integer", column
    parquet = pd.read_parquet(out / "results.parquet")
    assert len(parquet) == len(document["rows"])
    assert all(pd.api.types.is_integer_dtype(parquet[c]) for c in ("seed", "n_test") if c in parquet)
    tables = sorted(p.name for p in (out / "tables").glob("*.tex"))
    assert "leaderboard.tex" in tables, tables
    assert ("finding.tex" in tables) == bool(document["finding"]["rows"])  # a finding with a table inputs it
    for table in (out / "tables").glob("*.tex"):
        text = table.read_text()
        assert "\\label{tab:" in text and "\\caption{" in text and "\\begin{table}" in text
    report = (out / "report.tex").read_text()
    assert "\\input{tables/leaderboard}" in report
    assert ".csv}" not in report  # table-kind figures are tables, never \includegraphics
    author = next(line for line in report.splitlines() if line.startswith("\\author{"))
    assert "textbackslash" not in author, author  # run.json text escaped once, not twice (kde\_vs\_test)
    pdfs = list((out / "figures").glob("*.pdf"))
    assert all(f"figures/{p.name}" in report for p in pdfs)
    html = (out / "report.html").read_text()
    assert html.index('id="finding"') < html.index('id="leaderboard"')


@pytest.mark.skipif(PDFLATEX is None, reason="no pdflatex (Debian: apt-get install texlive-latex-recommended)")
@pytest.mark.parametrize("kind", _kinds())
def test_every_kind_report_tex_compiles_with_non_ascii_names(kind_run, tmp_path, kind):
    out = copy_run(kind_run(kind), tmp_path / "out")
    code, log = _pdflatex(out, "report.tex")
    assert code == 0, log
    assert (out / "report.pdf").stat().st_size > 1000


def test_kde_vs_test_finding_states_the_gap_and_the_misses(small_run):
    out = small_run
    finding = json.loads((out / "results.json").read_text())["finding"]
    rows = pd.read_csv(out / "results.csv")
    kde = rows[rows["calibration"] == "kde"]
    oracle = rows[rows["calibration"] == "test_f1_oracle"]
    (row,) = finding["rows"]
    assert row["deployable"] == "kde" and row["oracle"] == "test_f1_oracle"
    assert row["f1"] == pytest.approx(kde["f1"].mean()) and row["oracle_f1"] == pytest.approx(oracle["f1"].mean())
    assert row["f1_gap"] == pytest.approx(round(100 * (kde["f1"].mean() - oracle["f1"].mean()), 1))
    assert row["missed"] == kde["false_negatives"].sum() and row["defects"] == kde["n_anomalous"].sum()
    assert f"misses {row['missed']} of {row['defects']} defects" in finding["headline"]
    leaderboard = json.loads((out / "results.json").read_text())["leaderboard"]
    gaps = {r["calibration"]: r["f1_gap"] for r in leaderboard}
    assert gaps["kde"] == row["f1_gap"] and gaps["test_f1_oracle"] == 0
    assert "F1 gap (pts)" in (out / "report.html").read_text()


def test_compare_stacks_runs_and_flags_differences(cli, small_run, tmp_path):
    first, second = small_run.rename(tmp_path / "baseline"), tmp_path / "new"
    shutil.copytree(first, second)
    run = json.loads((second / "run.json").read_text())
    run["versions"]["harness"] = "9.9.9"
    run["dataset"]["categories"]["weave"]["fingerprint"] = "changed"
    (second / "run.json").write_text(json.dumps(run))
    record(second, ["run.json"])  # as if written by another harness on other data: the manifest agrees
    code, _, stderr = cli("compare", str(first), str(second), "--out", str(tmp_path / "cmp"))
    assert code == 0, stderr
    assert "harness version" in stderr and "weave" in stderr
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(table["run"].unique()) == ["baseline", "new"] and (table["delta_f1"] == 0).all()
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "9.9.9" in html and "data fingerprint differs" in html
    assert "\\label{tab:compare-kde-vs-test-compare}" in (tmp_path / "cmp" / "tables" / "compare.tex").read_text()
    differences = json.loads((tmp_path / "cmp" / "compare.json").read_text())["differences"]
    assert len(differences) == 2


def test_compare_refuses_runs_of_different_kinds(cli, tmp_path):
    for kind in ("kde_vs_test", "per_type"):
        assert cli("-q", "run", str(_protocol(tmp_path, kind)), "--out", str(tmp_path / kind))[0] == 0
    code, _, stderr = cli("compare", str(tmp_path / "kde_vs_test"), str(tmp_path / "per_type"))
    assert code == 2 and "one protocol kind" in stderr and "Traceback" not in stderr
