"""A rerun whose jobs are all cached builds no detector and imports no model library.

The README's main job (kde_vs_test, PaDiM) on a tiny embedded dataset, run twice as whole
processes; the second reports which modules it imported. Slow: the first run fits PaDiM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALL_SYNTHETIC

pytestmark = pytest.mark.slow

RUN_CLI = """
import json, sys
from harness.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": int(code), "modules": sorted(sys.modules)}))
"""


def _run(tmp_path: Path) -> tuple[set[str], str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "YOLO_OFFLINE": "1",
        "HARNESS_CACHE_DIR": str(tmp_path / "cache"),
        "HARNESS_HOME": str(tmp_path / "home"),
    }
    synthetic = json.dumps(SMALL_SYNTHETIC)
    command = [
        sys.executable,
        "-c",
        RUN_CLI,
        "-q",
        "run",
        "protocols/kde_vs_test.yaml",  # the README's main command, made tiny with --set
        "--out",
        str(tmp_path / "out"),
        "--set",
        "models=[{name: padim, options: {backbone: resnet18, pre_trained: false, n_features: 8}}]",
        "--set",
        f"dataset.synthetic={synthetic}",
        "--set",
        "dataset.categories=[weave]",
        "--set",
        "dataset.image_size=32",
        "--set",
        "report.formats=[html]",
    ]
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["code"] == 0, result.stderr[-3000:]
    log = (tmp_path / "out" / "run.log").read_text(encoding="utf-8")
    return set(data["modules"]), log


@pytest.fixture(scope="module")
def cached_rerun(tmp_path_factory) -> tuple[str, set[str], str]:
    pytest.importorskip("harness_anomalib")
    tmp_path = tmp_path_factory.mktemp("cached-run")
    _, first = _run(tmp_path)
    second, log = _run(tmp_path)
    return first, second, log


def test_cached_rerun_builds_no_detector(cached_rerun):
    first, second, log = cached_rerun
    assert "jobs: 1 fitted, 0 from cache, 0 failed" in first  # PaDiM fitted (in the job's process)
    assert "jobs: 0 fitted, 1 from cache, 0 failed" in log
    assert "harness_anomalib.detector" not in second
    assert not {"ultralytics", "timm"} & {name.split(".")[0] for name in second}


def test_cached_rerun_imports_no_torch_anomalib_or_ultralytics(cached_rerun):
    _, second, _ = cached_rerun
    assert not {"torch", "anomalib", "ultralytics"} & {name.split(".")[0] for name in second}
