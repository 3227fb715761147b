"""The public API: ``harness.__all__`` is what plugins use, and the in-house plugins use nothing else."""

import ast
import importlib
from pathlib import Path

import pytest

import harness

REPO = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = {"harness", "harness.testing", "harness.analysis", "harness.datasets", "harness.runs"}
"""Core modules a plugin may import from; ``harness.cli`` too, in a plugin's tests (to run the command).

``harness.analysis`` is the kind-author API: what a protocol kind builds on (AnalysisSpec and its
context, job data, figures, metrics, calibrations, findings); the paradigm kinds use nothing else.
``harness.datasets`` is the layout-author API (records, categories, the MVTec layout, folder helpers).
``harness.runs`` is the command-author API (finished runs, their scores and tables; plugins/harness_tools)."""

KNOWN_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}
"""Declared exceptions with their reason; a declaration that no longer matches fails the test too."""


def _core_imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every ``harness.*`` import in ``path``, including ``from harness import x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "harness"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "harness":
            found.append((node.module, node.lineno))
    return found


def _private_imports() -> dict[tuple[str, str], int]:
    private = {}
    for path in sorted((REPO / "plugins").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        allowed = PUBLIC_MODULES | ({"harness.cli"} if "/tests/" in relative else set())
        for module, line in _core_imports(path):
            if module not in allowed:
                private[(relative, module)] = line
    return private


def test_in_house_plugins_import_only_the_public_api():
    unexpected = [
        f"{path}:{line}: {module}"
        for (path, module), line in _private_imports().items()
        if (path, module) not in KNOWN_PRIVATE_IMPORTS
    ]
    assert not unexpected, "import these from `harness` (add to harness.__all__ if a plugin needs it):\n" + "\n".join(
        unexpected
    )


def test_declared_private_imports_are_still_there():
    stale = [key for key in KNOWN_PRIVATE_IMPORTS if key not in _private_imports()]
    assert not stale, f"remove these from KNOWN_PRIVATE_IMPORTS, they are fixed: {stale}"


def test_the_check_sees_a_private_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("import harness\nfrom harness import Scores\nfrom harness.errors import ModelError\n")
    assert [m for m, _ in _core_imports(module)] == ["harness", "harness", "harness.errors"]


@pytest.mark.parametrize("name", harness.__all__)
def test_every_public_name_resolves(name):
    assert getattr(harness, name) is not None


def test_public_api_covers_the_contract():
    needed = {"Sample", "LabelledSample", "Scores", "Detector", "DetectorInfo", "ModelSpec", "MetricSpec"}
    needed |= {"AnalysisSpec", "ReportSection", "hookimpl", "validation_split", "ModelError", "ProtocolError"}
    needed |= {"check_detector", "parametrize_checks"}
    assert needed <= set(harness.__all__)


def test_every_package_ships_and_templates_are_found():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(config["packages"])
    on_disk = {p.parent.relative_to(REPO).as_posix().replace("/", ".") for p in (REPO / "harness").rglob("__init__.py")}
    assert on_disk <= packages, f"add to [tool.setuptools] packages: {sorted(on_disk - packages)}"
    assert config["package-dir"]["harness.reports"] == "reports"
    from harness.report.assets import templates_dir

    assert templates_dir() == REPO / "reports" and (templates_dir() / "report.tex.j2").is_file()


@pytest.mark.parametrize("module", ["harness.analysis", "harness.datasets", "harness.runs"])
def test_every_extension_api_name_resolves(module):
    api = importlib.import_module(module)
    assert api.__all__ and all(getattr(api, name) is not None for name in api.__all__)


def test_every_in_house_plugin_is_installed_by_the_readme_and_ci_alike():
    import re

    readme = re.search(r"^pip install -e \"\.\[dev\]\".*$", (REPO / "README.md").read_text(), flags=re.M)
    assert readme, "README needs its install command"
    assert readme.group(0) in (REPO / ".ci" / "run").read_text().splitlines(), ".ci/run must run the README's command"
    plugins = {p.parent.name for p in (REPO / "plugins").glob("*/pyproject.toml")}
    installed = set(re.findall(r"-e plugins/(\w+)", readme.group(0)))
    assert plugins == installed, f"install command and plugins/ differ: {sorted(plugins ^ installed)}"
