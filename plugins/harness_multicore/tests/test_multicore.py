"""MultiCore: distances, greedy selection, two-stage caching, a small run through the harness."""

import numpy as np
import pandas as pd
import pytest
import torch
from harness_multicore import _patchcore_plus
from harness_multicore import multicore as multicore_module
from harness_multicore.fusion import cl_dice_loss, ssim
from harness_multicore.multicore import MultiCore, parse_candidates
from harness_multicore.patchcore_plus import Hyperparameters, PatchCorePlus, coreset, distances
from scipy.spatial.distance import cdist

from harness import Sample
from harness.cli import main
from harness.testing import parametrize_checks

SMALL_PATCHCORE = {"coreset_size": 200, "backbone": "resnet18", "pre_trained": False}
SMALL = {  # the CPU smoke scale: random-init resnet18 instead of the paper's pretrained wide_resnet50_2
    "backbone": "resnet18",
    "pre_trained": False,
    "candidates": ["p3-s1-euclidean", "p1-s1-cosine", "p5-s3-manhattan"],
    "coreset_size": 200,
    "ssa": {"buckets": 6, "per_bucket": 4, "per_count": 2, "regular": 6},
    "fusion_epochs": 2,
    "fusion_lr": 1e-3,
}


@pytest.mark.parametrize(
    ("metric", "scipy_metric", "kwargs"),
    [
        ("euclidean", "euclidean", {}),
        ("manhattan", "cityblock", {}),
        ("minkowski3", "minkowski", {"p": 3}),
        ("cosine", "cosine", {}),
    ],
)
def test_distances_match_scipy(metric, scipy_metric, kwargs):
    rng = np.random.default_rng(0)
    queries, bank = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
    expected = cdist(queries, bank, scipy_metric, **kwargs).min(axis=1)
    got = distances(torch.from_numpy(queries).float(), torch.from_numpy(bank).float(), metric).numpy()
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_greedy_selection_adds_the_complementary_predictor_and_stops():
    masks = np.zeros((4, 8, 8), bool)
    masks[:2, :4] = True  # anomalies in the top half of the first two images
    a, b, c, d = (Hyperparameters(p, 1, "euclidean") for p in (3, 1, 5, 7))
    left_right = np.zeros((4, 8, 8))
    left_right[:2, :4, :4] = 1.0  # finds the left part of each defect only
    other = np.zeros((4, 8, 8))
    other[:2, :4, 4:] = 1.0  # finds the right part: complements the first
    useless = np.random.default_rng(0).normal(size=(4, 8, 8)) * 0.01
    predictions = {a: left_right, b: useless, c: other, d: left_right.copy()}
    selected, coverage = MultiCore.greedy_selection(predictions, masks, a, limit=4)
    assert selected[:2] == [a, c] and coverage[1] > coverage[0]
    assert len(selected) == 2  # nothing raises coverage further: the greedy search stops


def _samples(seed: int, n: int = 10, size: int = 32) -> list[Sample]:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    return [Sample(f"{i}.png", lambda im=image: im) for i, image in enumerate(images)]


def test_each_candidate_predicts_the_synthetic_set_once(monkeypatch):
    calls = []
    original = PatchCorePlus.predict

    def counting(self, features, image_size):
        calls.append(self.h)
        return original(self, features, image_size)

    monkeypatch.setattr(PatchCorePlus, "predict", counting)
    model = MultiCore(n_predictors=2, **SMALL).fit(_samples(0))
    # selection: each candidate predicts its training maps and the synthetic set once each, and the
    # greedy search reuses those; then the k chosen predictors are fitted on the category's own bank
    assert len(calls) == 2 * len(parse_candidates(SMALL["candidates"])) + 2 * len(model.selected)
    assert 1 <= len(model.selected) <= 2 and model.selected[0] == Hyperparameters(3, 1, "euclidean")
    assert "no reference declared" in model.fit_note


def test_selection_runs_once_on_the_reference_and_mc_k_is_its_first_k(tmp_path, monkeypatch):
    from PIL import Image

    reference = tmp_path / "bottle" / "train" / "good"
    reference.mkdir(parents=True)
    for i, sample in enumerate(_samples(7)):
        Image.fromarray(sample.image).save(reference / f"{i:03d}.png")
    searches = []
    original = multicore_module.greedy_selection

    def counting(*args, **kwargs):
        searches.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(multicore_module, "greedy_selection", counting)
    options = {**SMALL, "reference": str(reference), "selection_size": 3, "fusion_epochs": 1}
    mc1 = MultiCore(n_predictors=1, **options).fit(_samples(1))  # two categories, two sizes of MC
    mc2 = MultiCore(n_predictors=2, **options).fit(_samples(2))
    mc3 = MultiCore(n_predictors=3, **options, seed=5).fit(_samples(3))  # another seed: the same selection
    assert len(searches) == 1
    assert mc1.selection == mc2.selection == mc3.selection
    ordered = list(mc3.selection.predictors)
    assert mc1.selected == ordered[:1] and mc2.selected == ordered[:2] and mc3.selected == ordered[:3]
    assert f"reference '{reference}'" in mc2.fit_note and mc2.selected[1].name in mc2.fit_note


