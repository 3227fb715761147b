"""The audit and executor hooks: a plugin's findings are what the core stores; executors by name."""

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


def test_hook_harness_executors():
    """``ray`` and ``submitit`` come from plugins/harness_executors; ``local`` stays built in and first."""
    from harness.executors import LocalExecutor, build_executor
    from harness.plugins import get_plugins

    class Inline:
        @harness.hookimpl
        def harness_executors(self):
            return {"inline": lambda **options: ("inline", options), "local": object}

    plugins = get_plugins()
    plugins.register(Inline(), "inline_executor")
    try:
        assert build_executor({"name": "inline", "speed": 2}) == ("inline", {"speed": 2})
        assert isinstance(build_executor({"name": "local"}), LocalExecutor)
    finally:
        plugins.unregister("inline_executor")
    if pytest.importorskip("harness_executors"):
        assert {"ray", "submitit"} <= set(plugins.registry("executors"))
