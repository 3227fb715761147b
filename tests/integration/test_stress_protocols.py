"""partial_anomaly and missing_type with hand-fixed scores: exact counts, zero refits, determinism."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import harness
from harness.plugins import get_plugins

# test normals, anomalies by type (types A and B form family F1, type C family F2)
SCORES = {"n0": 0.1, "n1": 0.2, "n2": 0.3, "n3": 0.4, "a0": 0.35, "a1": 0.9, "b0": 0.8, "c0": 0.25, "c1": 0.7}
TRAIN = {f"t{i}": 0.05 * i for i in range(8)}
NAMES = [*SCORES, *TRAIN]  # image i is filled with grey level i + 1: the detector reads pixels, not names


class Lookup:
    """Scores fixed by hand, looked up by the image's grey level (paths are opaque): nothing is learned."""

    weights = "none"
    fits = 0

    def fit(self, samples):
        Lookup.fits += 1

    def score(self, samples):
        fixed = {**SCORES, **TRAIN}
        return harness.Scores(np.array([fixed[NAMES[int(s.image[0, 0, 0]) - 1]] for s in samples]))


class LookupPlugin:
    @harness.hookimpl
    def harness_models(self):
        return {"lookup": Lookup}


@pytest.fixture
def lookup_dataset(tmp_path):
    root = tmp_path / "parts"
    folders = {
        "good": list(TRAIN),
        "good_test": ["n0", "n1", "n2", "n3"],
        "A": ["a0", "a1"],
        "B": ["b0"],
        "C": ["c0", "c1"],
    }
    for folder, names in folders.items():
        (root / folder).mkdir(parents=True)
        for name in names:
            grey = np.full((8, 8, 3), NAMES.index(name) + 1, np.uint8)
            Image.fromarray(grey).save(root / folder / f"{name}.png")
    get_plugins().register(LookupPlugin(), "lookup-plugin")
    Lookup.fits = 0
    yield root
    get_plugins().unregister("lookup-plugin")


def _protocol(tmp_path, root, kind, analysis):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"""
protocol: {kind}
dataset:
  layout: folder
  root: {root}
  image_size: 8
  options: {{normal_dir: good, normal_test_dir: good_test, abnormal_dirs: {{A: A, B: B, C: C}},
             families: {{F1: [A, B], F2: [C]}}}}
holdout_fraction: 0.5
models: [lookup]
executor: {{isolate: false}}   # fits are counted in this process
calibrations: [test_youden_oracle, kde]
analysis: {analysis}
""")
    return path


def test_missing_type_counts_match_hand_computation(cli, tmp_path, lookup_dataset):
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(_protocol(tmp_path, lookup_dataset, "missing_type", "{}")), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv").set_index(["calibration", "mode", "left_out"]).sort_index()
    youden = rows.loc["test_youden_oracle"]
    # A left out: calibrate on b0 .8, c0 .25, c1 .7 + normals -> best TPR-FPR at 0.7; A's 0.35 is missed
    assert youden.loc[("type", "A"), "threshold"] == 0.7
    assert youden.loc[("type", "A"), ["left_out_missed", "left_out_count"]].tolist() == [1, 2]
    # family F1 (A + B) left out: c0 .25 and c1 .7 remain; ties between 0.7 and 0.25 go to 0.7
    assert youden.loc[("family", "F1"), "threshold"] == 0.7
    assert youden.loc[("family", "F1"), ["left_out_missed", "left_out_count"]].tolist() == [1, 3]
    # C left out: a0 .35, a1 .9, b0 .8 remain -> 0.35 (J = 1 - 1/4) beats 0.8 (J = 2/3)
    assert youden.loc[("type", "C"), "threshold"] == 0.35
    assert youden.loc[("type", "C"), "left_out_missed"] == 1  # c0 = 0.25
    # the deployable threshold is the same in every row
    assert rows.loc["kde", "threshold"].nunique() == 1


