"""``harness_analysis_extras`` (per-job columns, tables and figures from plugins) and ``MetricSpec.version``."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness
from harness.analyses.base import AnalysisContext, AnalysisResult, FigureRecord, JobData
from harness.analyses.extras import analysis_extras
from harness.derived_cache import DerivedCache

PROTOCOL = """protocol: kde_vs_test
dataset: {synthetic: {n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}, categories: [weave],
          image_size: 32}
models: [{name: fixed_scores}]
calibrations: [kde, test_f1_oracle]
"""


class JobsSeen:
    """Adds one column per job and a CSV table, from the context and rows only."""

    @harness.hookimpl
    def harness_analysis_extras(self, context, rows):
        keys = sorted(set(rows["cache_key"]))
        table = pd.DataFrame({"category": [job.category for job in context.jobs]})
        table.to_csv(context.figure_dir / "jobs_seen.csv", index=False)
        columns = pd.DataFrame({"cache_key": keys, "rows_of_job": [int((rows["cache_key"] == k).sum()) for k in keys]})
        return AnalysisResult(columns, [FigureRecord("jobs_seen.csv", "jobs seen", kind="table")])


def test_hook_harness_analysis_extras(cli, tmp_path, register):
    register(JobsSeen(), "jobs-seen")
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL)
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out))
    assert code == 0, stderr
    rows = pd.read_csv(out / "results.csv")
    assert (rows["rows_of_job"] == 2).all()  # one row per calibration, joined to every row of the job
    assert "seg_f1" in rows  # plugins/harness_pixel answers the same hook
    assert (out / "figures" / "jobs_seen.csv").is_file()
    assert "jobs seen" in (out / "report.html").read_text()


def _context(tmp_path) -> AnalysisContext:
    return AnalysisContext(jobs=[], calibrations=[], figure_dir=tmp_path, options={})


def test_extras_join_on_cache_key_in_plugin_order_and_none_adds_nothing(tmp_path, register):
    class Nothing:
        @harness.hookimpl
        def harness_analysis_extras(self):
            return None

    class Second:
        @harness.hookimpl
        def harness_analysis_extras(self, rows):
            return AnalysisResult(pd.DataFrame({"cache_key": ["a"], "second": [2.0]}), [FigureRecord("b.png", "b")])

    class First:
        @harness.hookimpl
        def harness_analysis_extras(self, rows):
            return AnalysisResult(pd.DataFrame({"cache_key": ["a"], "first": [1.0]}), [FigureRecord("a.png", "a")])

    for plugin, name in ((Nothing(), "nothing"), (First(), "first"), (Second(), "second")):
        register(plugin, name)
    rows = pd.DataFrame({"cache_key": ["a", "a", "b"], "calibration": ["kde", "oracle", "kde"]})
    merged, figures = analysis_extras(_context(tmp_path), rows)
    assert [f.file for f in figures][-2:] == ["a.png", "b.png"]
    assert list(merged.columns)[-2:] == ["first", "second"]
    assert merged["first"].tolist()[:2] == [1.0, 1.0] and np.isnan(merged["first"].iloc[2])


def test_extras_that_break_the_contract_are_left_out_naming_the_plugin(tmp_path, register, caplog):
    class Wrong:
        @harness.hookimpl
        def harness_analysis_extras(self):
            return {"seg_f1": 1.0}

    class Rewrites:
        @harness.hookimpl
        def harness_analysis_extras(self, rows):
            rows["score"] = 1.0  # its own copy: the kind's rows do not change
            return AnalysisResult(pd.DataFrame({"cache_key": ["a", "a"], "twice": [1.0, 2.0]}), [])

    class Overwrites:
        @harness.hookimpl
        def harness_analysis_extras(self, rows):
            return AnalysisResult(pd.DataFrame({"cache_key": ["a"], "score": [1.0]}), [FigureRecord("x.png", "x")])

    for plugin, name in ((Wrong(), "wrong"), (Rewrites(), "rewrites"), (Overwrites(), "overwrites")):
        register(plugin, name)
    rows = pd.DataFrame({"cache_key": ["a"], "score": [0.5]})
    with caplog.at_level("WARNING", logger="harness"):
        merged, figures = analysis_extras(_context(tmp_path), rows)
    pd.testing.assert_frame_equal(merged[["cache_key", "score"]], rows)  # no row changed, none multiplied
    assert "x.png" not in [f.file for f in figures]
    for name, problem in (
        ("wrong", "must return harness.AnalysisResult, got dict"),
        ("rewrites", "more than one row for a cache_key"),
        ("overwrites", "columns already taken: ['score']"),
    ):
        assert f"plugin '{name}' failed in harness_analysis_extras" in caplog.text and problem in caplog.text


def _job(tmp_path, calls: list[str]) -> JobData:
    frame = pd.DataFrame({"path": ["a.png", "b.png"], "split": ["test", "test"], "score": [0.1, 0.9], "label": [0, 1]})
    meta = {"integrity": {"files": {"scores.csv": {"sha256": "s1"}}}}
    return JobData("m", "c", 0, "key", meta, frame, lambda: None, lambda: None, derived=DerivedCache(tmp_path))


def test_a_metric_whose_version_raises_is_computed_every_time_with_a_warning(tmp_path, register):
    calls: list[str] = []

    def broken_version():
        raise RuntimeError("no version")

    class Plugin:
        @harness.hookimpl
        def harness_metrics(self):
            def metric(scores, labels):
                calls.append("m")
                return float(scores.max())

            return {"m": harness.MetricSpec("m", True, "image", metric, version=broken_version)}

    register(Plugin(), "broken-version")
    with pytest.warns(RuntimeWarning, match="metric 'm': version failed"):
        values = [_job(tmp_path, calls).image_metrics["m"] for _ in range(2)]
    assert values == [0.9, 0.9] and calls == ["m", "m"]


@pytest.mark.parametrize("version", ["1", lambda: "1"])
def test_a_plugin_metric_with_a_version_is_cached_and_one_without_is_not(tmp_path, register, version):
    calls: list[str] = []

    def counted(name):
        def metric(scores, labels):
            calls.append(name)
            return float(scores.max())

        return metric

    class Plugin:
        @harness.hookimpl
        def harness_metrics(self):
            return {
                "versioned": harness.MetricSpec("versioned", True, "image", counted("versioned"), version=version),
                "plain": harness.MetricSpec("plain", True, "image", counted("plain")),
            }

    register(Plugin(), "versioned-metric")
    first = _job(tmp_path, calls).image_metrics
    again = _job(tmp_path, calls).image_metrics
    assert first == again and first["versioned"] == 0.9
    assert calls == ["versioned", "plain", "plain"]  # the versioned value read back; the plain one recomputed


def test_a_new_metric_version_recomputes_the_cached_value(tmp_path, register):
    calls: list[str] = []

    def metric(scores, labels):
        calls.append("metric")
        return float(scores.min())

    class Plugin:
        version = "1"

        @harness.hookimpl
        def harness_metrics(self):
            return {"low": harness.MetricSpec("low", True, "image", metric, version=lambda: Plugin.version)}

    register(Plugin(), "low-metric")
    values = [_job(tmp_path, calls).image_metrics["low"] for _ in range(2)]
    Plugin.version = "2"  # e.g. the plugin's code changed
    values.append(_job(tmp_path, calls).image_metrics["low"])
    assert calls == ["metric", "metric"] and values == [0.1, 0.1, 0.1]


class Broken:
    """A third party's plugin whose result-collecting hooks all raise."""

    @harness.hookimpl
    def harness_analysis_extras(self, context, rows):
        raise RuntimeError("extras bug")

    @harness.hookimpl
    def harness_report_sections(self, results, run):
        raise RuntimeError("section bug")

    @harness.hookimpl(tryfirst=True)
    def harness_run_audit(self, categories, dataset, cache_root):
        raise RuntimeError("audit bug")


