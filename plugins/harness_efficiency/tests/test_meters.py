"""The efficiency plugin's meters: energy, GPU, memory, size and GMAC; a failing meter costs only its figures."""

import os
import sys

import numpy as np
import pytest
from harness_efficiency.meters import (
    EnergyMeter,
    Sampler,
    footprint,
    measuring,
    nvml_status,
    summarise_samples,
    with_co2,
)

import harness
from harness.runs import FittedJob


def test_gpu_power_without_a_gpu_says_why():
    module, reason = nvml_status()
    if module is not None:
        pytest.skip("an NVIDIA GPU is present")
    assert reason.startswith("GPU power: no NVIDIA GPU or driver")


def test_codecarbon_offline_tracker_measures_energy():
    with EnergyMeter.measure("test", "BEL") as result:
        sum(i * i for i in range(2_000_000))
    assert result.get("energy_kwh", 0) > 0, result
    figures = with_co2(dict(result), 0.475)
    assert figures["co2_kg"] == pytest.approx(figures["energy_kwh"] * 0.475)


def test_footprint_of_a_torch_module():
    torch = pytest.importorskip("torch")

    class Detector:
        torch_module = torch.nn.Conv2d(3, 8, 3, padding=1)

    figures = footprint(Detector(), (16, 16))
    assert figures["parameters"] == 3 * 8 * 9 + 8
    assert figures["gmac"] == pytest.approx(16 * 16 * 8 * 27 / 1e9)  # MACs of the convolution, bias not counted
    assert figures["size_mb"] > 0
    Detector.input_size = (32, 32)  # the network resizes: GMAC at the size it really takes
    assert footprint(Detector(), (16, 16))["gmac"] == pytest.approx(4 * 16 * 16 * 8 * 27 / 1e9)


def test_gpu_figures_are_empty_for_a_job_that_ran_on_the_cpu():

    with Sampler(0.01).running() as sampler:
        sum(i * i for i in range(200_000))
    figures = summarise_samples(sampler, None)
    assert not {"gpu_memory_mb", "gpu_power_w", "gpu_util_percent", "gpu_energy_kwh"} & set(figures)
    assert figures["gpu_note"].startswith("GPU figures: none")


@pytest.mark.gpu
def test_gpu_memory_is_the_jobs_own_peak_and_cpu_jobs_get_none():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")

    with Sampler(0.01).running() as sampler:  # a big job first: 256 MB
        big = torch.ones(64, 1024, 1024, device="cuda")
        del big
    first = summarise_samples(sampler, None)
    with Sampler(0.01).running() as sampler:  # then a small one: its peak is its own, not the process's
        small = torch.ones(1024, 1024, device="cuda")
        del small
    second = summarise_samples(sampler, None)
    with Sampler(0.01).running() as sampler:  # and one that never touches the GPU
        sum(i * i for i in range(100_000))
    third = summarise_samples(sampler, None)
    assert first["gpu_memory_mb"] >= 256 and second["gpu_memory_mb"] < 64
    assert "gpu_memory_mb" not in third and "gpu_power_w" not in third and "the job ran on the CPU" in third["gpu_note"]
    if "gpu_power_w" in second:
        assert "whole card" in second["gpu_note"]


class _Job:
    key, image_size = "k", (8, 8)


class _Flaky:
    """Scores once; every later call (the latency meter's) raises; its torch module cannot be read."""

    calls = 0

    def score(self, samples):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("second call")
        return harness.Scores(np.zeros(len(samples)))

    @property
    def torch_module(self):
        raise RuntimeError("no module")


