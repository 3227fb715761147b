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
    pytest.importorskip("harness_datasets")
    from harness_datasets.audit_run import audit, run_audit

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


def test_hook_harness_run_audit(cli, small_protocol, tmp_path):
    """A plugin's run-audit record is the run's audit.json; the report's sections get the run folder."""
    import json

    seen_file = tmp_path / "seen.json"  # the audit may run in a child process of its own, beside the jobs

    class _RunAudit:
        @harness.hookimpl
        def harness_run_audit(self, categories, dataset, cache_root):
            seen_file.write_text(json.dumps([[c.name for c in categories], dataset.audit, cache_root is not None]))
            return {"ran": True, "note": "checked by hand", "findings": []}

        @harness.hookimpl
        def harness_report_sections(self, out):
            return [harness.ReportSection("Hand audit", json.loads((out / "audit.json").read_text())["note"])]

    from harness.plugins import get_plugins

    plugins = get_plugins()
    plugins.register(_RunAudit(), "hand_audit")
    try:
        out = tmp_path / "out"
        code, _, stderr = cli("run", str(small_protocol), "--out", str(out))
        assert code == 0, stderr
    finally:
        plugins.unregister("hand_audit")
    seen = json.loads(seen_file.read_text())
    assert seen[1:] == [None, True] and seen[0]
    assert json.loads((out / "audit.json").read_text()) == {"ran": True, "note": "checked by hand", "findings": []}
    for report in ("report.html", "report.tex"):
        assert "Hand audit" in (out / report).read_text() and "checked by hand" in (out / report).read_text()
