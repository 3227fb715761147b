"""Efficiency figures of a job, measured while it runs: never invented, empty with a reason when unknown.

:func:`measuring` is what the plugin's ``harness_fit_and_score`` wrapper enters around a job's
build, fit and score; each meter that fails leaves its own figures empty with a note, nothing else.

- time: fit seconds, scoring latency per image (warm, median of repeats), throughput;
- memory: peak resident memory of the process during the job (sampled); peak GPU memory of the
  job (torch's peak counter reset at the job's start), only when the job used CUDA;
- size: parameters, size of the serialised state dict, GMAC of one forward pass
  (``torch.utils.flop_counter``; FLOPs / 2);
- energy: codecarbon's offline tracker (energy in kWh; on machines without RAPL or a known CPU,
  codecarbon estimates CPU power from its TDP table, which the report says), CO2 = energy x a
  configurable grid intensity (default 0.475 kg/kWh, as paper 001);
- GPU power, energy and utilisation: sampled with NVML (nvidia-ml-py) when an NVIDIA GPU is
  present and the job used CUDA; empty for jobs that ran on the CPU (``gpu_note`` says so).
  NVML reads power and energy per card, not per process, so ``gpu_note`` marks them "whole
  card"; utilisation is this process's share when NVML gives per-process samples.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from harness import DetectorInfo, detector_info

DEFAULTS = {"energy": True, "latency_repeats": 5, "grid_intensity": 0.475, "country": "BEL", "sample_seconds": 0.05}
PAGE_SIZE = 4096


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def nvml_status() -> tuple[Any, str | None]:
    """(pynvml module initialised, None) or (None, why GPU power cannot be read)."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"GPU power: no NVIDIA GPU or driver ({type(exc).__name__})"
    return pynvml, None


def _cuda() -> Any:
    """torch.cuda when torch is imported and a CUDA device is present, else ``None``."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda


def _cuda_allocations(cuda: Any) -> int:
    """How many CUDA allocations this process has made so far (0 before CUDA is initialised)."""
    if cuda is None or not cuda.is_initialized():
        return 0
    return int(cuda.memory_stats().get("allocation.all.allocated", 0))


def _nvml_index() -> int:
    """The NVML index of the first visible CUDA device (``CUDA_VISIBLE_DEVICES`` renumbers them)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


@dataclass
class Sampler:
    """A background thread sampling process memory and, with NVML, GPU power and utilisation.

    At the start it resets torch's peak GPU memory counter and notes the CUDA allocation count
    and the card's energy counter, so that the GPU figures belong to this job alone.
    """

    interval: float = 0.05
    rss: list[int] = field(default_factory=list)
    gpu_power: list[float] = field(default_factory=list)
    gpu_util: list[float] = field(default_factory=list)
    gpu_reason: str | None = None
    process_util: bool = False
    cuda_allocations: int = 0
    gpu_energy_mj: float | None = None
    nvml: Any = None
    handle: Any = None

    def _start_gpu(self, nvml: Any) -> Any:
        cuda = _cuda()
        if cuda is not None and cuda.is_initialized():
            cuda.reset_peak_memory_stats()
        self.cuda_allocations = _cuda_allocations(cuda)
        if nvml is None:
            return None
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(_nvml_index())
        except Exception as exc:  # no such device: no GPU figures, and why
            self.gpu_reason = f"GPU: NVML has no device {_nvml_index()} ({type(exc).__name__})"
            return None
        try:
            self.gpu_energy_mj = float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except Exception:  # older cards have no energy counter: the mean power still gives energy
            self.gpu_energy_mj = None
        return handle

    def _gpu_sample(self, nvml: Any, handle: Any) -> None:
        self.gpu_power.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1000)
        try:
            mine = [s.smUtil for s in nvml.nvmlDeviceGetProcessUtilization(handle, 0) if s.pid == os.getpid()]
            self.process_util = True
            self.gpu_util.append(float(max(mine, default=0)))
        except Exception:  # no per-process samples on this card or driver: the card's utilisation
            self.process_util = False
            self.gpu_util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        """Sample until the block ends."""
        nvml, self.gpu_reason = nvml_status()
        try:
            handle = self._start_gpu(nvml)
        except Exception as exc:  # a failing GPU probe leaves the GPU figures empty, nothing else
            handle, self.gpu_reason = None, f"GPU: not sampled ({type(exc).__name__}: {exc})"
        self.nvml, self.handle = nvml, handle
        stop = threading.Event()

        def loop() -> None:
            nonlocal handle
            while not stop.is_set():
                rss = _rss_bytes()
                if rss is not None:
                    self.rss.append(rss)
                if handle is not None:
                    try:
                        self._gpu_sample(nvml, handle)
                    except Exception:  # a device that stops answering only ends sampling
                        handle = None
                stop.wait(self.interval)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def used_cuda(self) -> bool:
        """Whether the process allocated CUDA memory while sampling (the job ran on the GPU)."""
        return _cuda_allocations(_cuda()) > self.cuda_allocations

    def gpu_energy_kwh(self) -> float | None:
        """The card's energy over the job from NVML's counter (mJ), if the card has one."""
        if self.gpu_energy_mj is None or getattr(self, "handle", None) is None:
            return None
        try:
            now = float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:
            return None
        return (now - self.gpu_energy_mj) / 3.6e9