def test_partial_anomaly_draws_match_hand_computation(cli, tmp_path, lookup_dataset):
    out = tmp_path / "out"
    path = _protocol(tmp_path, lookup_dataset, "partial_anomaly", "{fractions: [0.2, 1.0], draws: 7}")
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    draws = pd.read_csv(out / "figures" / "partial_anomaly_draws.csv")
    one = draws[draws["fraction"] == 0.2]
    assert (one["anomalies_used"] == 1).all() and len(one) == 7
    # with one anomaly drawn, the Youden threshold is that anomaly's score; misses are the anomalies below it
    expected_misses = {0.9: 4, 0.8: 3, 0.7: 2, 0.35: 1, 0.25: 0}
    assert [expected_misses[t] for t in one["threshold"]] == one["false_negatives"].tolist()
    every = draws[draws["fraction"] == 1.0]
    assert (every["threshold"] == 0.7).all() and (every["false_negatives"] == 2).all()
    rows = pd.read_csv(out / "results.csv")
    full = rows[(rows["calibration"] == "test_youden_oracle") & (rows["fraction"] == 1.0)].iloc[0]
    assert full["threshold_std"] == pytest.approx(0, abs=1e-12) and full["false_negatives_mean"] == 2
    assert rows.loc[rows["calibration"] == "kde", "fraction"].tolist() == [0.0]


def test_stress_protocols_refit_nothing_after_kde_vs_test(cli, tmp_path, lookup_dataset):
    for kind, analysis in (("kde_vs_test", "{}"), ("partial_anomaly", "{draws: 3}"), ("missing_type", "{}")):
        code, _, stderr = cli(
            "run", str(_protocol(tmp_path, lookup_dataset, kind, analysis)), "--out", str(tmp_path / kind)
        )
        assert code == 0, stderr
    assert Lookup.fits == 1
    counts = json.loads((tmp_path / "missing_type" / "run.json").read_text())["counts"]
    assert counts == {"fitted": 0, "cached": 1, "failed": 0}


def test_partial_anomaly_is_identical_for_the_same_seed(cli, tmp_path, lookup_dataset):
    path = _protocol(tmp_path, lookup_dataset, "partial_anomaly", "{draws: 5}")
    for out in ("first", "second"):
        assert cli("run", str(path), "--out", str(tmp_path / out))[0] == 0
    first = (tmp_path / "first" / "results.csv").read_text()
    assert first == (tmp_path / "second" / "results.csv").read_text()
    assert (tmp_path / "first" / "figures" / "partial_anomaly_draws.csv").read_bytes() == (
        tmp_path / "second" / "figures" / "partial_anomaly_draws.csv"
    ).read_bytes()
    code, _, _ = cli("run", str(path), "--out", str(tmp_path / "other"), "--set", "seeds=[1]")
    assert code == 0
    assert (tmp_path / "other" / "results.csv").read_text() != first


def _multiclass(tmp_path, cross_matrix):
    path = tmp_path / "mc.yaml"
    path.write_text(f"""
protocol: multiclass_unified
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}},
          categories: [weave, disc], image_size: 32}}
models: [fixed_scores]
calibrations: [test_f1_oracle, kde]
analysis: {{cross_matrix: {str(cross_matrix).lower()}}}
""")
    return path


def test_multiclass_fits_only_the_unified_model_after_kde_vs_test(cli, tmp_path, small_protocol):
    from conftest import FixedScores

    assert cli("run", str(small_protocol), "--out", str(tmp_path / "kv"))[0] == 0
    FixedScores.calls = []
    code, _, stderr = cli("run", str(_multiclass(tmp_path, False)), "--out", str(tmp_path / "mc"))
    assert code == 0, stderr
    assert FixedScores.calls == ["fit"]  # the unified model; per-category models come from the cache
    rows = pd.read_csv(tmp_path / "mc" / "results.csv")
    summary = pd.read_csv(tmp_path / "mc" / "summary.csv")  # aggregates, apart from the per-job rows
    assert set(rows["setting"]) == {"per-category", "unified"}
    assert {"weave", "disc"} <= set(rows["category"]) and set(rows["aggregate"]) == {"category"}
    assert {"mean of categories", "pooled (all test images)"} <= set(summary["category"])
    assert list(rows.columns[:6]) == ["model", "category", "seed", "calibration", "status", "error"]


def test_multiclass_cross_matrix(cli, tmp_path):
    code, _, stderr = cli("run", str(_multiclass(tmp_path, True)), "--out", str(tmp_path / "mc"))
    assert code == 0, stderr
    matrix = pd.read_csv(tmp_path / "mc" / "figures" / "cross_fixed_scores.csv", index_col=0)
    assert list(matrix.index) == ["disc", "weave"] and list(matrix.columns) == ["disc", "weave"]
    rows = pd.read_csv(tmp_path / "mc" / "results.csv")
    own = rows[(rows["setting"] == "per-category") & (rows["category"] == "disc")]["auroc"].iloc[0]
    assert matrix.loc["disc", "disc"] == pytest.approx(own, abs=1e-4)  # the diagonal is the usual result
    html = (tmp_path / "mc" / "report.html").read_text()
    assert "train on one, test on all" in html.lower() or "trained on each category" in html


