"""``harness_fit_and_score``: wrappers measure a job in its own process; they never change a score or fail a job."""

import json
import os
import threading
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

import harness
from harness.plugins import get_plugins

PROTOCOL = """protocol: {kind}
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [weave],
          image_size: 32}}
models: [{{name: fixed_scores{options}}}]
calibrations: [kde]
efficiency: {{energy: false, latency_repeats: 2}}
"""


def _run(cli, tmp_path, *extra, kind="kde_vs_test", options="", name="out", exit_code=0):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.format(kind=kind, options=options))
    out = tmp_path / name
    code, _, stderr = cli("run", str(path), "--out", str(out), *extra)
    assert code == exit_code, stderr
    return pd.read_csv(out / "results.csv")


def _figures():
    """The ``efficiency`` of every cache entry of this test (one per job)."""
    root = Path(os.environ["HARNESS_CACHE_DIR"])
    return [json.loads(p.read_text())["efficiency"] for p in sorted(root.rglob("meta.json"))]


@pytest.fixture
def wrapper():
    """Register a wrapper plugin for one test; ``wrapper(plugin)`` returns it."""
    added = []

    def add(plugin):
        get_plugins().register(plugin, f"wrapper-{len(added)}")
        added.append(f"wrapper-{len(added)}")
        return plugin

    yield add
    for name in added:
        get_plugins().unregister(name)


@pytest.fixture
def without_efficiency_plugin():
    """The installed efficiency plugin unregistered for one test (as if it were not installed)."""
    manager = get_plugins().manager
    plugin = manager.unregister(name="efficiency")
    yield
    if plugin is not None and not manager.has_plugin("efficiency"):
        manager.register(plugin, name="efficiency")


class Stamp:
    """Adds the process it ran in and what it saw before and after ``yield``."""

    @harness.hookimpl(wrapper=True)
    def harness_fit_and_score(self, job, efficiency):
        before = job.key
        fitted = yield
        fitted.figures.update(pid=os.getpid(), before=before, n_scored=len(fitted.samples), options=dict(efficiency))
        return fitted


@pytest.mark.parametrize("isolate", ["true", "false"])
def test_hook_harness_fit_and_score(cli, tmp_path, wrapper, isolate):
    wrapper(Stamp())
    _run(cli, tmp_path, "--set", f"executor.isolate={isolate}")
    (figures,) = _figures()
    assert (figures["pid"] == os.getpid()) == (isolate == "false")  # the job's own process
    assert figures["n_scored"] == figures["throughput_per_s"] * figures["score_seconds"] > 0
    assert figures["options"] == {"energy": False, "latency_repeats": 2} and figures["fit_seconds"] > 0
    if get_plugins().manager.has_plugin("efficiency"):  # the installed plugin's figures beside this one's
        assert (
            figures["latency_ms"] > 0 and figures["peak_rss_mb"] > 0 and "energy tracking off" in figures["energy_note"]
        )


class Prepared:
    """Notes each ``harness_prepare_jobs`` call per process; its wrapper records what its own process saw."""

    def __init__(self):
        self.seen = {}

    @harness.hookimpl
    def harness_prepare_jobs(self, efficiency, forking):
        in_main = threading.current_thread() is threading.main_thread()
        self.seen.setdefault(os.getpid(), []).append([forking, in_main, dict(efficiency)])

    @harness.hookimpl(wrapper=True)
    def harness_fit_and_score(self, job, efficiency):
        prepared = list(self.seen.get(os.getpid(), []))  # before the detector is built
        fitted = yield
        fitted.figures["prepared"] = prepared
        return fitted


@pytest.mark.parametrize(("isolate", "seeds"), [("true", "[0]"), ("true", "[0, 1]"), ("false", "[0]")])
def test_hook_harness_prepare_jobs(cli, tmp_path, wrapper, isolate, seeds):
    plugin = wrapper(Prepared())
    _run(cli, tmp_path, "--set", f"executor.isolate={isolate}", "--set", f"seeds={seeds}")
    options = {"energy": False, "latency_repeats": 2}
    # each job's process: once, in a thread (beside the hand-over), before its wrapper ran
    assert [f["prepared"] for f in _figures()] == [[[False, False, options]]] * len(json.loads(seeds))
    if isolate == "true":  # the run's process prepares (beside its import of the models) only to fork several jobs
        assert plugin.seen.get(os.getpid(), []) == ([[True, False, options]] if seeds != "[0]" else [])


