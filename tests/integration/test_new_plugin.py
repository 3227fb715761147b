"""`harness new-plugin` writes a package that installs, shows up, passes its own tests and runs a protocol."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.testing import CHECKS

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def harness_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_new_plugin_package_works_end_to_end(tmp_path):
    result = harness_cli("new-plugin", "kit_probe", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    package = tmp_path / "harness-kit-probe"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(package)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        listed = {p["name"]: p for p in json.loads(harness_cli("plugins", "--json").stdout)}
        assert listed["kit_probe"]["registers"] == {"models": ["kit_probe"]} and listed["kit_probe"]["error"] is None
        own_tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=package,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert own_tests.returncode == 0 and f"{len(CHECKS)} passed" in own_tests.stdout, own_tests.stdout[-2000:]
        run = harness_cli(
            "run",
            str(REPO / "protocols" / "kde_vs_test.yaml"),
            "--out",
            str(tmp_path / "out"),
            "--cache",
            str(tmp_path / "cache"),
            "--set",
            "models=[{name: kit_probe}]",
            "--set",
            "dataset.categories=[weave]",
            "--set",
            "dataset.image_size=64",
        )
        assert run.returncode == 0, run.stderr
        assert (tmp_path / "out" / "report.html").is_file()
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "harness-kit-probe"], capture_output=True, timeout=300)


def test_new_plugin_refuses_bad_names_and_existing_folders(cli, tmp_path):
    code, _, stderr = cli("new-plugin", "Bad-Name", "--dir", str(tmp_path))
    assert code == 2 and "must be lower case" in stderr
    (tmp_path / "harness-taken").mkdir()
    code, _, stderr = cli("new-plugin", "taken", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in stderr
