"""Efficiency figures of a job, measured while it runs: never invented, empty with a reason when unknown.

- time: fit seconds, scoring latency per image (warm, median of repeats), throughput;
- memory: peak resident memory of the process during the job (sampled), peak GPU memory (torch);
- size: parameters, size of the serialised state dict, GMAC of one forward pass
  (``torch.utils.flop_counter``; FLOPs / 2);
- energy: codecarbon's offline tracker (energy in kWh; on machines without RAPL or a known CPU,
  codecarbon estimates CPU power from its TDP table, which the report says), CO2 = energy x a
  configurable grid intensity (default 0.475 kg/kWh, as paper 001);
- GPU power and utilisation: sampled with NVML (nvidia-ml-py) when an NVIDIA GPU is present.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.types import DetectorInfo, detector_info

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


@dataclass
class Sampler:
    """A background thread sampling process memory and, with NVML, GPU power and utilisation."""

    interval: float = 0.05
    rss: list[int] = field(default_factory=list)
    gpu_power: list[float] = field(default_factory=list)
    gpu_util: list[float] = field(default_factory=list)
    gpu_reason: str | None = None

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        """Sample until the block ends."""
        nvml, self.gpu_reason = nvml_status()
        handles = []
        if nvml is not None:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                rss = _rss_bytes()
                if rss is not None:
                    self.rss.append(rss)
                for handle in handles:
                    try:
                        self.gpu_power.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1000)
                        self.gpu_util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                    except Exception:  # a device that stops answering only ends sampling
                        handles.clear()
                stop.wait(self.interval)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


class EnergyMeter:
    """One codecarbon offline tracker per process (its start probes the hardware once, about 1.5 s)."""

    _tracker: Any = None
    _reason: str | None = None

    @classmethod
    def _ensure(cls, country: str) -> Any:
        if cls._tracker is None and cls._reason is None:
            try:
                os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
                logging.getLogger("codecarbon").setLevel(logging.ERROR)
                from codecarbon import OfflineEmissionsTracker

                tracker = OfflineEmissionsTracker(
                    country_iso_code=country, save_to_file=False, log_level="error", measure_power_secs=1
                )
                tracker.start()
                cls._tracker = tracker
            except Exception as exc:  # codecarbon missing or failing: report why, never guess
                cls._reason = f"codecarbon unavailable ({type(exc).__name__}: {exc})"
        return cls._tracker

    @classmethod
    @contextmanager
    def measure(cls, name: str, country: str) -> Iterator[dict[str, Any]]:
        """Yield a dict that holds ``energy_kwh`` (or ``energy_note``) once the block ends."""
        result: dict[str, Any] = {}
        tracker = cls._ensure(country)
        if tracker is None:
            result["energy_note"] = cls._reason
            yield result
            return
        tracker.start_task(name)
        try:
            yield result
        finally:
            data = tracker.stop_task()
            energy = getattr(data, "energy_consumed", None) if data is not None else None
            if energy is None:
                result["energy_note"] = "energy: codecarbon returned no measurement"
            else:
                result["energy_kwh"] = float(energy)
                result["cpu_power_w"] = float(getattr(data, "cpu_power", float("nan")))
                result["energy_note"] = "energy: codecarbon estimate (CPU power from its TDP table without RAPL)"


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
    """Peak memory and GPU figures from a finished sampler."""
    figures: dict[str, Any] = {}
    if sampler.rss:
        figures["peak_rss_mb"] = max(sampler.rss) / 1e6
        if baseline_rss is not None:
            figures["rss_increase_mb"] = max(0, max(sampler.rss) - baseline_rss) / 1e6
    if sampler.gpu_power:
        figures["gpu_power_w"] = statistics.mean(sampler.gpu_power)
        figures["gpu_util_percent"] = statistics.mean(sampler.gpu_util)
    else:
        figures["gpu_note"] = sampler.gpu_reason or "no GPU samples"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        figures["gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 1e6
    return figures


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


__all__: Sequence[str] = ["EnergyMeter", "Sampler", "footprint", "latency_ms", "settings", "with_co2"]
