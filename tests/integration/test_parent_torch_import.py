"""Isolated jobs: the harness imports torch in its own process only once a job's process is seen to import it.

A model that never uses torch (here a detector whose map is the grey level) leaves the parent
without torch's ~0.5 GB; a torch model's later jobs still inherit one import instead of paying
their own. Whole processes, like a user's run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALL_SYNTHETIC

ROOT = Path(__file__).resolve().parents[2]
RUN_CLI = """
import json, sys
from harness.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": int(code), "modules": sorted(sys.modules)}))
"""
TORCH_PLUGIN = """
import numpy as np
import harness


class TorchGrey:
    def fit(self, samples):
        import torch  # noqa: F401  (what a torch model does when it is built or fitted)

    def score(self, samples):
        maps = np.stack([s.image.mean(axis=-1) / 255.0 for s in samples]).astype(np.float32)
        return harness.Scores(image=maps.reshape(len(samples), -1).mean(axis=1), maps=maps)


@harness.hookimpl
def harness_models():
    return {"torch_grey": TorchGrey}
"""


def _modules_after_cold_run(tmp_path: Path, model: str, plugin_dir: Path) -> set[str]:
    env = {
        **os.environ,
        "HARNESS_HOME": str(tmp_path / "home"),
        "HARNESS_CACHE_DIR": str(tmp_path / "cache"),
        "HARNESS_PLUGINS": "zero_cost_plugin,torch_grey_plugin",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(plugin_dir), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-c",
        RUN_CLI,
        "-q",
        "run",
        "protocols/kde_vs_test.yaml",
        "--out",
        str(tmp_path / "out"),
        "--set",
        f"models=[{{name: {model}}}]",
        "--set",
        f"dataset.synthetic={json.dumps(SMALL_SYNTHETIC)}",
        "--set",
        "dataset.categories=[weave, disc]",
        "--set",
        "dataset.image_size=32",
        "--set",
        "report.formats=[html]",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["code"] == 0, result.stderr[-3000:]
    return {name.split(".")[0] for name in data["modules"]}


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "torch_grey_plugin.py").write_text(TORCH_PLUGIN)
    return folder


def test_a_model_without_torch_leaves_the_harness_without_torch(tmp_path, plugin_dir):
    assert "torch" not in _modules_after_cold_run(tmp_path, "zero_cost", plugin_dir)


@pytest.mark.slow
def test_a_torch_model_has_the_harness_import_torch_for_its_later_jobs(tmp_path, plugin_dir):
    pytest.importorskip("torch")
    assert "torch" in _modules_after_cold_run(tmp_path, "torch_grey", plugin_dir)
