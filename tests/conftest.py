"""Shared fixtures: an isolated harness home, a small embedded dataset, an in-process CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# generated datasets go to a temporary home, never to the user's cache; removed when the session ends
CREATED_HOME = None
if "HARNESS_HOME" not in os.environ:
    CREATED_HOME = os.environ["HARNESS_HOME"] = tempfile.mkdtemp(prefix="harness-test-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
MAGNETIC_TILE = SHARED_DATA / "magnetic_tile"

SMALL_SYNTHETIC = {"n_train": 16, "n_test_good": 6, "n_per_defect": 2, "size": 64, "seed": 0}


def pytest_configure(config):
    """Under ``pytest -n N``, tests marked ``xdist_group`` run in one process, so their module fixtures
    (a run several tests read) are built once: xdist's default ``load`` becomes ``loadgroup``, which
    spreads every other test one by one as ``load`` does."""
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "loadgroup"
    if getattr(config, "workerinput", {}).get("harness_loadgroup"):
        config.option.loadgroup = True  # a worker reads the command line again: name grouped tests by group


def pytest_unconfigure(config):
    """Remove the temporary home this process made (xdist's workers share the controller's, which removes it)."""
    if CREATED_HOME and not hasattr(config, "workerinput"):
        shutil.rmtree(CREATED_HOME, onerror=_writable_then_retry)


def _writable_then_retry(function, path, _):
    """The cache keeps its files and folders read-only: make the folder writable and try once more."""
    for target in {os.path.dirname(path), path}:
        with contextlib.suppress(OSError):
            os.chmod(target, 0o700)
    with contextlib.suppress(OSError):
        function(path)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist's hook on the controller: tell each worker that ``loadgroup`` is on."""
    node.workerinput["harness_loadgroup"] = node.config.getvalue("dist") == "loadgroup"


@pytest.fixture(scope="session")
def synthetic_root() -> Path:
    """A small embedded dataset (3 categories, 64 px) generated once per session."""
    from harness.data.synthetic import ensure_generated

    return ensure_generated(categories=("weave", "disc", "grain"), **SMALL_SYNTHETIC)


@pytest.fixture
def register():
    """``register(plugin, name)``: a plugin registered in-process for one test, unregistered after it."""
    from harness.plugins import get_plugins

    names = []

    def add(plugin, name):
        get_plugins().register(plugin, name)
        names.append(name)

    yield add
    for name in names:
        get_plugins().unregister(name)


@pytest.fixture
def cli(capsys):
    """Run ``harness ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from harness.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return int(code), captured.out, captured.err

    return run


def write_protocol(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SMALL_PROTOCOL = f"""
protocol: kde_vs_test
dataset:
  synthetic: {SMALL_SYNTHETIC}
  categories: [weave, disc]
  image_size: 32
models:
  - name: fixed_scores
calibrations: [test_f1_oracle, test_youden_oracle, kde, quantile]
seeds: [0]
"""


@pytest.fixture
def small_protocol(tmp_path: Path) -> Path:
    """kde_vs_test on the small embedded dataset with the in-process fixed-score model."""
    return write_protocol(tmp_path / "small.yaml", SMALL_PROTOCOL)


class _CallLog(type):
    """``FixedScores.calls``: the fits made, read from a file, since jobs run in child processes."""

    log: Path | None = None

    @property
    def calls(cls) -> list[str]:
        return cls.log.read_text().split() if cls.log and cls.log.is_file() else []

    @calls.setter
    def calls(cls, value: list[str]) -> None:
        cls.log = Path(tempfile.mkstemp(prefix="fixed-scores-calls-", dir=os.environ["HARNESS_HOME"])[1])
        cls.log.write_text("".join(f"{v}\n" for v in value))


class FixedScores(metaclass=_CallLog):
    """A test detector: the image score is the mean brightness difference from the training mean.

    Deterministic, instant, and it records everything it was given.
    """

    weights = "none"

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail

    def fit(self, samples):
        import numpy as np

        with open(FixedScores.log, "a") as log:  # the job's child process appends; the test reads
            log.write("fit\n")
        self.mean = np.mean([s.image.astype(float) for s in samples], axis=0)
        return self

    def score(self, samples):
        import numpy as np

        import harness

        if self.fail == "raise":
            raise RuntimeError("boom")
        maps = np.stack([np.abs(s.image.astype(float) - self.mean).mean(axis=-1) for s in samples])
        image = maps.reshape(len(samples), -1).max(axis=1)
        if self.fail == "nan":
            image[0] = float("nan")
        if self.fail == "shape":
            image = image[:-1]
        return harness.Scores(image=image, maps=maps)


class FixedScoresPlugin:
    @staticmethod
    def harness_models():
        return {"fixed_scores": FixedScores}


import harness  # noqa: E402

FixedScoresPlugin.harness_models = staticmethod(harness.hookimpl(FixedScoresPlugin.harness_models))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty score cache, so fit counts do not depend on test order."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def register_fixed_scores() -> None:
    """Register the fixed-score test model in this process (never through autoloading)."""
    from harness.plugins import get_plugins

    plugins = get_plugins()
    if "fixed_scores" not in plugins.registry("models"):
        plugins.register(FixedScoresPlugin(), "test-fixed-scores")


@pytest.fixture(autouse=True)
def fixed_scores_plugin():
    """Register the fixed-score test model in-process; each test starts its own call log."""
    register_fixed_scores()
    FixedScores.calls = []
    yield


def run_once(*args: str) -> int:
    """``harness ARGS`` in this process, for module- and session-scoped fixtures (set up before the
    per-test fixtures, without capsys): the fixed-score model registered and its call log started."""
    from harness.cli import main

    register_fixed_scores()
    if FixedScores.log is None:
        FixedScores.calls = []
    return int(main(list(args)))


def copy_run(source: Path, target: Path) -> Path:
    """A private copy of a finished run's folder or score cache, for a test that changes it.

    Copying costs milliseconds where a run costs seconds; links stay links (the cache's entries are
    relative links, so a copied cache is whole on its own).
    """
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def small_run_once(tmp_path_factory) -> Path:
    """``small_protocol`` run once per session (per test process): ``small.yaml``, ``out`` and ``cache``."""
    folder = tmp_path_factory.mktemp("small-run")
    protocol = write_protocol(folder / "small.yaml", SMALL_PROTOCOL)
    assert run_once("-q", "run", str(protocol), "--out", str(folder / "out"), "--cache", str(folder / "cache")) == 0
    return folder


@pytest.fixture
def small_run(small_run_once, small_protocol, tmp_path) -> Path:
    """The test's own copy of a finished run of ``small_protocol``: its output folder (``tmp_path/out``).

    For tests that read, re-render, compile or track a run's outputs; a test about the run itself
    (its console output, fitting, caching) runs ``small_protocol`` on its own.
    """
    return copy_run(small_run_once / "out", tmp_path / "out")
