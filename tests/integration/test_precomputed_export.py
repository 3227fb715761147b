"""Models run elsewhere: ``harness export`` then the ``precomputed`` model gives identical metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from public_datasets import WRITERS

from conftest import copy_run, run_once, write_protocol

METRICS = ["calibration", "category", "threshold", "accuracy", "precision", "recall", "f1", "auroc", "ap"]
PIXEL = ["pixel_auroc", "aupro", "pl", "seg_f1", "seg_f1_oracle"]
PRIVATE = "{private: true}"  # MVTec AD 2's unlabelled private test sets are scored and exported too


def protocol(tmp_path, name, layout, root, model_yaml, options="{}"):
    return write_protocol(
        tmp_path / f"{name}.yaml",
        f"""
protocol: kde_vs_test
dataset:
  layout: {layout}
  root: {root}
  options: {options}
  image_size: 32
models:
{model_yaml}
calibrations: [test_f1_oracle, kde, quantile]
seeds: [0]
analysis: {{bootstrap: 0, review: 0, map_panels: false}}
""",
    )


def precomputed_yaml(root, exported, scores=True, maps=True, extra=""):
    options = [f"root: {root}"]
    options += [f"scores: {exported / 'scores.csv'}"] if scores else []
    options += [f"maps: {exported / 'anomaly_images'}"] if maps else []
    options += [extra] if extra else []
    return "  - name: precomputed\n    options: {" + ", ".join(options) + "}"


@pytest.fixture(scope="module")
def exported_once(tmp_path_factory):
    """A run on an MVTec AD 2 tree and its export, made once per module (and test process)."""
    folder = tmp_path_factory.mktemp("exported")
    root = WRITERS["mvtec_ad2"](folder / "ad2")
    spec = protocol(folder, "a", "mvtec_ad2", root, "  - name: fixed_scores", PRIVATE)
    assert run_once("run", str(spec), "--out", str(folder / "first"), "--cache", str(folder / "cache")) == 0
    assert run_once("export", str(folder / "first"), "--to", str(folder / "export")) == 0
    return root, folder


@pytest.fixture
def exported_run(exported_once, tmp_path):
    """(dataset root, the run's folder, its exported scores and maps): the test's own copies of both folders."""
    root, folder = exported_once
    first = copy_run(folder / "first", tmp_path / "first")
    copy_run(folder / "export", tmp_path / "export")
    return root, first, tmp_path / "export" / "fixed_scores" / "seed0"


def test_export_writes_scores_and_maps_in_the_dataset_layout(exported_run):
    root, _, exported = exported_run
    table = pd.read_csv(exported / "scores.csv")
    assert {"path", "score"} <= set(table.columns)
    assert "can/validation/good/000_regular.png" in set(table["path"])  # the held-out normals too
    assert (root / table["path"]).map(lambda p: p.is_file()).all()
    maps = sorted((exported / "anomaly_images").rglob("*.tiff"))
    assert len(maps) == len(table)
    assert (exported / "anomaly_images" / "can" / "test_public" / "bad" / "000_regular.tiff").is_file()
    # MVTec AD 2's submission layout: the private test set's float maps and binary maps at the held-out threshold
    assert set(table.loc[table["split"] == "unlabelled", "path"]) == {
        f"{c}/test_private/{i:03d}_regular.png" for c in ("can", "vial") for i in range(2)
    }
    assert (exported / "anomaly_images" / "can" / "test_private" / "001_regular.tiff").is_file()
    binary = np.asarray(
        Image.open(exported / "anomaly_images_thresholded" / "can" / "test_private" / "001_regular.png")
    )
    assert set(np.unique(binary)) <= {0, 255}


def test_unlabelled_private_images_never_enter_a_metric(cli, tmp_path, exported_run):
    root, first, _ = exported_run
    plain = tmp_path / "plain"
    spec = protocol(tmp_path, "p", "mvtec_ad2", root, "  - name: fixed_scores")
    assert cli("run", str(spec), "--out", str(plain))[0] == 0
    a, b = pd.read_csv(first / "results.csv"), pd.read_csv(plain / "results.csv")
    pd.testing.assert_frame_equal(a[METRICS + PIXEL], b[METRICS + PIXEL], check_exact=True)
    assert (a["n_test"] == 8).all()


def test_export_then_precomputed_gives_identical_metrics(cli, tmp_path, exported_run):
    root, first, exported = exported_run
    second = tmp_path / "second"
    spec = protocol(tmp_path, "b", "mvtec_ad2", root, precomputed_yaml(root, exported), PRIVATE)
    code, out, err = cli("run", str(spec), "--out", str(second))
    assert code == 0, out + err
    a, b = pd.read_csv(first / "results.csv"), pd.read_csv(second / "results.csv")
    assert len(a) == len(b) == 6
    pd.testing.assert_frame_equal(a[METRICS + PIXEL], b[METRICS + PIXEL], check_exact=True)
    assert (b["model"] == "precomputed").all()


def test_maps_only_and_png_maps_with_a_declared_range(cli, tmp_path, exported_run):
    import tifffile

    root, first, exported = exported_run
    png = tmp_path / "png_maps"
    top = max(float(tifffile.imread(p).max()) for p in (exported / "anomaly_images").rglob("*.tiff"))
    for path in (exported / "anomaly_images").rglob("*.tiff"):
        target = png / path.relative_to(exported / "anomaly_images").with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        scaled = np.round(tifffile.imread(path) / top * 65535).astype(np.uint16)
        Image.fromarray(scaled).save(target)
    model = "  - name: precomputed\n    options: {root: " + f"{root}, maps: {png}, map_range: [0, {top}]" + "}"
    code, out, err = cli("run", str(protocol(tmp_path, "c", "mvtec_ad2", root, model)), "--out", str(tmp_path / "c"))
    assert code == 0, out + err
    a, c = pd.read_csv(first / "results.csv"), pd.read_csv(tmp_path / "c" / "results.csv")
    assert np.allclose(a["pixel_auroc"], c["pixel_auroc"], atol=1e-3)  # 16-bit quantisation only


def test_missing_held_out_scores_are_named_in_one_line(cli, tmp_path, exported_run):
    root, _, exported = exported_run
    table = pd.read_csv(exported / "scores.csv")
    table[~table["path"].str.contains("validation")].to_csv(tmp_path / "partial.csv", index=False)
    model = "  - name: precomputed\n    options: {root: " + f"{root}, scores: {tmp_path / 'partial.csv'}" + "}"
    code, _, err = cli("run", str(protocol(tmp_path, "d", "mvtec_ad2", root, model)), "--out", str(tmp_path / "d"))
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "validation/good/000_regular.png" in err and "held-out normals" in err


def test_precomputed_never_reads_the_sample_path(tmp_path, exported_run):
    from harness_datasets.precomputed import Precomputed

    from harness.data.base import load_image
    from harness.types import Sample

    root, _, exported = exported_run
    model = Precomputed(root=root, scores=exported / "scores.csv").fit([])
    image = root / "can" / "test_public" / "bad" / "001_regular.png"
    opaque = Sample(tmp_path / "3f9c0a.png", lambda: load_image(image, (32, 32)))  # a name with no label
    expected = pd.read_csv(exported / "scores.csv").set_index("path").loc["can/test_public/bad/001_regular.png"]
    assert model.score([opaque]).image[0] == expected["score"]


def test_bad_precomputed_options_are_one_clear_line(cli, tmp_path):
    root = WRITERS["mpdd"](tmp_path / "mpdd")
    model = "  - name: precomputed\n    options: {root: " + f"{root}" + "}"
    code, _, err = cli("validate", str(protocol(tmp_path, "e", "mpdd", root, model)))
    assert code == 2 and "needs scores" in err and "Traceback" not in err


def test_new_scores_in_the_same_file_are_a_new_job_never_a_stale_cache_entry(cli, tmp_path, exported_run):
    root, _, exported = exported_run
    csv = tmp_path / "scores.csv"
    table = pd.read_csv(exported / "scores.csv")
    table.to_csv(csv, index=False)
    model = "  - name: precomputed\n    options: {root: " + f"{root}, scores: {csv}" + "}"
    spec = protocol(tmp_path, "s", "mvtec_ad2", root, model, PRIVATE)
    assert cli("run", str(spec), "--out", str(tmp_path / "s1"))[0] == 0
    table.assign(score=-table["score"]).to_csv(csv, index=False)  # another model's scores, same path
    assert cli("run", str(spec), "--out", str(tmp_path / "s2"))[0] == 0
    first, second = (pd.read_csv(tmp_path / name / "results.csv") for name in ("s1", "s2"))
    assert (first["auroc"] + second["auroc"]).round(9).eq(1).all()  # reversed scores: AUROC 1 - a


def test_export_refuses_a_folder_it_did_not_write_and_a_folder_without_a_run(cli, tmp_path, exported_run):
    _, first, _ = exported_run
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, _, err = cli("export", str(first), "--to", str(foreign))
    assert code == 2 and "not written by harness export" in err and (foreign / "notes.txt").read_text() == "mine"
    code, _, err = cli("export", str(tmp_path / "nothing"), "--to", str(tmp_path / "x"))
    assert code == 2 and "no run.json" in err and "Traceback" not in err
    assert cli("export", str(first), "--to", str(tmp_path / "export"))[0] == 0  # its own folder: written again


def test_export_of_a_run_whose_protocol_names_a_relative_root(cli, tmp_path):
    WRITERS["btech"](tmp_path / "data" / "btech")
    spec = write_protocol(
        tmp_path / "rel.yaml",
        "protocol: kde_vs_test\ndataset: {layout: btech, root: data/btech, image_size: 32, categories: ['01']}\n"
        "models: [{name: fixed_scores}]\ncalibrations: [kde]\nseeds: [0]\n"
        "analysis: {bootstrap: 0, review: 0, map_panels: false}\n",
    )
    assert cli("run", str(spec), "--out", str(tmp_path / "out"))[0] == 0
    code, out, err = cli("export", str(tmp_path / "out"), "--to", str(tmp_path / "exp"))
    assert code == 0, out + err
    table = pd.read_csv(tmp_path / "exp" / "fixed_scores" / "seed0" / "scores.csv", dtype={"path": str})
    assert table["path"].str.startswith("01/").all()
