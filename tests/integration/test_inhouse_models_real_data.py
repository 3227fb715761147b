"""The in-house plugins on real defects: magnetic tile through the folder layout, AUROC per defect type."""

import pandas as pd
import pytest

from conftest import MAGNETIC_TILE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MAGNETIC_TILE.is_dir(), reason="../shared/data/magnetic_tile not present"),
]

TYPES = ("blowhole", "break", "crack", "fray", "uneven")
DINOMALY = "{encoder: vit_small_patch14_reg4_dinov2, pretrained: false, iterations: 5, batch_size: 4}"
PUAD = "{pretrained: false, penalty: false, max_steps: 3}"


def test_dinomaly_and_puad_per_defect_type_on_magnetic_tile(cli, tmp_path):
    protocol = tmp_path / "mt.yaml"
    protocol.write_text(f"""
protocol: per_type
dataset:
  layout: folder
  root: {MAGNETIC_TILE}
  image_size: 56
  max_train_images: 30
  max_test_images_per_type: 5
  options:
    category: magnetic_tile
    normal_dir: MT_Free/Imgs
    abnormal_dirs: {{{", ".join(f"{t}: MT_{t.capitalize()}/Imgs" for t in TYPES)}}}
    image_pattern: "*.jpg"
    mask_pattern: "{{stem}}.png"
models:
  - {{name: dinomaly_plain, options: {DINOMALY}}}
  - {{name: dinomaly_recon, options: {DINOMALY}}}
  - {{name: puad, options: {PUAD}}}
analysis: {{group_by: type}}
""")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(protocol), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["model"]) == {"dinomaly_plain", "dinomaly_recon", "puad"}
    assert set(rows["group"]) == {"all", *TYPES}
    assert rows["auroc"].between(0, 1).all() and (rows["weights"] == "random-init").all()
    assert (rows.loc[rows["group"] == "all", "n_anomalous"] == 25).all()
    assert "AUROC (blowhole)" in (out / "report.html").read_text()
