"""The public benchmarks' layouts on synthetic copies of their trees: validate counts, kde_vs_test runs."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest
from public_datasets import WRITERS

from conftest import REPO, write_protocol

# layout -> (categories, the counts ``harness validate`` prints for the first category:
# train, held-out, test normal, defect, masks, defect types)
EXPECTED = {
    "visa": (["candle", "pcb1"], "candle 9 3 4 4 4 anomaly"),
    "mvtec_ad2": (["can", "vial"], "can 8 4 4 4 4 bad"),  # held-out: validation/good, nothing carved
    "mvtec_3d": (["bagel"], "bagel 8 4 4 4 4 crack, hole"),
    "btech": (["01", "02"], "01 9 3 4 4 4 ko"),
    "kolektor_sdd2": (["kolektor_sdd2"], "kolektor_sdd2 9 3 4 4 4 defect"),
    "mpdd": (["bracket_black"], "bracket_black 9 3 4 4 4 hole, scratches"),
    "real_iad": (["audiojack"], "audiojack 11 4 5 10 10 AK, HS"),
}


def layout_protocol(tmp_path, layout: str, model: str = "fixed_scores"):
    root = WRITERS[layout](tmp_path / layout)
    return write_protocol(
        tmp_path / f"{layout}.yaml",
        f"""
protocol: kde_vs_test
dataset:
  layout: {layout}
  root: {root}
  image_size: 32
models:
  - name: {model}
