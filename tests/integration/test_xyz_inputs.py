"""MVTec 3D-AD's point clouds offered to models that ask for them (``ModelSpec(inputs=("xyz",))``)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from public_datasets import WRITERS

import harness
from conftest import write_protocol
from harness.data.extra_inputs import XYZSample, load_xyz, opaque_array_name
from harness.data.handover import FIXED_MTIME
from harness.store import ScoreCache

OPAQUE = re.compile(r"^[0-9a-f]{24}\.(png|npy)$")
DEFECT_WORDS = ("crack", "hole")  # the fixture's defect types


def _log() -> Path:
    return Path(os.environ["XYZ_TEST_LOG"])


class DepthDetector:
    """Its anomaly map is the point cloud's depth channel; it logs what it was handed."""

    weights = "none"

    def fit(self, samples):
        self._observe(samples, "fit")
        return self

    def score(self, samples):
        self._observe(samples, "score")
        maps = np.stack([s.xyz[..., 2] for s in samples])
        return harness.Scores(image=maps.reshape(len(samples), -1).max(axis=1), maps=maps)

    @staticmethod
    def _observe(samples, stage):
        folder = samples[0].path.parent
        entry = {
            "stage": stage,
            "types": sorted({type(s).__name__ for s in samples}),
            "xyz": sorted({f"{s.xyz.dtype} {s.xyz.shape}" for s in samples}),
            "image": sorted({str(s.image.shape[:2]) for s in samples}),
            "files": sorted(os.listdir(folder)),
            "mtimes": sorted({int(os.stat(folder / f).st_mtime) for f in os.listdir(folder)}),
        }
        with _log().open("a") as handle:
            handle.write(json.dumps(entry) + "\n")


def peek(path: Path) -> float:
    """1 when anything beside the pixels (its name, link target, the point cloud beside it) names a defect."""
    seen = [str(path), str(path.resolve()), *os.listdir(path.parent)]
    cloud = path.parent.parent / "xyz"  # where MVTec 3D-AD keeps an image's cloud
    seen += [str(p.resolve()) for p in cloud.glob(f"{path.stem}.*")] if cloud.is_dir() else []
    return float(any(word in text.lower() for text in seen for word in DEFECT_WORDS))


class CheatingXYZ:
    """Reads labels from names (:func:`peek`): perfect on the raw files, chance through the hand-over."""

    def fit(self, samples):
        return self

    def score(self, samples):
        return harness.Scores(image=np.array([peek(s.path) for s in samples]))


class PlainDetector:
    """A model that asks for nothing: it must get plain samples and no point-cloud file."""

    def fit(self, samples):
        return self

    def score(self, samples):
        folder = samples[0].path.parent
        with _log().open("a") as handle:
            entry = {"types": sorted({type(s).__name__ for s in samples}), "files": sorted(os.listdir(folder))}
            handle.write(json.dumps({**entry, "has_xyz": any(hasattr(s, "xyz") for s in samples)}) + "\n")
        return harness.Scores(image=np.array([s.image.mean() for s in samples]))


class XYZPlugin:
    @staticmethod
    @harness.hookimpl
    def harness_models():
        return {
            "xyz_depth": harness.ModelSpec(DepthDetector, version="1", inputs=("xyz",)),
            "xyz_cheat": harness.ModelSpec(CheatingXYZ, version="1", inputs=("xyz",)),
            "xyz_plain": harness.ModelSpec(PlainDetector, version="1"),
        }


@pytest.fixture(autouse=True)
def xyz_plugin(tmp_path, monkeypatch):
    from harness.plugins import get_plugins

    plugins = get_plugins()
    if "xyz_depth" not in plugins.registry("models"):
        plugins.register(XYZPlugin(), "test-xyz")
    monkeypatch.setenv("XYZ_TEST_LOG", str(tmp_path / "xyz.log"))


def _depth_follows_masks(root: Path) -> None:
    """Rewrite the fixture's clouds: depth 1 on defect pixels, small noise elsewhere (rgb untouched)."""
    import tifffile

    rng = np.random.default_rng(3)
    for cloud in root.rglob("xyz/*.tiff"):
        values = tifffile.imread(cloud).astype(np.float32)
        mask = cloud.parent.parent / "gt" / f"{cloud.stem}.png"
        depth = rng.random(values.shape[:2], dtype=np.float32) * 0.1
        if mask.is_file():
            depth[np.asarray(Image.open(mask).resize(values.shape[1::-1], Image.Resampling.NEAREST)) > 0] = 1.0
        values[..., 2] = depth
        tifffile.imwrite(cloud, values)


def _protocol(tmp_path: Path, layout: str, model: str) -> Path:
    root = WRITERS[layout](tmp_path / layout)
    if layout == "mvtec_3d":
        _depth_follows_masks(root)
    return write_protocol(
        tmp_path / f"{layout}-{model}.yaml",
        f"""
protocol: kde_vs_test
dataset: {{layout: {layout}, root: {root}, image_size: 32}}
models: [{model}]
calibrations: [test_f1_oracle, kde]
seeds: [0]
analysis: {{bootstrap: 0, review: 0, map_panels: false}}
""",
    )


def _entries() -> list[dict]:
    return [json.loads(line) for line in _log().read_text().splitlines()] if _log().is_file() else []