class EnergyMeter:
    """One codecarbon offline tracker per process (its start probes the hardware once, about 1.5 s)."""

    _tracker: Any = None
    _reason: str | None = None
    _pid: int | None = None
    _lock = threading.Lock()

    @staticmethod
    def _new(country: str) -> Any:
        """A codecarbon offline tracker, not started (its hardware not probed yet)."""
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        from codecarbon import OfflineEmissionsTracker

        return OfflineEmissionsTracker(
            country_iso_code=country, save_to_file=False, log_level="error", measure_power_secs=1
        )

    @classmethod
    def _ensure(cls, country: str) -> Any:
        if cls._pid != os.getpid():  # a forked job: the parent's tracker (its timer thread, its locks) stayed there
            cls._tracker, cls._reason, cls._pid = None, None, os.getpid()
        if cls._tracker is None and cls._reason is None:
            try:
                tracker = cls._new(country)
                tracker.start()
                cls._tracker = tracker
            except Exception as exc:  # codecarbon missing or failing: report why, never guess
                cls._reason = f"codecarbon unavailable ({type(exc).__name__}: {exc})"
        return cls._tracker

    @classmethod
    def start(cls, country: str) -> None:
        """Start this process' tracker ahead of its first job; a failure here is retried (and reported) by that job."""
        with cls._lock:
            if cls._ensure(country) is None:
                cls._reason = None

    @classmethod
    def probe(cls, country: str) -> None:
        """Probe the hardware here once, starting no tracker: the trackers of processes forked later reuse the probe.

        codecarbon caches its hardware probe per process (``codecarbon.core.hardware_cache``); where it
        does not, or the probe fails, each job's tracker probes for itself, as without this call.
        """
        try:
            getattr(cls._new(country), "_ensure_hardware_ready", lambda: None)()
        except Exception as exc:
            logging.getLogger(__name__).debug("codecarbon probe: %s", exc)

    @classmethod
    @contextmanager
    def measure(cls, name: str, country: str) -> Iterator[dict[str, Any]]:
        """Yield a dict that holds ``energy_kwh`` (or ``energy_note``) once the block ends."""
        result: dict[str, Any] = {}
        with cls._lock:
            tracker = cls._ensure(country)
        if tracker is None:
            result["energy_note"] = cls._reason
            yield result
            return
        try:
            tracker.start_task(name)
        except Exception as exc:  # a failing meter fails nothing but its figures
            result["energy_note"] = f"energy: not measured ({type(exc).__name__}: {exc})"
            yield result
            return
        try:
            yield result
        finally:
            result.update(_task_figures(tracker))


def _task_figures(tracker: Any) -> dict[str, Any]:
    """Energy (and CPU power) of the codecarbon task that ends now, or ``energy_note`` saying why not."""
    try:
        data = tracker.stop_task()
    except Exception as exc:
        return {"energy_note": f"energy: not measured ({type(exc).__name__}: {exc})"}
    energy = getattr(data, "energy_consumed", None) if data is not None else None
    if energy is None:
        return {"energy_note": "energy: codecarbon returned no measurement"}
    return {
        "energy_kwh": float(energy),
        "cpu_power_w": float(getattr(data, "cpu_power", float("nan"))),
        "energy_note": "energy: codecarbon estimate (CPU power from its TDP table without RAPL)",
    }


def footprint(info: DetectorInfo | object, image_size: tuple[int, int]) -> dict[str, Any]:
    """Parameters, serialised size and GMAC of the detector's torch module, with reasons when absent.

    ``info`` is the detector's :class:`~harness.types.DetectorInfo` (or the detector). GMAC are counted on one input
    of its ``input_size`` (the size its network really takes, e.g. 256 px for EfficientAD) when it
    declares one, else of the protocol's image size.
    """
    info = info if isinstance(info, DetectorInfo) else detector_info(info)
    module = info.torch_module
    figures: dict[str, Any] = {}
    if info.parameters is not None:
        figures["parameters"] = info.parameters
    if module is None or "torch" not in sys.modules:
        figures["footprint_note"] = "size, GMAC: the detector exposes no torch_module"
        return figures
    import torch

    figures.setdefault("parameters", int(sum(p.numel() for p in module.parameters())))
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    figures["size_mb"] = buffer.tell() / 1e6
    try:
        from torch.utils.flop_counter import FlopCounterMode

        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        counter = FlopCounterMode(display=False)
        was_training = module.training
        module.eval()
        with torch.no_grad(), counter:
            size = tuple(info.input_size or image_size)
            module(torch.zeros(1, 3, *size, device=device))
        module.train(was_training)
        figures["gmac"] = counter.get_total_flops() / 2e9
    except Exception as exc:
        figures["gmac_note"] = f"GMAC not counted: {type(exc).__name__}: {str(exc)[:120]}"
    return figures