calibrations: [test_f1_oracle, kde, quantile]
seeds: [0]
analysis: {{bootstrap: 0, review: 0, map_panels: false}}
""",
    )


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_validate_prints_each_layouts_counts(cli, tmp_path, layout):
    code, stdout, stderr = cli("validate", str(layout_protocol(tmp_path, layout)))
    categories, line = EXPECTED[layout]
    assert code == 0, stderr
    assert f"({', '.join(categories)})" in stdout
    assert line in {" ".join(row.split()) for row in stdout.splitlines()}


def readme_line(layout: str) -> list[str]:
    """The README's ``harness run`` line for ``layout``, as arguments."""
    text = (REPO / "README.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("harness run") and f"layout={layout} " in line]
    assert len(lines) == 1, f"README needs one run line for {layout}"
    return shlex.split(lines[0])[1:]


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_kde_vs_test_runs_on_each_layout_from_its_readme_line(cli, tmp_path, layout, monkeypatch):
    monkeypatch.chdir(REPO)
    root = WRITERS[layout](tmp_path / layout)
    args = [f"dataset.root={root}" if a.startswith("dataset.root=") else a for a in readme_line(layout)]
    out = tmp_path / "out"
    fast = ["--set", "dataset.image_size=32", "--set", "analysis={bootstrap: 0, review: 0, map_panels: false}"]
    code, stdout, stderr = cli(*args, *fast, "--out", str(out))
    assert code == 0, stdout + stderr
    rows = pd.read_csv(out / "results.csv", dtype={"category": str})
    categories, _ = EXPECTED[layout]
    assert sorted(set(rows["category"])) == categories and set(rows["model"]) == {"mean_colour"}
    assert (rows["status"] == "ok").all() and rows["auroc"].notna().all() and rows["pixel_auroc"].notna().all()
    assert {"test_f1_oracle", "kde"} <= set(rows["calibration"])


def test_dataset_validation_normals_are_the_holdout_not_carved_from_train(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(layout_protocol(tmp_path, "mvtec_ad2")), "--out", str(out))[0] == 0
    run = json.loads((out / "run.json").read_text())
    job = run["jobs"][0]
    scores = pd.read_csv(out / "scores" / f"{job['key']}.csv")
    held = scores.loc[scores["split"] == "holdout", "path"]
    assert len(held) == 4 and held.str.contains("/validation/good/").all()
    assert job["n_fit"] == 8 and job["n_holdout"] == 4  # every train/good image is fitted on


def test_real_iad_views_keep_their_object(tmp_path):
    from harness_datasets.layouts import RealIADLayout, real_iad_object

    category = RealIADLayout(WRITERS["real_iad"](tmp_path / "riad")).load("audiojack")
    objects = {real_iad_object(r.path) for r in category.split("test")}
    assert objects == {"S0004", "S0005", "S0006"}
    per_view = pd.Series([real_iad_object(r.path) for r in category.records]).value_counts()
    assert (per_view == 5).all()  # five camera views per object


def test_real_iad_results_aggregate_per_object(cli, tmp_path):
    from harness_datasets.layouts import per_object

    out = tmp_path / "out"
    assert cli("run", str(layout_protocol(tmp_path, "real_iad")), "--out", str(out))[0] == 0
    key = json.loads((out / "run.json").read_text())["jobs"][0]["key"]
    views = pd.read_csv(out / "scores" / f"{key}.csv")
    objects = per_object(views[views["split"] == "test"])
    assert list(objects["object"]) == ["S0004", "S0005", "S0006"] and (objects["views"] == 5).all()
    assert list(objects["label"]) == [0, 1, 1]
    test = views[views["split"] == "test"]
    assert objects["score"].iloc[1] == test.loc[test["path"].str.contains("S0005"), "score"].max()


def test_kolektor_defect_is_a_mask_with_a_defect_pixel(tmp_path):
    from harness_datasets.layouts import KolektorSDD2Layout

    root = WRITERS["kolektor_sdd2"](tmp_path / "ksdd2")
    dropped = KolektorSDD2Layout(root).load("kolektor_sdd2")
    kept = KolektorSDD2Layout(root, train_defects="test").load("kolektor_sdd2")
    assert not any(r.label for r in dropped.split("train"))
    assert len(kept.split("test")) == len(dropped.split("test")) + 2
    assert all(r.mask_paths for r in dropped.records if r.label)


def test_missing_split_file_is_one_clear_line(cli, tmp_path):
    protocol = layout_protocol(tmp_path, "visa")
    (tmp_path / "visa" / "split_csv" / "1cls.csv").unlink()
    code, _, stderr = cli("validate", str(protocol))
    assert code == 2 and "split_csv/1cls.csv not found" in stderr and "Traceback" not in stderr


def test_audit_finds_duplicates_conflicts_masks_and_unreadable_files(cli, tmp_path):
    import shutil

    import numpy as np
    from PIL import Image

    protocol = layout_protocol(tmp_path, "mpdd")
    base = tmp_path / "mpdd" / "bracket_black"
    shutil.copy(base / "train/good/000.png", base / "test/good/100.png")  # a training image in the test set
    shutil.copy(base / "test/hole/000.png", base / "test/scratches/100.png")  # one image, two defect types
    shutil.copy(base / "ground_truth/hole/000_mask.png", base / "ground_truth/scratches/100_mask.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(base / "ground_truth/hole/001_mask.png")  # empty mask
    (base / "train/good/001.png").write_bytes(b"not a png")
    report = tmp_path / "audit.csv"
    code, stdout, stderr = cli("validate", str(protocol), "--audit", str(report))
    assert code == 2 and "cannot read image" in stderr  # validation still stops at the unreadable file
    findings = pd.read_csv(report)
    kinds = dict(zip(findings["kind"], findings["path"], strict=False))
    assert kinds["near_duplicate"].endswith("test/good/100.png")
    assert kinds["conflicting_labels"].endswith("scratches/100.png")
    assert kinds["empty_mask"].endswith("hole/001.png")
    assert kinds["unreadable"].endswith("train/good/001.png")
    assert "mask_on_good" not in kinds
    assert f"audit: {len(findings)} finding(s)" in stdout


def test_audit_of_a_clean_dataset_finds_nothing(cli, tmp_path):
    code, stdout, _ = cli("validate", str(layout_protocol(tmp_path, "btech")), "--audit")
    assert code == 0 and "audit: 0 finding(s)" in stdout


def test_seg_f1_beside_image_results_with_a_held_out_pixel_threshold(cli, tmp_path):
    from harness_pixel.segmentation import job_segmentation

    from harness.analyses.base import JobData
    from harness.store import ScoreCache

    out = tmp_path / "out"
    assert cli("run", str(layout_protocol(tmp_path, "mvtec_3d")), "--out", str(out))[0] == 0
    rows = pd.read_csv(out / "results.csv")
    assert rows["seg_f1"].between(0, 1).all() and (rows["seg_f1_oracle"] >= rows["seg_f1"]).all()
    table = pd.read_csv(out / "figures" / "recall_by_type_and_size.csv")
    assert set(table.loc[table["group"] == "type", "value"]) == {"crack", "hole"}
    assert set(table.loc[table["group"] == "size", "value"]) <= {"small", "medium", "large"}
    assert (table["calibration"] == "kde").all()
    # the deployable pixel threshold never moves with the test masks; the oracle does
    run = json.loads((out / "run.json").read_text())
    cache, key = ScoreCache(run["cache"]), run["jobs"][0]["key"]
    scores = cache.scores(key)
    masks = np.stack([np.zeros((32, 32), bool)] * int((scores["split"] == "test").sum()))
    masks[:, :4, :4] = True
    jobs = [
        JobData(
            "m",
            "c",
            0,
            key,
            {},
            scores,
            lambda: cache.maps(key),
            lambda m=m: m,
            {},
            lambda: cache.split_maps(key, "holdout"),
        )
        for m in (masks, ~masks)
    ]
    first, second = (job_segmentation(j) for j in jobs)
    assert first["seg_threshold"] == second["seg_threshold"] and np.isfinite(first["seg_threshold"])
    assert first["seg_threshold_oracle"] != second["seg_threshold_oracle"]


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_a_root_without_the_layouts_tree_is_one_clear_line(cli, tmp_path, layout):
    protocol = layout_protocol(tmp_path, layout)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = cli("validate", str(protocol), "--set", f"dataset.root={empty}")
    assert code == 2 and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert str(empty) in stderr


def test_layout_options_are_typed_and_checked_before_anything_runs(cli, tmp_path):
    protocol = layout_protocol(tmp_path, "kolektor_sdd2")
    code, _, stderr = cli("validate", str(protocol), "--set", "dataset.options={train_defects: keep}")
    assert code == 2 and "train_defects" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("validate", str(protocol), "--set", "dataset.options={private: true}")
    assert code == 2 and "private" in stderr
