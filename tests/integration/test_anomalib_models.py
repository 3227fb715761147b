"""Real anomalib models through the harness (no mocks): embedded dataset and magnetic tile."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import MAGNETIC_TILE, SMALL_SYNTHETIC

pytestmark = pytest.mark.slow


def test_kde_vs_test_with_two_anomalib_models(cli, tmp_path):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(f"""
protocol: kde_vs_test
dataset: {{synthetic: {SMALL_SYNTHETIC}, categories: [weave, disc], image_size: 64}}
models:
  - {{name: padim, options: {{backbone: resnet18, pre_trained: false, n_features: 32}}}}
  - {{name: fastflow, options: {{backbone: resnet18, pre_trained: false, flow_steps: 2, max_epochs: 1}}}}
seeds: [0]
""")
    out = tmp_path / "out"
    code, stdout, stderr = cli("run", str(protocol), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["model"]) == {"padim", "fastflow"} and len(rows) == 2 * 2 * 3
    assert (rows["weights"] == "random-init").all()
    assert rows["auroc"].between(0, 1).all() and rows["pixel_auroc"].between(0, 1).all()
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["fitted"] == 4 and "anomalib" in run["versions"]
    # the same protocol again: everything from the cache, identical rows
    code, stdout, _ = cli("run", str(protocol), "--out", str(out))
    assert code == 0 and "0 fitted, 4 from cache" in stdout
    assert pd.read_csv(out / "results.csv").equals(rows)


@pytest.mark.skipif(not MAGNETIC_TILE.is_dir(), reason="../shared/data/magnetic_tile not present")
def test_magnetic_tile_subsample_through_the_folder_layout(cli, tmp_path):
    protocol = tmp_path / "mt.yaml"
    protocol.write_text(f"""
protocol: kde_vs_test
dataset:
  layout: folder
  root: {MAGNETIC_TILE}
  image_size: 64
  max_train_images: 40
  max_test_images_per_type: 6
  options:
    category: magnetic_tile
    normal_dir: MT_Free/Imgs
    abnormal_dirs: {{blowhole: MT_Blowhole/Imgs, break: MT_Break/Imgs, crack: MT_Crack/Imgs,
                    fray: MT_Fray/Imgs, uneven: MT_Uneven/Imgs}}
    image_pattern: "*.jpg"
    mask_pattern: "{{stem}}.png"
models:
  - {{name: padim, options: {{backbone: resnet18, pre_trained: false, n_features: 32}}}}
""")
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(protocol), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert set(rows["category"]) == {"magnetic_tile"}
    assert (rows["n_anomalous"] == 30).all() and (rows["n_test"] == 36).all()
    assert rows["aupro"].notna().all()
    assert Path(out / "report.html").stat().st_size > 10_000
