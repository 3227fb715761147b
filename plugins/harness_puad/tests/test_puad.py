"""PUAD: the Mahalanobis score against numpy, z-statistics from validation normals, one fit for three rows."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from harness_puad import _puad
from harness_puad.detector import PUAD
from harness_puad.efficientad import to_input_size
from harness_puad.mahalanobis import GaussianFeatures
from PIL import Image
from sklearn.covariance import ledoit_wolf_shrinkage

from harness.cli import main
from harness.testing import Subject, parametrize_checks

SMALL = {"max_steps": 3, "pretrained": False, "penalty": False}


def numpy_ledoit_wolf_mahalanobis(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """sqrt((y - mu)^T Sigma^-1 (y - mu)), Sigma = (1 - d) S + d tr(S)/p I (Ledoit-Wolf), by hand."""
    mu = train.mean(axis=0)
    centred = train - mu
    empirical = centred.T @ centred / len(train)
    shrinkage = ledoit_wolf_shrinkage(train)
    sigma = (1 - shrinkage) * empirical + shrinkage * np.trace(empirical) / train.shape[1] * np.eye(train.shape[1])
    diff = query - mu
    return np.sqrt(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(sigma), diff))


def test_gaussian_distance_equals_numpy():
    rng = np.random.default_rng(0)
    train, query = rng.normal(size=(40, 12)), rng.normal(size=(9, 12)) * 2
    got = GaussianFeatures().fit(train).distance(query)
    assert got == pytest.approx(numpy_ledoit_wolf_mahalanobis(train, query), rel=1e-8)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small PUAD fit (random-init teacher, 3 steps) on the embedded dataset, and its data."""
    subject = Subject("puad", lambda **o: _puad("puad", **o), {**SMALL, "fit_cache": False}, 48)
    torch.manual_seed(0)
    detector = subject.build()
    train = subject.samples("train")
    seen = []
    originals = {name: getattr(PUAD, name) for name in ("_raw", "_pooled")}  # every pass over images in fit

    def recording(original):
        def record(self, model, samples):
            seen.extend(s.path for s in samples)
            return original(self, model, samples)

        return record

    for name, original in originals.items():
        setattr(PUAD, name, recording(original))
    try:
        detector.fit(train)
    finally:
        for name, original in originals.items():
            setattr(PUAD, name, original)
    yield detector, train, subject.samples("test"), seen  # the subject (and its image folder) lives on


@pytest.mark.slow
def test_mahalanobis_score_equals_numpy_on_student_features(fitted):
    detector, train, test, _ = fitted
    model = detector.fitted.model
    train_part, _ = detector.split(train, 0)

    def student_features(samples):
        images = torch.from_numpy(np.stack([s.image for s in samples]).astype(np.float32) / 255).permute(0, 3, 1, 2)
        device = next(model.student.parameters()).device  # CPU or GPU: compare on the model's device
        with torch.no_grad():
            output = model.student(to_input_size(images.to(device)))[:, : model.teacher_out_channels]
        return output.mean(dim=(2, 3)).double().cpu().numpy()

    expected = numpy_ledoit_wolf_mahalanobis(student_features(train_part), student_features(test))
    detector.mode = "mahalanobis"
    try:
        got = detector.score(test).image
    finally:
        detector.mode = "puad"
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_z_statistics_come_from_validation_normals_only(fitted):
    detector, train, test, seen = fitted
    train_part, validation = detector.split(train, 0)
    assert set(seen) == {s.path for s in train} and not {s.path for s in test} & set(seen)
    picturable, features = detector._raw(detector.fitted.model, validation)
    assert detector.fitted.picturable.mean == pytest.approx(picturable.mean(), rel=1e-6)
    assert detector.fitted.picturable.std == pytest.approx(picturable.std(), rel=1e-6)
    unpicturable = detector.fitted.gaussian.distance(features)
    assert detector.fitted.unpicturable.mean == pytest.approx(unpicturable.mean(), rel=1e-6)
    assert not {s.path for s in validation} & {s.path for s in train_part}


@pytest.mark.slow
def test_puad_is_the_sum_of_the_two_z_scores(fitted):
    detector, _, test, _ = fitted
    test = test[:4]
    scores = {}
    for mode in ("puad", "efficientad", "mahalanobis"):
        detector.mode = mode
        scores[mode] = detector.score(test).image
    detector.mode = "puad"
    z = detector.fitted
    assert scores["puad"] == pytest.approx(z.picturable(scores["efficientad"]) + z.unpicturable(scores["mahalanobis"]))


