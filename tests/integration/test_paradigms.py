"""Paper 004's paradigms (few_shot, noisy_training, continual, train_on) with a detector whose scores are fixed by hand.

Every image is one uniform grey level v. The detector scores an image by the distance of its v
to the nearest v it was fitted on (1-nearest neighbour), so each expected AUROC follows from the
values below with pen and paper (or sklearn); ``Forgetful`` can continue fitting but keeps only
the last category it was taught, so its forgetting is known exactly.
"""

import json
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

import harness
from harness.plugins import get_plugins

# category: (train normals, test normals, anomalies) as grey levels
CATEGORIES = {
    "A": ([100] * 4, [100, 104], [60, 130, 90]),
    "B": ([40] * 4, [40, 44], [10, 80]),
    "C": ([250] * 4, [250, 246], [200, 180]),
    "F": ([100, 110, 120, 130], [105, 125], [60, 170]),
    "N": ([100] * 8, [100, 103, 106, 110], [200] * 4),
}


def _values(samples) -> np.ndarray:
    return np.array([float(s.image.mean()) for s in samples])


class Log:
    """What the detectors were taught, one JSON line per call, in a file: jobs run in child processes."""

    path: typing.ClassVar[Path | None] = None

    @classmethod
    def write(cls, call: str, values: np.ndarray) -> None:
        with cls.path.open("a") as file:
            file.write(json.dumps([call, sorted(values.tolist())]) + "\n")

    @classmethod
    def read(cls, call: str) -> list[list[float]]:
        lines = cls.path.read_text().splitlines() if cls.path.is_file() else []
        return [values for name, values in map(json.loads, lines) if name == call]


class Nearest:
    """Score = distance to the nearest training grey level. Cannot continue fitting."""

    weights = "none"

    def fit(self, samples):
        self.memory = _values(samples)
        Log.write("fit", self.memory)
        return self

    def score(self, samples):
        distances = np.abs(_values(samples)[:, None] - self.memory[None, :]).min(axis=1)
        return harness.Scores(distances)


class Forgetful(Nearest):
    """Declares continual fitting; ``fit_more`` keeps only the newest images (catastrophic forgetting)."""

    continual = True

    def fit_more(self, samples):
        self.memory = _values(samples)
        Log.write("fit_more", self.memory)
        return self


class ParadigmPlugin:
    @harness.hookimpl
    def harness_models(self):
        return {"nearest": Nearest, "forgetful": Forgetful}


@pytest.fixture
def grey_root(tmp_path):
    """An MVTec-style tree of 8 x 8 uniform images named by their grey level."""
    root = tmp_path / "grey"
    for name, (train, good, bad) in CATEGORIES.items():
        for folder, values in (("train/good", train), ("test/good", good), ("test/defect", bad)):
            (root / name / folder).mkdir(parents=True)
            for i, v in enumerate(values):
                Image.fromarray(np.full((8, 8, 3), v, np.uint8)).save(root / name / folder / f"v{v}_{i}.png")
    get_plugins().register(ParadigmPlugin(), "paradigm-plugin")
    Log.path = tmp_path / "taught.jsonl"
    yield root
    get_plugins().unregister("paradigm-plugin")


def _protocol(tmp_path: Path, root: Path, kind: str, categories: list[str], models: str, analysis: str) -> Path:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"""
protocol: {kind}
dataset: {{layout: mvtec, root: {root}, categories: {categories}, image_size: 8}}
holdout_fraction: 0.5
models: {models}
calibrations: [test_f1_oracle, quantile]
analysis: {analysis}
""")
    return path


def _value(path: str) -> int:
    return int(Path(path).stem.split("_")[0][1:])


def _auroc(memory, normals, anomalies) -> float:
    memory = np.asarray(memory, float)
    values = np.array([*normals, *anomalies], float)
    scores = np.abs(values[:, None] - memory[None, :]).min(axis=1)
    return roc_auc_score([0] * len(normals) + [1] * len(anomalies), scores)