class ReturnsJunk:
    """A third party's plugin whose result-collecting hooks return what their contracts forbid."""

    @harness.hookimpl
    def harness_analysis_extras(self, context, rows):
        return {"seg_f1": 1.0}

    @harness.hookimpl
    def harness_report_sections(self, results, run):
        return ["not a section"]

    @harness.hookimpl(tryfirst=True)
    def harness_run_audit(self, categories, dataset, cache_root):
        return {"findings": object()}


@pytest.mark.parametrize("plugin", [Broken, ReturnsJunk])
def test_a_failing_plugin_loses_its_own_part_not_the_run(cli, tmp_path, register, plugin):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL)
    code, _, _ = cli("run", str(path), "--out", str(tmp_path / "before"))
    assert code == 0
    register(plugin(), "broken")
    code, _, stderr = cli("run", str(path), "--out", str(tmp_path / "after"))
    assert code == 0, stderr
    for hook in ("harness_analysis_extras", "harness_report_sections"):
        assert f"plugin 'broken' failed in {hook} (" in stderr
    before, after = (pd.read_csv(tmp_path / name / "results.csv") for name in ("before", "after"))
    pd.testing.assert_frame_equal(before, after)  # the other plugins' columns (seg_f1) are all there
    assert (tmp_path / "after" / "report.html").is_file()
    assert "plugin 'broken' failed in harness_run_audit" in stderr


