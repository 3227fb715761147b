"""MVTec LOCO layout (mask folders, validation normals) and the per_type kind (logical vs structural AUROC)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_datasets.layouts import LocoLayout
from PIL import Image


def _image(path, value, rng, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(rng.normal(value, 4, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def loco_root(tmp_path):
    """A tiny LOCO tree: structural defects are bright (easy), logical ones look normal (hard)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "loco"
    base = root / "screw_bag"
    for i in range(8):
        _image(base / "train" / "good" / f"{i:03d}.png", 100, rng)
    for i in range(3):
        _image(base / "validation" / "good" / f"{i:03d}.png", 100, rng)
        _image(base / "test" / "good" / f"{i:03d}.png", 100, rng)
    for kind, value in (("structural_anomalies", 200), ("logical_anomalies", 101)):
        for i in range(3):
            _image(base / "test" / kind / f"{i:03d}.png", value, rng)
            for part in range(2):  # LOCO: one folder of masks per image
                mask = np.zeros((32, 32), np.uint8)
                mask[part * 8 : part * 8 + 4, 4:8] = 255
                (base / "ground_truth" / kind / f"{i:03d}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(base / "ground_truth" / kind / f"{i:03d}" / f"{part:03d}.png")
    return root


def test_loco_layout_unites_mask_folders_and_keeps_validation_normals(loco_root):
    category = LocoLayout(loco_root).load("screw_bag")
    assert len(category.split("train")) == 8 + 3
    anomalous = [r for r in category.split("test") if r.label]
    assert len(anomalous) == 6 and all(len(r.mask_paths) == 2 for r in anomalous)
    assert category.families == {"logical_anomalies": "logical", "structural_anomalies": "structural"}


def test_loco_is_the_datasets_plugins_and_without_a_root_runs_on_the_embedded_dataset(cli):
    from harness.protocol import load_protocol
    from harness.runs import get_plugins

    assert get_plugins().owner("datasets", "loco").name == "datasets"
    assert get_plugins().registry("datasets")["loco"] is LocoLayout
    shipped = Path(__file__).resolve().parents[2] / "protocols" / "puad_loco.yaml"
    protocol = load_protocol(shipped, ["dataset.image_size=64", "dataset.categories=[disc]"])
    assert protocol.dataset.layout == "loco" and protocol.dataset.effective_layout == "synthetic"
    code, _, stderr = cli(
        "validate", "puad_loco", "--set", "dataset.image_size=64", "--set", "dataset.categories=[disc]"
    )
    assert code == 0, stderr


def test_per_type_separates_logical_from_structural(cli, tmp_path, loco_root):
    protocol = tmp_path / "loco.yaml"
    protocol.write_text(f"""
protocol: per_type
dataset: {{layout: loco, root: {loco_root}, image_size: 32}}
models: [{{name: fixed_scores}}]
calibrations: [kde]
""")
    code, _, stderr = cli("run", str(protocol), "--out", str(tmp_path / "out"))
    assert code == 0, stderr
    rows = pd.read_csv(tmp_path / "out" / "results.csv").set_index("group")
    assert list(rows.index) == ["all", "logical", "structural"]
    assert rows.loc["structural", "auroc"] == 1.0 and rows.loc["logical", "auroc"] < 1.0
    assert rows.loc["all", "n_anomalous"] == 6 and rows.loc["logical", "n_normal"] == 3
    report = (tmp_path / "out" / "report.html").read_text()
    assert "AUROC (logical)" in report and "AUROC (structural)" in report
    tables = "".join(p.read_text() for p in sorted((tmp_path / "out" / "tables").glob("*.tex")))
    assert "AUROC (logical)" in (tmp_path / "out" / "report.tex").read_text() + tables  # tables are \input
    per_category = pd.read_csv(tmp_path / "out" / "figures" / "auroc_per_category.csv")
    assert list(per_category.columns) == ["model", "screw_bag", "mean"]


def test_unknown_group_by_stops_before_fitting(cli, tmp_path, loco_root):
    protocol = tmp_path / "loco.yaml"
    protocol.write_text(f"""
protocol: per_type
dataset: {{layout: loco, root: {loco_root}, image_size: 32}}
models: [{{name: fixed_scores}}]
analysis: {{group_by: colour}}
""")
    code, _, stderr = cli("validate", str(protocol))
    assert code == 2 and "analysis.group_by" in stderr and "Traceback" not in stderr