def test_few_shot_numbers_draws_and_fixed_holdout(cli, tmp_path, grey_root):
    path = _protocol(tmp_path, grey_root, "few_shot", ["F"], "[nearest]", "{shots: [1, all], draws: 2}")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    rows = rows[rows["calibration"] == "test_f1_oracle"].astype({"shots": str})
    run = json.loads((out / "run.json").read_text())
    holdouts = set()
    for job in run["jobs"]:
        scores = pd.read_csv(out / "scores" / f"{job['key']}.csv")
        holdouts.add(tuple(sorted(scores.loc[scores["split"] == "holdout", "path"])))
    assert len(holdouts) == 1  # the same held-out normals for every k and draw
    held = sorted(_value(p) for p in next(iter(holdouts)))
    fit = [v for v in CATEGORIES["F"][0] if v not in held]
    assert all(not set(memory) & set(held) for memory in Log.read("fit"))  # never trained on a held-out normal
    _, normals, anomalies = CATEGORIES["F"]
    assert rows.loc[rows["shots"] == "all", "auroc"].item() == pytest.approx(_auroc(fit, normals, anomalies))
    expected = []
    for draw in (0, 1):  # the documented draw: seeded by (split seed, k, draw)
        chosen = [fit[i] for i in sorted(np.random.default_rng([0, 1, draw]).choice(len(fit), 1, replace=False))]
        expected.append(_auroc(chosen, normals, anomalies))
    one = rows[rows["shots"] == "1"].sort_values("draw")
    assert one["auroc"].tolist() == pytest.approx(expected) and (one["n_fit"] == 1).all()
    spread = pd.read_csv(out / "figures" / "few_shot_spread.csv").astype({"shots": str})
    row = spread[(spread["calibration"] == "test_f1_oracle") & (spread["shots"] == "1")].iloc[0]
    assert row["auroc"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert row["auroc_std"] == pytest.approx(np.std(expected, ddof=1), abs=1e-4)
    assert (out / "figures" / "few_shot.png").is_file()


def test_noisy_training_numbers_and_one_test_set_for_every_rate(cli, tmp_path, grey_root):
    path = _protocol(tmp_path, grey_root, "noisy_training", ["N"], "[nearest]", "{rates: [0, 0.2, 0.5]}")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    rows = rows[rows["calibration"] == "test_f1_oracle"].sort_values("contamination")
    # 4 fit normals; 0.2 -> round(0.2 * 4 / 0.8) = 1 defect; 0.5 -> 4, capped at half the 4 anomalies = 2
    assert rows["n_contaminants"].tolist() == [0, 1, 2]
    assert rows["contamination_actual"].tolist() == pytest.approx([0, 1 / 5, 2 / 6])
    # both candidates are out of every test set: 4 normals + 2 anomalies at every rate
    assert (rows["n_test"] == 6).all() and (rows["n_anomalous"] == 2).all()
    tests = {
        tuple(sorted(pd.read_csv(out / "scores" / f"{key}.csv").query("split == 'test'")["path"]))
        for key in rows["cache_key"]
    }
    assert len(tests) == 1
    # clean: anomalies 100 away, normals 0..10 -> AUROC 1; with a 200 in memory the anomalies score 0:
    # each ties the normal scoring 0 and loses to the other three -> 0.5 / 4
    assert rows["auroc"].tolist() == pytest.approx([1.0, 0.125, 0.125])
    contaminated = [m for m in Log.read("fit") if 200.0 in m]
    assert sorted(m.count(200.0) for m in contaminated) == [1, 2]
    assert all(len(m) - m.count(200.0) == 4 for m in Log.read("fit"))  # the same 4 normals at every rate


T_FORGETFUL = {1: {"A": 1.0}, 2: {"A": 1 / 3, "B": 1.0}, 3: {"A": 2 / 3, "B": 0.5, "C": 1.0}}
FM_FORGETFUL = {2: {"A": 2 / 3}, 3: {"A": 1 - 2 / 3, "B": 0.5}}


def test_continual_matrix_and_forgetting_by_hand(cli, tmp_path, grey_root):
    models = "[forgetful, nearest]"
    path = _protocol(tmp_path, grey_root, "continual", ["A", "B", "C"], models, "{sequence: [A, B, C]}")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    rows = rows[rows["calibration"] == "quantile"]
    forgetful = rows[rows["model"] == "forgetful"].set_index(["step", "category"])
    for step, values in T_FORGETFUL.items():
        for category, value in values.items():
            assert forgetful.loc[(step, category), "auroc"] == pytest.approx(value), (step, category)
            expected = FM_FORGETFUL.get(step, {}).get(category)
            got = forgetful.loc[(step, category), "forgetting"]
            assert (np.isnan(got) and expected is None) or got == pytest.approx(expected), (step, category)
    assert set(forgetful["design"]) == {"incremental"}
    # steps 2 and 3 each replay the sequence: fit, then fit_more per later category
    assert len(Log.read("fit_more")) == 1 + 2
    union = rows[rows["model"] == "nearest"]
    assert set(union["design"]) == {"union"} and (union["auroc"] == 1.0).all()
    assert union["forgetting"].dropna().eq(0).all() and union["forgetting"].notna().sum() == 3
    summary = pd.read_csv(out / "figures" / "continual_forgetful.csv", index_col=0)
    assert summary["mean forgetting"].tolist()[1:] == pytest.approx([2 / 3, (1 / 3 + 1 / 2) / 2], abs=1e-4)
    html = (out / "report.html").read_text()
    assert "union of the categories seen so far" in html


def test_continual_reuses_the_per_category_cache_and_refits_nothing(cli, tmp_path, grey_root):
    kde = _protocol(tmp_path, grey_root, "kde_vs_test", ["A"], "[nearest]", "{bootstrap: 0}")
    assert cli("run", str(kde), "--out", str(tmp_path / "kv"))[0] == 0
    path = _protocol(tmp_path, grey_root, "continual", ["A", "B"], "[nearest]", "{}")
    assert cli("run", str(path), "--out", str(tmp_path / "c1"))[0] == 0
    assert json.loads((tmp_path / "c1" / "run.json").read_text())["counts"] == {"fitted": 1, "cached": 1, "failed": 0}
    assert cli("run", str(path), "--out", str(tmp_path / "c2"))[0] == 0
    assert json.loads((tmp_path / "c2" / "run.json").read_text())["counts"]["fitted"] == 0


def test_train_on_gives_table_5_17_by_hand(cli, tmp_path, grey_root):
    analysis = "{train_on: A, unified: false, cross_matrix: false}"
    path = _protocol(tmp_path, grey_root, "multiclass_unified", ["A", "B", "C"], "[nearest]", analysis)
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    table = pd.read_csv(out / "figures" / "chosen_category.csv").set_index("model")
    # memory 100: A is perfect; B normals 60, 56 vs anomalies 90, 20 -> 0.5; C normals 150, 146 vs 100, 80 -> 0
    assert table.loc["nearest", ["A", "B", "C", "Average"]].tolist() == pytest.approx([1.0, 0.5, 0.0, 0.5])
    assert table.loc["nearest", "Chosen"] == "A"
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["design"]) == {"per category", "chosen: A"}
    chosen = rows[rows["setting"] == "chosen"]
    assert chosen.groupby("calibration")["threshold"].nunique().eq(1).all()  # one model, one threshold


