"""Every hook is documented, the reference is current, and each hook has a test of its own."""

from pathlib import Path

import pytest

from harness import hookdocs, hookspecs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", hookdocs.hook_names())
def test_hook_has_documentation(name):
    doc = getattr(hookspecs, name).__doc__ or ""
    assert "Returns:" in doc and "versionadded" in doc, f"{name} needs its return meaning and version"


def test_hook_reference_is_up_to_date():
    assert (REPO / "docs" / "hooks.md").read_text() == hookdocs.render(), (
        "run: python -m harness.hookdocs > docs/hooks.md"
    )


@pytest.mark.parametrize("name", hookdocs.hook_names())
def test_each_hook_has_a_test(name):
    tests = "".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    assert f"def test_hook_{name}" in tests, f"add tests/unit/test_hooks.py::test_hook_{name}"