def latency_ms(detector: Any, sample: Any, repeats: int) -> float:
    """Median wall time of scoring one image, after one warm-up call."""
    detector.score([sample])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        detector.score([sample])
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def summarise_samples(sampler: Sampler, baseline_rss: int | None) -> dict[str, Any]:
    """Peak memory and, for a job that used CUDA, its GPU figures from a finished sampler."""
    figures: dict[str, Any] = {}
    if sampler.rss:
        figures["peak_rss_mb"] = max(sampler.rss) / 1e6
        if baseline_rss is not None:
            figures["rss_increase_mb"] = max(0, max(sampler.rss) - baseline_rss) / 1e6
    if not sampler.used_cuda():
        reason = "the job ran on the CPU" if _cuda() is not None else (sampler.gpu_reason or "no CUDA device")
        figures["gpu_note"] = f"GPU figures: none ({reason})"
        return figures
    figures["gpu_memory_mb"] = _cuda().max_memory_allocated() / 1e6  # peak since this job's start
    if not sampler.gpu_power:
        figures["gpu_note"] = f"GPU power: not sampled ({sampler.gpu_reason or 'no NVML samples'})"
        return figures
    figures["gpu_power_w"] = statistics.mean(sampler.gpu_power)
    figures["gpu_util_percent"] = statistics.mean(sampler.gpu_util)
    energy = sampler.gpu_energy_kwh()
    if energy is not None:
        figures["gpu_energy_kwh"] = energy
    utilisation = "this process's share" if sampler.process_util else "whole card"
    figures["gpu_note"] = (
        f"GPU power and energy: whole card (NVML reads no per-process power); utilisation: {utilisation}"
    )
    return figures


def prepare(options: Mapping[str, Any] | None, forking: bool) -> None:
    """Get the energy meter ready before a job is measured: started in a job's process, probed where jobs fork from."""
    measure = settings(options)
    if not measure["energy"]:
        return
    if forking:
        EnergyMeter.probe(measure["country"])
    else:
        EnergyMeter.start(measure["country"])


def settings(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The protocol's ``efficiency:`` options over the defaults."""
    return {**DEFAULTS, **dict(options or {})}


def with_co2(figures: dict[str, Any], grid_intensity: float) -> dict[str, Any]:
    """Add ``co2_kg`` = energy x grid intensity when the energy is known."""
    if "energy_kwh" in figures:
        figures["co2_kg"] = figures["energy_kwh"] * grid_intensity
        figures["grid_intensity"] = grid_intensity
    return figures


def throughput(n_images: int, seconds: float) -> float | None:
    """Images per second of the batched scoring pass."""
    return n_images / seconds if seconds > 0 and n_images else None


def _note(figures: dict[str, Any], key: str, text: str) -> None:
    figures[key] = "; ".join(filter(None, (figures.get(key), text)))


def _guarded(figures: dict[str, Any], key: str, what: str, measure: Callable[[], dict[str, Any]]) -> None:
    """``figures.update(measure())``; a failing meter leaves its figures empty and says why under ``key``."""
    try:
        figures.update(measure())
    except Exception as exc:
        _note(figures, key, f"{what}: not measured ({type(exc).__name__}: {str(exc)[:120]})")


@contextmanager
def measuring(job: Any, options: Mapping[str, Any] | None) -> Iterator[Callable[[Any], None]]:
    """Sample memory, GPU and energy while the block runs (a job's build, fit and score).

    Yields ``finish(fitted)``, to call with the :class:`harness.runs.FittedJob` once the block has
    ended: it adds throughput, memory, GPU, energy, latency, size, GMAC and CO2 to ``fitted.figures``.
    """
    measure = settings(options)
    baseline_rss = _rss_bytes()
    energy_meter = (
        EnergyMeter.measure(job.key, measure["country"])
        if measure["energy"]
        else nullcontext({"energy_note": "energy tracking off (efficiency.energy: false)"})
    )
    with Sampler(measure["sample_seconds"]).running() as sampler, energy_meter as energy:
        yield lambda fitted: _finish(fitted, job, measure, energy, lambda: summarise_samples(sampler, baseline_rss))


def _finish(fitted: Any, job: Any, measure: Mapping[str, Any], energy: dict, memory: Callable[[], dict]) -> None:
    """The figures measured after the job: each meter on its own, a failing one noted."""
    figures = fitted.figures
    figures["throughput_per_s"] = throughput(len(fitted.samples), fitted.score_seconds)
    _guarded(figures, "gpu_note", "memory and GPU", memory)
    figures.update(energy)
    if fitted.samples and measure["latency_repeats"]:
        repeats = int(measure["latency_repeats"])
        _guarded(
            figures,
            "footprint_note",
            "latency",
            lambda: {"latency_ms": latency_ms(fitted.detector, fitted.samples[0], repeats)},
        )
    _guarded(figures, "footprint_note", "size, GMAC", lambda: footprint(detector_info(fitted.detector), job.image_size))
    with_co2(figures, float(measure["grid_intensity"]))


__all__: Sequence[str] = [
    "EnergyMeter",
    "Sampler",
    "footprint",
    "latency_ms",
    "measuring",
    "prepare",
    "settings",
    "with_co2",
]
