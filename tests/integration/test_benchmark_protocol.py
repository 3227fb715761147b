"""The benchmark protocol end to end with in-process models: ranks, groups, significance, efficiency."""

import zlib

import numpy as np
import pandas as pd
import pytest

import harness
from harness.plugins import get_plugins


class PathNoise:
    """Scores unrelated to the image: a hash of the file name (a model with no skill)."""

    weights = "none"

    def fit(self, samples):
        return self

    def score(self, samples):
        return harness.Scores(np.array([zlib.crc32(s.path.name.encode()) % 1000 / 1000 for s in samples]))


class NoisePlugin:
    @harness.hookimpl
    def harness_models(self):
        return {"path_noise": PathNoise}


@pytest.fixture
def noise_plugin():
    get_plugins().register(NoisePlugin(), "noise-plugin")
    yield
    get_plugins().unregister("noise-plugin")


def test_benchmark_ranks_groups_and_significance(cli, tmp_path, noise_plugin):
    protocol = tmp_path / "b.yaml"
    protocol.write_text("""
protocol: benchmark
dataset: {synthetic: {n_train: 24, n_test_good: 10, n_per_defect: 4, size: 64, seed: 0}, image_size: 32,
          categories: [weave, disc]}
models: [fixed_scores, path_noise]
calibrations: [kde]
analysis: {groups: {objects: [disc], textures: [weave]}, bootstrap: 300}
efficiency: {energy: false}
""")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(protocol), "--out", str(out))
    assert code == 0, stderr
    rows = _rows(out)
    overall = rows[rows["aggregate"] == "global"].set_index("model")
    assert overall.loc["fixed_scores", "auroc_rank"] == 1 and overall.loc["path_noise", "auroc_rank"] == 2
    groups = rows[rows["aggregate"] == "group"].set_index(["category", "model"])
    assert set(groups.index.get_level_values(0)) == {"objects", "textures"}
    # on weave, AUROC 0.875 against 0.55 over the same 30 images: the lead holds in the paired bootstrap
    assert bool(groups.loc[("textures", "fixed_scores"), "auroc_significant"]) is True
    # on disc, 0.655 against 0.55: it does not
    assert bool(groups.loc[("objects", "fixed_scores"), "auroc_significant"]) is False
    assert overall["fit_seconds"].notna().all() and overall["latency_ms"].notna().all()
    assert overall["energy_kwh"].isna().all() and overall["notes"].str.contains("energy tracking off").all()
    assert (rows["calibration"] == "kde").all()
    html = (out / "report.html").read_text()
    assert "Pareto front" in html and "0.875*" in html


def test_benchmark_refuses_an_oracle_only_protocol(cli, tmp_path):
    protocol = tmp_path / "b.yaml"
    protocol.write_text("""
protocol: benchmark
dataset: {synthetic: {n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}, categories: [weave]}
models: [fixed_scores]
calibrations: [test_f1_oracle]
""")
    code, _, stderr = cli("run", str(protocol), "--out", str(tmp_path / "out"))
    assert code == 2 and "needs a calibration that sees no test label" in stderr


class SupervisedNoise(PathNoise):
    """A supervised model (trains on the supervision split's labelled anomalies) with no skill."""

    supervised = True

    def fit(self, samples, anomalies=()):
        self.trained_on = {a.path for a in anomalies}
        return self


class SupervisedPlugin:
    @harness.hookimpl
    def harness_models(self):
        return {"supervised_noise": SupervisedNoise}


BENCHMARK_WITH_SUPERVISION = """
protocol: benchmark
dataset: {synthetic: {n_train: 24, n_test_good: 10, n_per_defect: 4, size: 64, seed: 0}, image_size: 32,
          categories: [weave, disc, grain]}
models: MODELS
supervision: {anomaly_train_fraction: 0.5}
calibrations: [kde]
analysis: {bootstrap: 0}
efficiency: {energy: false}
"""


def test_a_supervised_model_leaves_the_others_numbers_alone(cli, tmp_path, noise_plugin):
    get_plugins().register(SupervisedPlugin(), "supervised-plugin")
    try:
        results = {}
        for name, models in (
            ("without", "[fixed_scores, path_noise]"),
            ("with", "[fixed_scores, path_noise, supervised_noise]"),
        ):
            protocol = tmp_path / f"{name}.yaml"
            protocol.write_text(BENCHMARK_WITH_SUPERVISION.replace("MODELS", models))
            code, _, stderr = cli("run", str(protocol), "--out", str(tmp_path / name))
            assert code == 0, stderr
            results[name] = _rows(tmp_path / name)
    finally:
        get_plugins().unregister("supervised-plugin")
    metrics = ["auroc", "recall", "f1", "ap", "n_test"]
    before, after = (results[k][results[k]["aggregate"].isin(["category", "global"])] for k in ("without", "with"))
    assert "supervised_noise" not in set(after["model"])  # the ranked tables hold unsupervised models only
    key = ["model", "category", "aggregate"]
    pd.testing.assert_frame_equal(
        before.sort_values(key)[key + metrics].reset_index(drop=True),
        after.sort_values(key)[key + metrics].reset_index(drop=True),
    )
    comparison = results["with"][results["with"]["aggregate"] == "supervised comparison category"]
    assert set(comparison["model"]) == {"fixed_scores", "path_noise", "supervised_noise"}
    whole = before.set_index(["model", "category"])["n_test"]
    for (model, category), n_test in comparison.set_index(["model", "category"])["n_test"].items():
        assert n_test == comparison[comparison["category"] == category]["n_test"].iloc[0]  # the same images for all
        if model != "supervised_noise":
            assert n_test < whole[(model, category)]  # the supervision split's images are out
    html = (tmp_path / "with" / "report.html").read_text()
    assert "Supervised comparison: every model" in html


def _rows(out):
    """Per-job rows (results.csv) and the aggregates (summary.csv) of a benchmark run."""
    per_job = pd.read_csv(out / "results.csv")
    assert set(per_job["aggregate"].dropna()) <= {"category", "supervised comparison category"}
    return pd.concat([per_job, pd.read_csv(out / "summary.csv")], ignore_index=True)
