"""The same protocol gives identical results under the local, Ray and submitit executors; resume after kill -9."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

PROTOCOL = """
protocol: kde_vs_test
dataset: {{synthetic: {{n_train: 16, n_test_good: 6, n_per_defect: 2, size: 64, seed: 0}}, image_size: 32}}
models: [{{name: {model}}}]
seeds: [0, 1]
analysis: {{bootstrap: 200, review: 0, map_panels: false}}
"""


def _env(tmp_path, **extra):
    env = dict(os.environ)
    env.update(
        {
            "HARNESS_PLUGINS": "slow_counting",
            "PYTHONPATH": os.pathsep.join([str(TESTS / "plugins"), env.get("PYTHONPATH", "")]),
            "HARNESS_TEST_FIT_LOG": str(tmp_path / "fits.log"),
            **extra,
        }
    )
    return env


def _run(tmp_path, name, *args, env=None, model="slow_counting"):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(PROTOCOL.format(model=model))
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        str(protocol),
        "--out",
        str(tmp_path / name),
        "--cache",
        str(tmp_path / f"cache-{name}"),
        *args,
    ]
    return subprocess.run(command, env=env or _env(tmp_path), capture_output=True, text=True, timeout=600)


def _fits(tmp_path):
    log = tmp_path / "fits.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def reference(tmp_path):
    result = _run(tmp_path, "serial")
    assert result.returncode == 0, result.stderr
    return (tmp_path / "serial" / "results.csv").read_text()


def test_local_process_pool_matches_serial(tmp_path, reference):
    result = _run(tmp_path, "pool", "--set", "executor.workers=2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pool" / "results.csv").read_text() == reference


def test_submitit_local_matches_serial(tmp_path, reference):
    pytest.importorskip("submitit")
    result = _run(
        tmp_path,
        "submitit",
        "--executor",
        "submitit",
        "--set",
        "executor.cluster=local",
        "--set",
        f"executor.folder={tmp_path / 'logs'}",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "submitit" / "results.csv").read_text() == reference


def test_ray_cluster_matches_serial(tmp_path, reference):
    pytest.importorskip("ray")
    ray = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = 6400 + os.getpid() % 500
    env = _env(tmp_path)
    start = subprocess.run(
        [
            ray,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        result = _run(tmp_path, "ray", "--executor", "ray", "--set", f"executor.address=127.0.0.1:{port}", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (tmp_path / "ray" / "results.csv").read_text() == reference
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_resume_after_kill_refits_no_finished_job(tmp_path, reference):
    fits_before = len(_fits(tmp_path))  # the reference run's 6 fits
    env = _env(tmp_path, HARNESS_TEST_FIT_SECONDS="1.5")
    protocol = tmp_path / "p.yaml"
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        str(protocol),
        "--out",
        str(tmp_path / "killed"),
        "--cache",
        str(tmp_path / "cache-killed"),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    cache = tmp_path / "cache-killed"
    while time.time() < deadline and len(list(cache.glob("*/meta.json"))) < 2:
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.parent.name for p in cache.glob("*/meta.json")}
    assert 2 <= len(finished) < 6 and not (tmp_path / "killed" / "results.csv").exists()
    fits_killed = len(_fits(tmp_path)) - fits_before
    result = subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    refits = len(_fits(tmp_path)) - fits_before - fits_killed
    assert refits == 6 - len(finished)  # only the unfinished jobs ran again
    assert (tmp_path / "killed" / "results.csv").read_text() == reference


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    import fcntl

    with open(out / ".harness.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("pid 4242")
        handle.flush()
        result = _run(tmp_path, "busy")
    assert result.returncode == 2
    assert "another harness run (pid 4242) is writing to" in result.stderr and "Traceback" not in result.stderr
