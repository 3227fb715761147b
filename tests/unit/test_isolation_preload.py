"""Where a model's ``ModelSpec.preload`` is imported: in the job's own process when each worker runs one job
(its import overlaps the hand-over of its images and the run's process never imports the library), in the
run's process once when it forks several jobs (they inherit it). A preload that fails fails its job only,
with the model's real error."""

import json
import os
import random
import sys

import numpy as np
import pandas as pd
import pytest

import harness
from harness.plugins import get_plugins

PROTOCOL = """protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, categories: [weave],
          image_size: 32}}
models: [{{name: {model}}}]
calibrations: [kde]
seeds: {seeds}
efficiency: {{energy: false, latency_repeats: 1}}
"""
MARKER = """
import os
import random

random.random()  # a library that draws a random number when imported
with open({log!r}, "a") as handle:
    handle.write(f"{{os.getpid()}}\\n")
"""


class Marked:
    """Fails unless its library (the marker module) was imported before it was built."""

    def __init__(self, library: str) -> None:
        if library not in sys.modules:
            raise RuntimeError(f"{library} was not preloaded")
        __import__(library)  # what a model does with the library it declared

    def fit(self, samples):
        self.offset = random.random()  # seeded by the harness: the same draw wherever the library was imported

    def score(self, samples):
        maps = np.stack([s.image.mean(axis=-1) for s in samples]).astype(np.float32)
        return harness.Scores(maps.reshape(len(samples), -1).mean(axis=1) + self.offset, maps)


def _broken():
    import harness_no_such_library  # noqa: F401  (the real error its jobs fail with)


class Plugin:
    def __init__(self, library: str) -> None:
        self.library = library

    @harness.hookimpl
    def harness_models(self):
        library = self.library
        return {
            "marked": harness.ModelSpec(factory=lambda: Marked(library), preload=(library,)),
            "broken": harness.ModelSpec(factory=_broken, preload=("harness_no_such_library",)),
        }


@pytest.fixture
def marked(tmp_path, monkeypatch):
    """The ``marked`` model, whose library logs the pid of every process that imports it; yields the log."""
    name = f"harness_marker_{os.getpid()}_{len(list(tmp_path.parent.iterdir()))}"
    (tmp_path / f"{name}.py").write_text(MARKER.format(log=str(tmp_path / "imports.log")))
    monkeypatch.syspath_prepend(str(tmp_path))
    get_plugins().register(Plugin(name), "marked-plugin")
    yield tmp_path / "imports.log", name
    get_plugins().unregister("marked-plugin")
    sys.modules.pop(name, None)


def _run(cli, tmp_path, model="marked", seeds="[0]", out="out"):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.format(model=model, seeds=seeds))
    code, _, stderr = cli("run", str(path), "--out", str(tmp_path / out), "--cache", str(tmp_path / f"cache-{out}"))
    assert (tmp_path / out / "run.json").is_file(), stderr
    jobs = json.loads((tmp_path / out / "run.json").read_text())["jobs"]
    return code, stderr, jobs


def test_a_single_job_imports_its_library_in_its_own_process_only(cli, tmp_path, marked):
    log, name = marked
    code, stderr, jobs = _run(cli, tmp_path)
    assert code == 0, stderr
    assert [job["status"] for job in jobs] == ["fitted"]
    importers = log.read_text().split()
    assert len(importers) == 1 and importers != [str(os.getpid())]  # the job's process, not this one
    assert name not in sys.modules


def test_several_jobs_inherit_one_import_from_the_run_process(cli, tmp_path, marked):
    log, _ = marked
    code, stderr, jobs = _run(cli, tmp_path, seeds="[0, 1, 2]")
    assert code == 0, stderr
    assert [job["status"] for job in jobs] == ["fitted"] * 3
    assert log.read_text().split() == [str(os.getpid())]  # imported once, here; no job imported it again


@pytest.mark.parametrize("seeds", ["[0]", "[0, 1]"])
def test_a_library_that_does_not_import_fails_its_job_with_the_real_error(cli, tmp_path, marked, seeds):
    _, _, jobs = _run(cli, tmp_path, model="broken", seeds=seeds)
    assert [job["status"] for job in jobs] == ["failed"] * len(json.loads(seeds))
    assert all("No module named 'harness_no_such_library'" in job["error"] for job in jobs)


def test_a_job_draws_the_same_numbers_whether_it_imported_its_library_or_inherited_it(cli, tmp_path, marked):
    """Seeded after the library's import in both cases, so its import-time draws change no score."""
    _run(cli, tmp_path, out="alone")  # the job's process imports the library
    _run(cli, tmp_path, seeds="[0, 1]", out="with-others")  # the job inherits it from this process
    alone, others = (pd.read_csv(tmp_path / out / "results.csv") for out in ("alone", "with-others"))
    columns = ["calibration", "threshold", "auroc"]
    pd.testing.assert_frame_equal(alone[columns], others[others["seed"] == 0][columns].reset_index(drop=True))
