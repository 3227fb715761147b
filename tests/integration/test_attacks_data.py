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
import shutil
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

pytestmark = pytest.mark.xdist_group("attacks_data")  # one process builds the runs of every cheat, once

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


@pytest.fixture(autouse=True)
def cheats_registered():
    """The cheats and the honest reference, registered in this process like any plugin."""
    _register_cheats()


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


# -- data: image modes, bad files, roots --------------------------------------------------------

GREY_PALETTE = [v for i in range(256) for v in (i, i, i)]


def _grey(v: np.ndarray) -> np.ndarray:
    return np.stack([v] * 3, axis=-1)


def _palette(v: np.ndarray, transparent: bool = False) -> Image.Image:
    image = Image.fromarray(v, "P")
    image.putpalette(GREY_PALETTE)
    if transparent:
        image.info["transparency"] = 0
    return image


MODES = {
    # name: (suffix, grey uint8 array -> image whose pixels read back as that grey in RGB)
    "rgb": (".png", lambda v: Image.fromarray(_grey(v))),
    "grey": (".png", lambda v: Image.fromarray(v, "L")),
    "16-bit grey": (".png", lambda v: Image.fromarray(v.astype(np.uint16) * 257)),
    "16-bit tiff": (".tif", lambda v: Image.fromarray(v.astype(np.uint16) * 257)),
    "32-bit int": (".tif", lambda v: Image.fromarray(v.astype(np.int32) * 257)),
    "float": (".tif", lambda v: Image.fromarray(v.astype(np.float32) / 255, "F")),
    "palette": (".png", _palette),
    "palette with transparency": (".png", lambda v: _palette(v, transparent=True)),
    "rgba": (".png", lambda v: Image.fromarray(np.dstack([_grey(v), (v // 2 + 7).astype(np.uint8)]), "RGBA")),
    "la": (".png", lambda v: Image.fromarray(np.dstack([v, 255 - v]), "LA")),
    "cmyk": (".tif", lambda v: Image.fromarray(_grey(v)).convert("CMYK")),
}


def _save(image: Image.Image, path: Path) -> None:
    if image.mode in ("P", "PA") and "transparency" in image.info:
        image.save(path, transparency=image.info["transparency"])
    else:
        image.save(path)


def make_visible(root: Path, mode: str = "rgb", n_train: int = 8, n_test: int = 4) -> Path:
    """``root/widget``: grey noise, defects with a bright square and a mask; images saved in ``mode``."""
    suffix, build = MODES[mode]
    rng = np.random.default_rng(1)
    base = root / "widget"
    for folder, count in (("train/good", n_train), ("test/good", n_test), ("test/crack", n_test)):
        (base / folder).mkdir(parents=True)
        for i in range(count):
            grey = rng.integers(90, 110, (SIZE, SIZE), dtype=np.uint8)
            if folder == "test/crack":
                grey[4:9, 4:9] = 250
                (base / "ground_truth" / "crack").mkdir(parents=True, exist_ok=True)
                mask = np.zeros((SIZE, SIZE), np.uint8)
                mask[4:9, 4:9] = 255
                Image.fromarray(mask).save(base / "ground_truth" / "crack" / f"{i:03d}_mask.png")
            _save(build(grey), base / folder / f"{i:03d}{suffix}")
    return root


def _data_protocol(tmp_path: Path, root: Path | str) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(
        f"protocol: kde_vs_test\ndataset: {{layout: mvtec, root: '{root}', image_size: {SIZE}}}\n"
        "models: [{name: honest}]\ncalibrations: [test_f1_oracle]\nseeds: [0]\n"
        "analysis: {bootstrap: 0, review: 0, map_panels: false}\n"
    )
    return path


def _test_scores(out: Path) -> pd.DataFrame:
    """The run's per-image test scores by file name inside the category (mode-independent)."""
    (scores_file,) = (out / "scores").glob("*.csv")
    scores = pd.read_csv(scores_file)
    scores = scores[scores["split"] == "test"].copy()
    scores["image"] = [f"{Path(p).parent.name}/{Path(p).stem}" for p in scores["path"]]
    return scores.set_index("image").sort_index()[["score", "label"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """The 8-bit RGB dataset's scores and a results folder of an earlier run to plant in --out."""
    from harness.cli import main

    _register_cheats()
    folder = tmp_path_factory.mktemp("reference")
    root = make_visible(folder / "data")
    code = main(["run", str(_data_protocol(folder, root)), "--out", str(folder / "out"), "--cache", str(folder / "c")])
    assert code == 0
    return _test_scores(folder / "out"), folder / "out"


@pytest.mark.parametrize("mode", [m for m in MODES if m != "rgb"])
def test_an_image_mode_reads_as_the_same_pixels_through_harness_run(cli, tmp_path, reference, mode):
    """16-bit is scaled (not clipped to white), palette/CMYK/alpha/grey converted: the scores are the 8-bit ones."""
    root = make_visible(tmp_path / "data", mode)
    code, _, stderr = cli("run", str(_data_protocol(tmp_path, root)), "--out", str(tmp_path / "out"))
    assert code == 0, stderr
    scores = _test_scores(tmp_path / "out")
    expected = reference[0]
    assert list(scores.index) == list(expected.index)
    np.testing.assert_allclose(scores["score"], expected["score"], rtol=1e-6)
    assert roc_auc_score(scores["label"], scores["score"]) == 1.0


def _huge_png(path: Path, width: int, height: int) -> None:
    """A valid PNG header claiming ``width`` x ``height`` pixels, with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


def _truncate(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:120])


def _resize_mask(path: Path) -> None:
    Image.fromarray(np.full((SIZE * 2, SIZE), 255, np.uint8)).save(path)


BROKEN = {
    # name: (what to do to the dataset under root/widget, text the one line must hold)
    "mask of another size": (lambda b: _resize_mask(b / "ground_truth/crack/001_mask.png"), "001_mask.png is 16x32"),
    "defect image without a mask": (lambda b: (b / "ground_truth/crack/002_mask.png").unlink(), "002.png has no mask"),
    "empty image file": (lambda b: (b / "test/good/000.png").write_bytes(b""), "test/good/000.png"),
    "corrupt image": (lambda b: (b / "train/good/003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "003.png"),
    "truncated image": (lambda b: _truncate(b / "test/crack/003.png"), "image file is truncated"),
    "corrupt mask": (lambda b: (b / "ground_truth/crack/000_mask.png").write_bytes(b"nope"), "cannot read mask"),
    "decompression bomb": (lambda b: _huge_png(b / "test/good/001.png", 20000, 20000), "decompression-bomb"),
    "oversized image (Pillow's warning)": (lambda b: _huge_png(b / "train/good/000.png", 10000, 9000), "90,000,000"),
    "broken symbolic link": (
        lambda b: (b / "test/good/009.png").symlink_to(b / "gone.png"),
        "009.png is a symbolic link",
    ),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_bad_file_is_one_line_before_fitting_and_keeps_earlier_results(cli, tmp_path, reference, case):
    change, expected = BROKEN[case]
    root = make_visible(tmp_path / "data")
    change(root / "widget")
    out = tmp_path / "out"
    shutil.copytree(reference[1], out)
    (out / "notes.txt").write_text("a file the harness did not write")
    (root / "README.txt").write_text("the dataset's own notes")
    before, data_before = _snapshot(out), _snapshot(root)
    cheats.Honest.fits = 0
    # --force: the foreign notes.txt must not stop the run first (it is kept all the same)
    code, stdout, stderr = cli("run", str(_data_protocol(tmp_path, root)), "--out", str(out), "--force")
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stdout + stderr
    assert _snapshot(out) == before and _snapshot(root) == data_before
    if case != "truncated image":  # header checks run while planning; a damaged body is found at hand-over
        assert cheats.Honest.fits == 0


def _link(link: Path, target: Path) -> Path:
    link.symlink_to(target, target_is_directory=True)
    return link


ROOTS = {
    # name: (dataset under tmp_path/"real" -> the root string to give, working directory)
    "relative root": (lambda t, real: "real/data", "tmp"),
    "relative root with ..": (lambda t, real: "../tmp/real/data", "elsewhere"),
    "symlinked root": (lambda t, real: str(_link(t / "link", real / "data")), None),
    "root below a symlinked folder": (lambda t, real: str(_link(t / "parent-link", real) / "data"), None),
    "symlinked category folder": (
        lambda t, real: str(_relocate_category(t, real / "data")),
        None,
    ),
}


def _relocate_category(tmp_path: Path, data: Path) -> Path:
    moved = tmp_path / "elsewhere-widget"
    shutil.move(data / "widget", moved)
    (data / "widget").symlink_to(moved, target_is_directory=True)
    return data


@pytest.mark.parametrize("case", list(ROOTS))
def test_a_root_given_relatively_or_through_links_gives_the_same_scores(cli, tmp_path, monkeypatch, reference, case):
    make_root, cwd = ROOTS[case]
    work = tmp_path / "tmp"
    work.mkdir()
    (tmp_path / "elsewhere").mkdir()
    real = work / "real"
    make_visible(real / "data")
    root = make_root(work, real)
    if cwd:
        monkeypatch.chdir(tmp_path / cwd)
    code, _, stderr = cli("run", str(_data_protocol(work, root)), "--out", str(tmp_path / "out"))
    assert code == 0, stderr
    scores = _test_scores(tmp_path / "out")
    np.testing.assert_allclose(scores["score"], reference[0]["score"], rtol=1e-6)


@pytest.mark.slow
def test_cheats_stay_at_chance_in_worker_processes(tmp_path):
    """The console script with a process pool: workers load the cheats by HARNESS_PLUGINS and hand over alike."""
    import subprocess

    root = make_twins(tmp_path / "data")
    protocol = _protocol(tmp_path, root, ["cheat_path_substring_good", "cheat_file_size", "cheat_position", "honest"])
    env = {
        **os.environ,
        "HARNESS_PLUGINS": "cheats",
        "PYTHONPATH": os.pathsep.join([str(TESTS / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "harness.cli", "run", str(protocol), "--out", str(tmp_path / "out")]
    command += ["--cache", str(tmp_path / "cache"), "--set", "executor.workers=2"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    aurocs = _aurocs(tmp_path / "out")
    assert aurocs["cheat_path_substring_good"] == pytest.approx(0.5) == aurocs["cheat_file_size"]
    assert abs(aurocs["cheat_position"] - 0.5) < 0.25 and aurocs["honest"] == pytest.approx(0.5)


def test_no_room_for_the_hand_over_is_one_line(cli, tmp_path, monkeypatch, reference):
    """A temporary folder that cannot be written is named with the fix (TMPDIR), exit 2, earlier results kept."""
    import tempfile

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the temporary folder should be")
    out = tmp_path / "out"
    shutil.copytree(reference[1], out)
    before = _snapshot(out)
    root = make_visible(tmp_path / "data")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    code, stdout, stderr = cli("run", str(_data_protocol(tmp_path, root)), "--out", str(out))
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "TMPDIR" in lines[0] and str(blocker) in lines[0], stderr
    assert "Traceback" not in stdout + stderr and _snapshot(out) == before