def test_a_missing_reference_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"options\.reference: no images in"):
        MultiCore(**SMALL, reference=str(tmp_path / "nothing")).fit(_samples(0))


@pytest.mark.parametrize(("metric", "scipy_metric"), [("manhattan", "cityblock"), ("cosine", "cosine")])
def test_the_coreset_is_farthest_point_sampling_under_the_predictors_distance(metric, scipy_metric):
    rng = np.random.default_rng(0)
    patches = rng.normal(size=(120, 6)) * rng.uniform(0.2, 3, size=6)
    torch.manual_seed(0)
    chosen = coreset(torch.from_numpy(patches).float(), 12, metric).numpy()
    first = int(np.flatnonzero((np.abs(patches - chosen[0]) < 1e-6).all(axis=1))[0])
    expected, nearest = [first], cdist(patches, patches[[first]], scipy_metric)[:, 0]
    for _ in range(11):  # farthest point from everything chosen so far, by the same distance
        expected.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, cdist(patches, patches[[expected[-1]]], scipy_metric)[:, 0])
    assert chosen == pytest.approx(patches[expected].astype(np.float32), abs=1e-5)


def test_losses_are_zero_for_a_perfect_prediction():
    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 6:9] = 1
    assert float(1 - ssim(target, target)) == pytest.approx(0, abs=1e-6)
    assert float(cl_dice_loss(target, target)) == pytest.approx(0, abs=1e-6)
    assert float(cl_dice_loss(1 - target, target)) > 0.5


@parametrize_checks(
    "patchcore_plus", _patchcore_plus, {"coreset_size": 200, "backbone": "resnet18", "pre_trained": False}
)
def test_patchcore_plus_conforms(check):
    check()


@pytest.mark.slow
def test_mc2_runs_under_kde_vs_test_with_pl_and_aupro(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    protocol = tmp_path / "mc.yaml"
    protocol.write_text(f"""
protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [disc],
          image_size: 32}}
models: [{{name: mc2, options: {SMALL}}}]
calibrations: [test_f1_oracle, kde]
""")
    code = main(["run", str(protocol), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(rows["model"]) == {"mc2"} and rows["pl"].notna().all() and rows["aupro"].notna().all()


def smoke_override() -> list[str]:
    """The CPU smoke override exactly as protocols/multicore.yaml documents it (its ``--set`` arguments)."""
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "protocols" / "multicore.yaml").read_text()
    block = text.split("# CPU smoke override", 1)[1].split("\nprotocol:", 1)[0]
    command = " ".join(line.lstrip("#").strip().rstrip("\\") for line in block.splitlines()[1:])
    arguments = shlex.split(command.split("protocols/multicore.yaml", 1)[1])
    assert arguments and all(a == "--set" for a in arguments[::2])
    return arguments


@pytest.mark.slow
def test_the_multicore_protocol_with_its_cpu_smoke_override(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    protocol = Path(__file__).resolve().parents[3] / "protocols" / "multicore.yaml"
    out = tmp_path / "out"
    arguments = [  # the documented override, on a smaller embedded dataset to keep the test short
        *smoke_override(),
        *("--set", "dataset.categories=[disc, weave]", "--set", "dataset.image_size=32"),
        *("--set", "dataset.synthetic={n_train: 16, n_test_good: 6, n_per_defect: 2, size: 32, seed: 0}"),
    ]
    code = main(["run", str(protocol), "--out", str(out), "--cache", str(tmp_path / "cache"), *arguments])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(out / "results.csv")
    per_category = rows[rows["aggregate"] == "category"].set_index(["model", "category"])
    assert per_category["pl"].notna().all() and per_category["pro"].notna().all()
    notes = per_category["notes"]
    for category in ("disc", "weave"):  # one selection on disc's training images, for every category
        mc2, mc4 = notes[("mc2", category)], notes[("mc4", category)]
        assert "reference 'embedded:disc'" in mc2 and "reference 'embedded:disc'" in mc4
        chosen = mc4.split("MultiCore predictors: ")[1].split(" (")[0].split(", ")
        assert mc2.split("MultiCore predictors: ")[1].startswith(", ".join(chosen[:2]))
    assert "MultiCore predictors" in (out / "report.html").read_text()