def test_partial_anomaly_rerun_reads_stored_draws_and_figures(cli, tmp_path, lookup_dataset, monkeypatch):
    from harness_paradigms import partial_anomaly

    path = _protocol(tmp_path, lookup_dataset, "partial_anomaly", "{draws: 5}")
    assert cli("run", str(path), "--out", str(tmp_path / "first"))[0] == 0
    calls = []
    original_draw, original_rows = partial_anomaly.PartialAnomaly._draw, partial_anomaly._job_rows
    monkeypatch.setattr(partial_anomaly.PartialAnomaly, "_draw", lambda *a: calls.append("figure") or original_draw(*a))
    monkeypatch.setattr(partial_anomaly, "_job_rows", lambda *a: calls.append("draws") or original_rows(*a))
    assert cli("run", str(path), "--out", str(tmp_path / "again"))[0] == 0
    assert calls == []  # the same question of the same scores: read back
    for name in ("results.csv", "figures/partial_anomaly_draws.csv", "figures/manifest.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    (figure,) = (tmp_path / "again" / "figures").glob("partial_*.png")
    assert figure.read_bytes() == (tmp_path / "first" / "figures" / figure.name).read_bytes()
    assert cli("run", str(path), "--out", str(tmp_path / "fewer"), "--set", "analysis.draws=4")[0] == 0
    assert calls == ["draws", "figure"]  # another option: recomputed
    monkeypatch.setattr(partial_anomaly, "code_digest", lambda: "new code")
    assert cli("run", str(path), "--out", str(tmp_path / "new-code"))[0] == 0
    assert calls == ["draws", "figure"] * 2  # new code: recomputed


def test_stored_paradigm_work_is_keyed_by_its_source(tmp_path, monkeypatch):
    from harness_paradigms.cached import source_digest

    module = tmp_path / "paradigm_probe.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = source_digest("paradigm_probe")
    module.write_text("VALUE = 2\n")
    source_digest.cache_clear()  # a new process
    assert source_digest("paradigm_probe") != first
    source_digest.cache_clear()


def test_missing_type_rerun_copies_its_figure(cli, tmp_path, lookup_dataset, monkeypatch):
    from harness_paradigms import missing_type

    path = _protocol(tmp_path, lookup_dataset, "missing_type", "{}")
    assert cli("run", str(path), "--out", str(tmp_path / "first"))[0] == 0
    calls = []
    original = missing_type.MissingType._draw
    monkeypatch.setattr(missing_type.MissingType, "_draw", lambda *a: calls.append(1) or original(*a))
    assert cli("run", str(path), "--out", str(tmp_path / "again"))[0] == 0
    assert calls == []
    (figure,) = (tmp_path / "again" / "figures").glob("missing_*.png")
    assert figure.read_bytes() == (tmp_path / "first" / "figures" / figure.name).read_bytes()
    assert (tmp_path / "first" / "results.csv").read_bytes() == (tmp_path / "again" / "results.csv").read_bytes()
    assert cli("run", str(path), "--out", str(tmp_path / "types"), "--set", "analysis.modes=[type]")[0] == 0
    assert calls == [1]  # other rows shown: drawn


def test_partial_anomaly_recomputes_when_a_score_changes(cli, tmp_path, lookup_dataset, monkeypatch):
    import shutil

    from harness_paradigms import partial_anomaly

    path = _protocol(tmp_path, lookup_dataset, "partial_anomaly", "{draws: 5}")
    home = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(home))
    assert cli("run", str(path), "--out", str(tmp_path / "first"))[0] == 0
    for entry in home.iterdir():  # the score entries, not the derived artefacts beside them
        if entry.name != ".derived":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    monkeypatch.setitem(SCORES, "a0", 0.36)  # refitted, one anomaly scores differently
    calls = []
    original_rows = partial_anomaly._job_rows
    monkeypatch.setattr(partial_anomaly, "_job_rows", lambda *a: calls.append("draws") or original_rows(*a))
    assert cli("run", str(path), "--out", str(tmp_path / "second"))[0] == 0
    assert calls == ["draws"]
    first = pd.read_csv(tmp_path / "first" / "figures" / "partial_anomaly_draws.csv")
    second = pd.read_csv(tmp_path / "second" / "figures" / "partial_anomaly_draws.csv")
    assert 0.35 in set(first["threshold"]) and 0.36 in set(second["threshold"])