def test_a_failing_meter_fails_nothing_but_its_figures():
    detector = _Flaky()
    scores = detector.score([object()])
    with measuring(_Job(), {"energy": False, "latency_repeats": 2}) as finish:
        fitted = FittedJob(detector, [object()], 1.0, 0.5)
    finish(fitted)
    figures = fitted.figures
    assert figures["fit_seconds"] == 1.0 and figures["throughput_per_s"] == 2.0 and "peak_rss_mb" in figures
    assert "latency_ms" not in figures and "gmac" not in figures
    assert "latency: not measured (RuntimeError: second call)" in figures["footprint_note"]
    assert "size, GMAC: not measured (RuntimeError: no module)" in figures["footprint_note"]
    assert figures["energy_note"] == "energy tracking off (efficiency.energy: false)"
    assert scores.image.tolist() == [0.0]


class _Tracker:
    def __init__(self, fail):
        self.fail = fail

    def start_task(self, name):
        if self.fail == "start":
            raise OSError("no RAPL")

    def stop_task(self):
        if self.fail == "stop":
            raise ValueError("no data")


@pytest.mark.parametrize("fail", ["start", "stop"])
def test_a_failing_energy_tracker_leaves_a_note(monkeypatch, fail):
    monkeypatch.setattr(EnergyMeter, "_tracker", _Tracker(fail))
    monkeypatch.setattr(EnergyMeter, "_pid", os.getpid())
    with EnergyMeter.measure("job", "BEL") as result:
        pass
    assert "energy_kwh" not in result and result["energy_note"].startswith("energy: not measured")


def test_a_forked_process_starts_its_own_tracker(monkeypatch):
    """The parent's tracker (codecarbon's timer thread, its locks) is never used in a job's child."""
    monkeypatch.setattr(EnergyMeter, "_tracker", _Tracker(None))
    monkeypatch.setattr(EnergyMeter, "_reason", None)
    monkeypatch.setattr(EnergyMeter, "_pid", -1)  # as a forked child sees its parent's state
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # importing it fails: the reason is recorded
    with EnergyMeter.measure("job", "BEL") as result:
        pass
    assert EnergyMeter._pid == os.getpid() and EnergyMeter._tracker is None
    assert result["energy_note"].startswith("codecarbon unavailable (ModuleNotFoundError")


def test_prepare_starts_the_tracker_of_a_job_and_only_probes_where_jobs_fork(monkeypatch):
    """Started before the job (outside its measured block); the forking process starts no tracker (no timer thread)."""
    import threading

    from codecarbon.core import hardware_cache
    from harness_efficiency.meters import prepare

    monkeypatch.setattr(EnergyMeter, "_tracker", None)
    monkeypatch.setattr(EnergyMeter, "_reason", None)
    monkeypatch.setattr(EnergyMeter, "_pid", os.getpid())
    hardware_cache.clear_cache()
    threads = set(threading.enumerate())
    prepare({}, forking=True)
    assert EnergyMeter._tracker is None and set(threading.enumerate()) == threads
    assert hardware_cache._plans, "the probe is cached for the processes forked after"
    prepare({"energy": False}, forking=False)
    assert EnergyMeter._tracker is None
    prepare({}, forking=False)
    tracker = EnergyMeter._tracker
    assert tracker is not None
    with EnergyMeter.measure("job", "BEL") as result:  # the job measures with the tracker started beforehand
        sum(i * i for i in range(200_000))
    assert EnergyMeter._tracker is tracker and "energy_kwh" in result
    tracker.stop()


def test_a_failing_preparation_is_tried_again_by_the_job(monkeypatch):
    from harness_efficiency.meters import prepare

    monkeypatch.setattr(EnergyMeter, "_tracker", None)
    monkeypatch.setattr(EnergyMeter, "_reason", None)
    monkeypatch.setattr(EnergyMeter, "_pid", os.getpid())
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    prepare({}, forking=True)  # a probe that fails says nothing: each job probes for itself
    prepare({}, forking=False)
    assert EnergyMeter._tracker is None and EnergyMeter._reason is None
    with EnergyMeter.measure("job", "BEL") as result:
        pass
    assert result["energy_note"].startswith("codecarbon unavailable (ModuleNotFoundError")