@pytest.mark.slow
def test_local_teacher_file_and_penalty_folder(tmp_path, monkeypatch):
    from anomalib.models.image.efficient_ad.torch_model import SmallPatchDescriptionNetwork

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    teacher = tmp_path / "pretrained_teacher_s.pth"
    torch.save(SmallPatchDescriptionNetwork(out_channels=384).state_dict(), teacher)
    rng = np.random.default_rng(0)
    for label in ("a", "b"):  # a stand-in for ImageNette: class sub-folders of images
        (tmp_path / "penalty" / label).mkdir(parents=True)
        for i in range(2):
            image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
            image.save(tmp_path / "penalty" / label / f"{i}.png")
    options = {"max_steps": 2, "teacher_weights": str(teacher), "imagenet_dir": str(tmp_path / "penalty")}
    subject = Subject("puad", lambda **o: _puad("puad", **o), options, 48)
    detector = subject.fitted()
    assert detector.weights == "local file: pretrained_teacher_s.pth"
    assert (tmp_path / "home" / "fits" / "puad").is_dir()  # the fit is kept for the sibling rows
    cached = subject.fitted()  # same pixels, options and seed: loaded, not retrained
    test = subject.samples("test")[:3]
    assert cached.score(test).image == pytest.approx(detector.score(test).image)


def test_offline_without_teacher_names_the_options(monkeypatch, tmp_path):
    from harness_puad.efficientad import EfficientAdTrainer

    from harness import ModelError

    with pytest.raises(ModelError, match="teacher_weights"):
        EfficientAdTrainer(teacher_weights=tmp_path / "missing.pth")
    with pytest.raises(ModelError, match="penalty=false"):
        EfficientAdTrainer(pretrained=False, imagenet_dir=tmp_path / "missing")


@pytest.mark.slow
@parametrize_checks("puad", lambda **o: _puad("puad", **o), {**SMALL, "fit_cache": False}, image_size=48)
def test_puad_conforms(check):
    check()  # fit cache off: 'deterministic_fit' compares two real trainings, not two loads of one file


@pytest.mark.slow
def test_two_fits_with_one_seed_agree():
    subject = Subject("puad", lambda **o: _puad("puad", **o), {**SMALL, "fit_cache": False}, 48)
    test = subject.samples("test")[:3]
    first, second, other = (subject.fitted(seed=seed).score(test).image for seed in (0, 0, 1))
    assert first == pytest.approx(second, rel=1e-5)
    assert not np.allclose(first, other)  # the check can fail: another seed trains another model


@pytest.mark.slow
def test_three_rows_under_kde_vs_test(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    protocol = tmp_path / "puad.yaml"
    names = ("puad", "puad_efficientad", "puad_mahalanobis")
    models = ", ".join(f"{{name: {name}, options: {SMALL}}}" for name in names)
    protocol.write_text(f"""
protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 12, n_test_good: 4, n_per_defect: 2, size: 48, seed: 0}}, categories: [disc],
          image_size: 48}}
models: [{models}]
calibrations: [test_f1_oracle, kde]
""")
    code = main(["run", str(protocol), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(rows["model"]) == {"puad", "puad_efficientad", "puad_mahalanobis"}
    assert set(rows["weights"]) == {"random-init"}
    assert rows.loc[rows["model"] == "puad_mahalanobis", "pixel_auroc"].isna().all()
    report = (tmp_path / "out" / "report.html").read_text()
    assert all(name in report for name in ("puad_efficientad", "puad_mahalanobis"))
    assert len(list((tmp_path / "home" / "fits" / "puad").glob("*.safetensors"))) == 1  # three rows, one fit
    jobs = json.loads((tmp_path / "out" / "run.json").read_text())["jobs"]
    assert min(job["fit_seconds"] for job in jobs) > 1  # the loaded rows report the one training's time


def test_harness_list_says_what_the_defaults_need_offline(monkeypatch):
    import socket

    from harness_puad import harness_models, why_unavailable

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    why_unavailable.cache_clear()  # looked up once per process
    reason = harness_models()["puad"].why_unavailable()
    assert "teacher_weights" in reason and "penalty: false" in reason


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch_save", "raw_pickle", "header_then_pickle"])
def test_planted_pickle_in_the_fit_cache_never_runs(tmp_path, how):
    """A file planted where a fit would be cached (a shared HARNESS_HOME) is set aside unread; no code runs."""
    import pickle

    from harness_puad.detector import _load

    marker = tmp_path / "PWNED"
    path = tmp_path / "fits" / "puad" / "planted.safetensors"
    path.parent.mkdir(parents=True)
    if how == "torch_save":
        torch.save({"model": _Payload(marker), "rest": pickle.dumps(_Payload(marker))}, path)
    elif how == "raw_pickle":
        path.write_bytes(pickle.dumps(_Payload(marker)))
    else:  # a valid safetensors header whose metadata smuggles a pickle
        from safetensors.torch import save

        payload = pickle.dumps(_Payload(marker)).hex()
        path.write_bytes(save({"x": torch.zeros(1)}, metadata={"puad": json.dumps({"rest": payload})}))
    assert _load(path, dict(SMALL)) is None
    assert not marker.exists()
    assert path.with_suffix(".bad").is_file() and not path.exists()


def test_fit_cache_file_is_safetensors(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    detector = PUAD(**SMALL)
    sample = type("S", (), {"image": np.zeros((8, 8, 3), np.uint8)})()
    assert detector._cache_path([sample], 0).suffix == ".safetensors"
