"""Attacks and faults on the data path, each through the whole ``harness run``.

Leakage: cheating detectors (tests/plugins/cheats.py) read labels from paths, folders, links,
file sizes, times, embedded metadata or the order of the samples. The "twins" dataset makes
chance exact: every defective test image has the same pixels as one defect-free test image
(only its file differs: name, folder, size, metadata, times, link target, write order), so any
score that depends on the pixels alone gives image AUROC exactly 0.5, while each cheat reads
the labels perfectly from the dataset's own files in folder order (checked below, so the
cheats are real). Through ``harness run`` each must land at chance.

Data: images in every mode read as the same pixels; bad files, masks and roots are one line
(exit 2, no traceback) found before fitting, and earlier results and foreign files survive.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin
from sklearn.metrics import roc_auc_score

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "plugins"))
import cheats  # noqa: E402

N_TRAIN, N_TEST, SIZE = 10, 30, 16


def _random_image(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def make_twins(root: Path, links: bool = False) -> Path:
    """``root/widget`` in MVTec's tree; defects are pixel twins of the test normals, with leaky files."""
    rng = np.random.default_rng(0)
    base = root / "widget"
    for folder in ("train/good", "test/good", "test/crack", "ground_truth/crack"):
        (base / folder).mkdir(parents=True)
    store = root.parent / f"{root.name}-store"  # link targets, named by label
    if links:
        store.mkdir()
    for i in range(N_TRAIN):
        Image.fromarray(_random_image(rng)).save(base / "train" / "good" / f"{i:03d}.png")
    twins = [_random_image(rng) for _ in range(N_TEST)]
    for label, folder in ((0, "good"), (1, "crack")):
        if label:
            time.sleep(0.05)  # defects written later: later times, later inodes
        for i, pixels in enumerate(twins):
            name = f"{i + label * N_TEST:03d}.png"
            target = base / "test" / folder / name
            info = PngImagePlugin.PngInfo()
            info.add_text("Comment", f"{folder} sample" if label else "sample")
            if links:
                target.symlink_to(store / f"{folder}_{name}")
                target = store / f"{folder}_{name}"
            Image.fromarray(pixels).save(target, pnginfo=info, compress_level=9 if label else 0)
            if label:
                os.utime(target, (time.time() + 1000, time.time() + 1000))
                mask = np.zeros((SIZE, SIZE), np.uint8)
                mask[4:8, 4:8] = 255
                Image.fromarray(mask).save(base / "ground_truth" / "crack" / f"{Path(name).stem}_mask.png")
    return root


def _protocol(tmp_path: Path, root: Path, models: list[str], layout: str = "mvtec") -> Path:
    path = tmp_path / "attack.yaml"
    names = ", ".join(f"{{name: {m}}}" for m in models)
    path.write_text(
        f"protocol: kde_vs_test\n"
        f"dataset: {{layout: {layout}, root: '{root}', image_size: {SIZE}}}\n"
        f"models: [{names}]\n"
        "calibrations: [test_f1_oracle]\n"
        "seeds: [0]\n"
        "analysis: {bootstrap: 0, review: 0, map_panels: false}\n"
    )
    return path


def _register_cheats() -> None:
    from harness.plugins import get_plugins

    plugins = get_plugins()
    if "cheat_position" not in plugins.registry("models"):
        plugins.register(cheats, "test-cheats")


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    """``harness run`` in this process; (exit status, stderr)."""
    from harness.cli import main

    _register_cheats()
    code = main(["run", *args])
    return int(code), ""


def _aurocs(out: Path) -> dict[str, float]:
    """Image AUROC per model from the per-image scores the run wrote beside its results."""
    results = pd.read_csv(out / "results.csv")
    aurocs = {}
    for model, key in results[["model", "cache_key"]].drop_duplicates().itertuples(index=False):
        scores = pd.read_csv(out / "scores" / f"{key}.csv")
        test = scores[scores["split"] == "test"]
        aurocs[model] = roc_auc_score(test["label"], test["score"])
    return aurocs


@pytest.fixture(scope="module")
def attacked(tmp_path_factory) -> dict[str, dict[str, float]]:
    """One run of every cheat (and the honest reference) on the twins, as files and as symbolic links."""
    outcome = {}
    for variant in ("files", "links"):
        folder = tmp_path_factory.mktemp(f"twins-{variant}")
        root = make_twins(folder / "data", links=variant == "links")
        protocol = _protocol(folder, root, [*cheats.CHEATS, "honest"])
        code, _ = _run(folder, str(protocol), "--out", str(folder / "out"), "--cache", str(folder / "cache"))
        assert code == 0
        outcome[variant] = _aurocs(folder / "out")
    return outcome


CHEAT_NAMES = list(cheats.CHEATS)


def test_the_honest_detector_is_exactly_at_chance_on_twins(attacked):
    assert attacked["files"]["honest"] == pytest.approx(0.5) == attacked["links"]["honest"]


@pytest.mark.parametrize("variant", ["files", "links"])
@pytest.mark.parametrize("cheat", CHEAT_NAMES)
def test_a_cheat_scores_at_chance_through_harness_run(attacked, cheat, variant):
    """Pixel-determined cheats land exactly on 0.5 (twins share one file); order cheats within noise."""
    auroc = attacked[variant][cheat]
    if "position" in cheat:  # a seeded random order: 30 + 30 images, sd of a random AUROC about 0.075
        assert abs(auroc - 0.5) < 0.25, auroc
    else:
        assert auroc == pytest.approx(0.5, abs=1e-9), auroc


UNGUARDED = [c for c in CHEAT_NAMES if c not in ("cheat_position_in_batch", "cheat_inode", "cheat_readlink")]
"""Cheats that read the labels from the dataset's own files in folder order (inode order is up to the
file system; readlink and the batch position are checked on the links variant and the whole run)."""


@pytest.mark.parametrize("cheat", UNGUARDED)
def test_each_cheat_reads_labels_from_the_raw_files(tmp_path, cheat):
    """Without the guard (real paths, folder order) every cheat is (nearly) perfect: the attacks are real."""
    from harness.data.base import samples_for
    from harness.data.layouts import MVTecLayout

    root = make_twins(tmp_path / "data", links=cheat == "cheat_resolved_path")
    test = MVTecLayout(root).load("widget").split("test")
    detector = cheats.CHEATS[cheat]()
    detector.fit(samples_for(MVTecLayout(root).load("widget").split("train"), (SIZE, SIZE)))
    scores = detector.score(samples_for(test, (SIZE, SIZE))).image
    auroc = roc_auc_score([r.label for r in test], scores)
    assert abs(auroc - 0.5) >= 0.45, auroc


def test_readlink_reads_labels_from_raw_links(tmp_path):
    from harness.data.base import samples_for
    from harness.data.layouts import MVTecLayout

    test = MVTecLayout(make_twins(tmp_path / "data", links=True)).load("widget").split("test")
    scores = cheats.CHEATS["cheat_readlink"]().score(samples_for(test, (SIZE, SIZE))).image
    assert roc_auc_score([r.label for r in test], scores) == 1.0