def test_a_model_asking_for_xyz_gets_the_point_clouds_as_depth_maps(cli, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(_protocol(tmp_path, "mvtec_3d", "xyz_depth")), "--out", str(out))
    assert code == 0, stderr
    entries = _entries()
    assert {e["stage"] for e in entries} == {"fit", "score"}
    for entry in entries:
        assert entry["types"] == ["XYZSample"] and entry["xyz"] == ["float32 (32, 32, 3)"]
        assert entry["image"] == ["(32, 32)"]
        assert all(OPAQUE.match(name) for name in entry["files"]), entry["files"]  # hashes only
        assert any(name.endswith(".npy") for name in entry["files"]) and entry["mtimes"] == [FIXED_MTIME]
    rows = pd.read_csv(out / "results.csv")
    assert (rows["auroc"] == 1.0).all() and (rows["pixel_auroc"] > 0.99).all()  # scores came back in order
    # the maps are the depth channel of each image's own cloud, resized to the image size
    run = json.loads((out / "run.json").read_text())
    cache, key = ScoreCache(Path(run["cache"])), run["jobs"][0]["key"]
    scores = cache.scores(key)
    test = scores[scores["split"] == "test"].reset_index(drop=True)
    root = tmp_path / "mvtec_3d" / "bagel"
    for path, depth in zip(test["path"], cache.maps(key), strict=True):
        rgb = root / path  # cached rows name images relative to the deepest folder holding them all
        expected = load_xyz(rgb.parent.parent / "xyz" / f"{rgb.stem}.tiff", (32, 32))[..., 2]
        np.testing.assert_allclose(depth, expected, rtol=2e-3, atol=1e-4)  # maps are cached as float16


def test_xyz_hand_over_names_reveal_nothing(cli, tmp_path):
    from harness_datasets.layouts import MVTec3DLayout
    from sklearn.metrics import roc_auc_score

    out = tmp_path / "out"
    protocol = _protocol(tmp_path, "mvtec_3d", "xyz_cheat")
    test = MVTec3DLayout(tmp_path / "mvtec_3d").load("bagel").split("test")
    assert roc_auc_score([r.label for r in test], [peek(r.path) for r in test]) == 1.0  # the raw files tell
    code, _, stderr = cli("run", str(protocol), "--out", str(out))
    assert code == 0, stderr
    assert (pd.read_csv(out / "results.csv")["auroc"] == 0.5).all()  # nothing to read: every score the same


def test_xyz_files_are_named_by_their_values(tmp_path):
    from harness.data.base import Record
    from harness.data.handover import SampleFolder

    root = WRITERS["mvtec_3d"](tmp_path / "d") / "bagel" / "test" / "crack"
    records = [
        Record(p, "test", "crack", inputs=(("xyz", root / "xyz" / f"{p.stem}.tiff"),)) for p in root.glob("rgb/*")
    ]
    with SampleFolder((16, 16), seed=0) as folder:
        samples = folder.hand_over(records, "score", ("xyz",)).samples
        clouds = sorted(folder.root.glob("*.npy"))
        assert len(clouds) == len(records) and all(isinstance(s, XYZSample) for s in samples)
        for cloud in clouds:
            values = np.load(cloud, allow_pickle=False)
            assert cloud.name == opaque_array_name(values) and values.shape == (16, 16, 3)
            assert not os.access(cloud, os.W_OK) or os.geteuid() == 0
        assert {s.xyz.tobytes() for s in samples} == {np.load(c).tobytes() for c in clouds}
    assert not folder.root.exists()


def test_models_that_do_not_ask_get_plain_samples_and_no_cloud(cli, tmp_path):
    code, _, stderr = cli("run", str(_protocol(tmp_path, "mvtec_3d", "xyz_plain")), "--out", str(tmp_path / "out"))
    assert code == 0, stderr
    assert _entries()
    for entry in _entries():
        assert entry["types"] == ["Sample"] and not entry["has_xyz"]
        assert not any(name.endswith(".npy") for name in entry["files"])


def test_xyz_on_a_layout_without_point_clouds_is_one_error_before_fitting(cli, tmp_path):
    code, _, stderr = cli("run", str(_protocol(tmp_path, "btech", "xyz_depth")), "--out", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "needs the input 'xyz'" in errors[0] and "mvtec_3d" in errors[0]
    assert _entries() == [] and not (tmp_path / "out" / "results.csv").exists()
    code, _, stderr = cli("validate", str(tmp_path / "btech-xyz_depth.yaml"))  # validate says the same
    assert code == 2 and "needs the input 'xyz'" in stderr


def test_a_changed_point_cloud_refits_only_the_models_that_read_it(cli, tmp_path):
    import tifffile

    protocol = _protocol(tmp_path, "mvtec_3d", "xyz_depth")
    text = protocol.read_text().replace("models: [xyz_depth]", "models: [xyz_depth, xyz_plain]")
    protocol.write_text(text)
    out = tmp_path / "out"
    assert cli("run", str(protocol), "--out", str(out))[0] == 0
    cloud = next((tmp_path / "mvtec_3d").rglob("test/good/xyz/*.tiff"))
    tifffile.imwrite(cloud, tifffile.imread(cloud) + 0.5)
    assert cli("run", str(protocol), "--out", str(out))[0] == 0
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert counts["fitted"] == 1 and counts["cached"] == 1


def test_model_spec_inputs_are_checked():
    with pytest.raises(ValueError, match="unknown input"):
        harness.ModelSpec(DepthDetector, inputs=("rgbd",))
    with pytest.raises(TypeError, match="tuple of input names"):
        harness.ModelSpec(DepthDetector, inputs="xyz")
    assert harness.ModelSpec(DepthDetector, inputs=["xyz"]).inputs == ("xyz",)
    assert harness.ModelSpec(DepthDetector).inputs == ()
