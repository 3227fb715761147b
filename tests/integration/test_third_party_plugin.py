"""A third-party plugin package, pip-installed, is found through its entry point."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow


def test_installed_plugin_package_is_found(tmp_path):
    package = tmp_path / "harness-thirdparty"
    package.mkdir()
    (package / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "harness-thirdparty-test"
        version = "1.2.3"
        [project.entry-points."harness.plugins"]
        thirdparty = "harness_thirdparty_test"
        [tool.setuptools]
        py-modules = ["harness_thirdparty_test"]
        """)
    )
    (package / "harness_thirdparty_test.py").write_text(
        textwrap.dedent("""
        import harness

        @harness.hookimpl
        def harness_calibrations():
            from harness.calibration import EmpiricalQuantile
            return {"median_of_normals": lambda: EmpiricalQuantile(percentile=50)}
        """)
    )
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "-q", str(package)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "plugins"], capture_output=True, text=True, timeout=120, check=True
        )
        assert "thirdparty 1.2.3 (harness-thirdparty-test)" in result.stdout
        assert "calibrations: median_of_normals" in result.stdout
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "harness-thirdparty-test"], capture_output=True, timeout=300)