def test_without_a_measuring_plugin_the_columns_are_empty_with_a_note(
    cli, tmp_path, monkeypatch, without_efficiency_plugin
):
    pytest.importorskip("harness_paradigms")
    bare = _run(cli, tmp_path, kind="benchmark")
    (figures,) = _figures()
    assert set(figures) == {"fit_seconds", "score_seconds", "energy_note"} and "not measured" in figures["energy_note"]
    assert bare["fit_seconds"].notna().all() and bare["latency_ms"].isna().all() and bare["co2_kg"].isna().all()
    assert bare["notes"].str.contains("efficiency: not measured").all()
    get_plugins().manager.register(pytest.importorskip("harness_efficiency"), name="efficiency")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache2"))
    measured = _run(cli, tmp_path, kind="benchmark", name="measured")
    get_plugins().manager.unregister(name="efficiency")
    assert measured["latency_ms"].notna().all()
    same = [c for c in bare.columns if c in ("auroc", "ap", "recall", "f1", "threshold", "auroc_rank")]
    pd.testing.assert_frame_equal(bare[same], measured[same])  # measuring changes no score


class FailsBefore:
    @harness.hookimpl(wrapper=True)
    def harness_fit_and_score(self, job, efficiency):
        raise RuntimeError("meter broke before")
        yield


class FailsAfter:
    @harness.hookimpl(wrapper=True)
    def harness_fit_and_score(self, job, efficiency):
        fitted = yield
        fitted.figures["partial"] = 1
        raise RuntimeError("meter broke after")


@pytest.mark.parametrize("plugin", [FailsBefore, FailsAfter])
def test_a_failing_wrapper_costs_only_its_figures(cli, tmp_path, wrapper, monkeypatch, plugin):
    plain = _run(cli, tmp_path, name="plain")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache2"))
    wrapper(plugin())
    rows = _run(cli, tmp_path, name="wrapped")
    (figures,) = _figures()
    assert "efficiency: a measuring plugin failed (RuntimeError: meter broke" in figures["energy_note"]
    assert (rows["status"] == "ok").all() and figures["fit_seconds"] > 0
    pd.testing.assert_frame_equal(plain.drop(columns="notes"), rows.drop(columns="notes"))


def test_the_models_own_error_reaches_the_job_through_the_wrappers(cli, tmp_path, wrapper):
    wrapper(Stamp())
    rows = _run(cli, tmp_path, "--set", "executor.isolate=false", options=", options: {fail: raise}", exit_code=1)
    assert (rows["status"] == "failed").all()
    assert rows["error"].str.startswith("RuntimeError: boom (at conftest.py:").all()


class Tampers:
    """A hostile wrapper: reads what it is given, then rewrites the timers, the detector and the figures."""

    seen: ClassVar[dict] = {}

    @harness.hookimpl(wrapper=True)
    def harness_fit_and_score(self, job, efficiency):
        Tampers.seen = {name: getattr(job, name) for name in vars(job)}
        fitted = yield
        fitted.fit_seconds, fitted.score_seconds, fitted.detector = -1.0, "hacked", object()
        fitted.figures.update(fit_seconds=-1.0, score_seconds="hacked", weights=object(), memory_mb=1.5)
        return fitted


def test_a_wrapper_sees_no_record_and_cannot_rewrite_the_harness_timers(cli, tmp_path, wrapper):
    wrapper(Tampers())
    rows = _run(cli, tmp_path, "--set", "executor.isolate=false")
    assert set(Tampers.seen) == {"key", "model", "options", "category", "seed", "image_size"}
    assert Tampers.seen["category"] == "weave" and Tampers.seen["model"] == "fixed_scores"
    (figures,) = _figures()
    assert figures["fit_seconds"] > 0 and isinstance(figures["score_seconds"], float)
    assert "weights" not in figures and "left out: ['weights']" in figures["energy_note"]
    assert figures["memory_mb"] == 1.5  # a plain figure is kept
    assert (rows["status"] == "ok").all()
