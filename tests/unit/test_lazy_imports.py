"""Start-up imports only what the command needs: a regression guard on sys.modules, not a timing test.

Each check runs in a fresh interpreter (the test process has imported everything already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

MODEL_LIBRARIES = ("torch", "anomalib", "ultralytics", "lightning", "timm")
ANALYSIS_LIBRARIES = ("matplotlib", "pandas")

LOAD_EVERY_PLUGIN = """
import json, sys
import harness.cli
from harness.listing import entry_rows
from harness.plugins import get_plugins
plugins = get_plugins()
for kind in ("models", "datasets", "calibrations", "protocols", "metrics"):
    entry_rows(plugins, kind) if kind != "protocols" else plugins.registry(kind)
print(json.dumps(sorted(sys.modules)))
"""

RUN_CLI = """
import json, sys
from harness.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": int(code), "modules": sorted(sys.modules)}))
"""


def _modules(code: str, *args: str) -> set[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    if isinstance(data, dict):
        assert data["code"] == 0, result.stderr[-2000:]
        data = data["modules"]
    return {name.split(".")[0] for name in data}


def test_loading_every_plugin_imports_no_model_library():
    loaded = _modules(LOAD_EVERY_PLUGIN)
    assert not loaded & set(MODEL_LIBRARIES)


def test_loading_every_plugin_imports_no_plotting_or_table_library():
    loaded = _modules(LOAD_EVERY_PLUGIN)
    assert not loaded & set(ANALYSIS_LIBRARIES)


def test_help_imports_no_heavy_library():
    loaded = _modules(RUN_CLI, "--help")  # plugin packages load for their commands (harness_commands), nothing else
    assert not loaded & {*MODEL_LIBRARIES, *ANALYSIS_LIBRARIES, "scipy", "sklearn", "harness_anomalib.detector"}


def test_validate_checks_anomalib_options_without_importing_anomalib():
    loaded = _modules(RUN_CLI, "validate", "kde_vs_test")  # padim and fastflow with options
    assert not loaded & set(MODEL_LIBRARIES)


def test_anomalib_option_names_read_from_source_without_import():
    pytest.importorskip("harness_anomalib")
    code = (
        "import json, sys\n"
        "from harness_anomalib.signatures import source_options\n"
        "names = source_options('padim')\n"
        "print(json.dumps({'code': 0, 'modules': sorted(sys.modules), 'names': sorted(names or [])}))\n"
    )
    loaded = _modules(code)
    assert "anomalib" not in loaded


def test_isolated_jobs_report_cached_jobs_without_a_process_or_torch(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from harness import isolation

    def fail(*args, **kwargs):
        raise AssertionError("a cached job must not fork a process or import torch")

    monkeypatch.setattr(isolation.ScoreCache, "has", lambda self, key, report=True: True)
    monkeypatch.setattr(isolation, "_import_torch", fail)
    runner = isolation.IsolatedJobs(workers=1)
    monkeypatch.setattr(runner, "_start", fail)
    jobs = [SimpleNamespace(key="a"), SimpleNamespace(key="b")]
    assert list(runner.run(jobs, str(tmp_path))) == [("a", "cached", None), ("b", "cached", None)]