@pytest.mark.parametrize(
    ("kind", "analysis", "key"),
    [
        ("few_shot", "{shots: [0]}", "analysis.shots"),
        ("noisy_training", "{rates: [1.5]}", "analysis.rates"),
        ("continual", "{sequence: [A, Z]}", "analysis.sequence"),
        ("multiclass_unified", "{train_on: Z}", "analysis.train_on"),
    ],
)
def test_bad_paradigm_options_fail_before_fitting(cli, tmp_path, grey_root, kind, analysis, key):
    path = _protocol(tmp_path, grey_root, kind, ["A", "B"], "[nearest]", analysis)
    code, _, stderr = cli("run", str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and key in stderr and "Traceback" not in stderr
    assert Log.read("fit") == []


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("few_shot", ["analysis.shots=[2, all]", "analysis.draws=2", "dataset.categories=[weave]"]),
        ("noisy_training", ["analysis.rates=[0, 0.2]", "dataset.categories=[weave]"]),
        ("continual", ["dataset.categories=[weave, disc]"]),
    ],
)
def test_shipped_paradigm_protocols_run_on_the_embedded_dataset(cli, tmp_path, name, overrides):
    from conftest import REPO, SMALL_SYNTHETIC

    sets = [f"dataset.synthetic={SMALL_SYNTHETIC}", "dataset.image_size=32", "models=[fixed_scores, mean_colour]"]
    args = [a for s in (*sets, *overrides) for a in ("--set", s)]
    out = tmp_path / name
    code, _, stderr = cli("run", str(REPO / "protocols" / f"{name}.yaml"), "--out", str(out), *args)
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert (rows["status"] == "ok").all() and {"fixed_scores", "mean_colour"} == set(rows["model"])
    assert (out / "report.html").is_file() and (out / "report.tex").is_file()
    column = {"few_shot": "shots", "noisy_training": "contamination", "continual": "forgetting"}[name]
    assert column in rows


def test_mean_colour_taught_incrementally_matches_its_union_fit(cli, tmp_path, grey_root):
    # the example plugin pools its statistics exactly, so fit + fit_more equals one fit on the union
    results = {}
    for design in ("auto", "union"):
        path = _protocol(tmp_path, grey_root, "continual", ["A", "B", "C"], "[mean_colour]", f"{{design: {design}}}")
        out = tmp_path / design
        code, _, stderr = cli("run", str(path), "--out", str(out))
        assert code == 0, stderr
        rows = pd.read_csv(out / "results.csv")
        results[design] = rows[rows["calibration"] == "quantile"].sort_values(["step", "category"])
    assert set(results["auto"]["design"]) == {"incremental"} and set(results["union"]["design"]) == {"union"}
    assert results["auto"]["auroc"].tolist() == pytest.approx(results["union"]["auroc"].tolist())
    shared = set(results["auto"]["cache_key"]) & set(results["union"]["cache_key"])
    assert shared == set(results["auto"].loc[results["auto"]["step"] == 1, "cache_key"])  # only step 1 is one job


def test_few_shot_all_is_kde_vs_tests_job(cli, tmp_path, grey_root):
    kde = _protocol(tmp_path, grey_root, "kde_vs_test", ["F"], "[nearest]", "{bootstrap: 0}")
    assert cli("run", str(kde), "--out", str(tmp_path / "kv"))[0] == 0
    path = _protocol(tmp_path, grey_root, "few_shot", ["F"], "[nearest]", "{shots: [1, all], draws: 2}")
    assert cli("run", str(path), "--out", str(tmp_path / "fs"))[0] == 0
    counts = json.loads((tmp_path / "fs" / "run.json").read_text())["counts"]
    assert counts == {"fitted": 2, "cached": 1, "failed": 0}