class PrepareSeen:
    """What ``harness_analysis_prepare`` gets (in a file: it runs in a child process), and what the extras get."""

    def __init__(self, folder):
        self.folder, self.extras = folder, []

    @harness.hookimpl
    def harness_analysis_prepare(self, context, rows):
        (context.figure_dir / "scratch.txt").write_text("left behind?")
        rows = rows.assign(figure_dir=str(context.figure_dir), pid=os.getpid())
        rows.to_csv(self.folder / "prepared.csv", index=False)

    @harness.hookimpl
    def harness_analysis_extras(self, context, rows):
        self.extras.append((context.figure_dir, rows.copy()))


@pytest.mark.parametrize("cores", [2, 8])  # 2: called in the run's process; 8: in a child of its own
def test_hook_harness_analysis_prepare(cli, tmp_path, register, monkeypatch, cores):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    seen = PrepareSeen(tmp_path)
    register(seen, "prepare-seen")
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL)
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(path), "--out", str(out), "--cache", str(tmp_path / "cache"))
    assert code == 0, stderr
    early, (figure_dir, final) = pd.read_csv(tmp_path / "prepared.csv"), seen.extras[0]
    scratch = Path(early["figure_dir"].iloc[0])
    assert (early["pid"].iloc[0] != os.getpid()) == (cores > 2)
    assert scratch != figure_dir and not scratch.exists()  # a scratch folder, gone
    assert not (out / "figures" / "scratch.txt").exists()
    same = ["cache_key", "calibration", "threshold", "f1", "recall"]
    pd.testing.assert_frame_equal(early[same], final[same].reset_index(drop=True), check_dtype=False)
    assert early["pl"].isna().all()  # pending while the plugins prepare
    (tmp_path / "prepared.csv").unlink()
    code, _, stderr = cli("run", str(path), "--out", str(out), "--cache", str(tmp_path / "cache"))
    assert code == 0 and not (tmp_path / "prepared.csv").exists()  # every pixel metric cached: no call


def test_outputs_are_the_same_with_and_without_the_plugins_preparing(cli, tmp_path, monkeypatch):
    """The review sheets, map panels and segmentation report drawn early give the bytes drawn late."""
    import harness.analyses.extras

    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL)
    outs = []
    for name in ("prepared", "late"):
        if name == "late":
            monkeypatch.setattr(harness.analyses.extras, "analysis_prepare", lambda context, rows: None)
        outs.append(tmp_path / name)
        code, _, stderr = cli("run", str(path), "--out", str(outs[-1]), "--cache", str(tmp_path / f"cache-{name}"))
        assert code == 0, stderr
    figures = sorted(p.name for p in (outs[0] / "figures").iterdir())
    assert figures == sorted(p.name for p in (outs[1] / "figures").iterdir())
    assert any(name.startswith("review_") for name in figures) and "recall_by_type_and_size.csv" in figures
    for name in [*(f"figures/{f}" for f in figures), "results.csv"]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
