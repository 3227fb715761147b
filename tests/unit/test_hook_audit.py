"""The ``harness_dataset_audit`` hook: a plugin's findings are what the core stores, prints and reports."""

import pytest

import harness


class _Audit:
    @harness.hookimpl
    def harness_dataset_audit(self, categories, max_distance):
        return [
            {"kind": "odd", "category": c.name, "path": "a.png", "detail": f"within {max_distance}"} for c in categories
        ]


@pytest.fixture
def audit_plugin():
    from harness.plugins import get_plugins

    plugins = get_plugins()
    plugins.register(_Audit(), "odd_audit")
    yield
    plugins.unregister("odd_audit")


def test_hook_harness_dataset_audit(audit_plugin, tmp_path):
    from harness.audit_report import audit, run_audit
    from harness.datasets import Category

    category = Category("disc", [])
    assert audit([category]) == [{"kind": "odd", "category": "disc", "path": "a.png", "detail": "within 4"}]
    record = run_audit([category], None, None)
    assert record["ran"] and record["counts"] == {"odd": 1}


def test_the_in_house_audit_is_the_datasets_plugin():
    pytest.importorskip("harness_datasets")
    from harness.plugins import get_plugins

    hook = get_plugins().manager.hook.harness_dataset_audit
    assert "harness_datasets" in {impl.plugin.__name__ for impl in hook.get_hookimpls()}
