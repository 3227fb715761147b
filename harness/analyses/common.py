"""Helpers shared by analyses: stable seeds, score groups, thresholds of a job."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.analyses.base import AnalysisContext, CalibrationSpec, JobData
from harness.calibration import calibration_data
from harness.derived_cache import digest, floats, is_number_map


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def job_rng(context: AnalysisContext, job: JobData, *parts: object) -> np.random.Generator:
    """A generator seeded by the protocol seed, the job and ``parts``: same draws on every rerun."""
    text = "|".join(map(str, (job.model, job.category, job.seed, *parts)))
    return np.random.default_rng([context.seed, zlib.crc32(text.encode())])


def thresholds_of(job: JobData, context: AnalysisContext) -> dict[str, float]:
    """Each calibration's threshold on the job's own test set (oracles) or held-out normals.

    With a derived cache, the built-in calibrators' thresholds are read back when the same
    calibrators saw the same scores before (no KDE refitted, scipy not imported).
    """
    scores, labels = job.test["score"].to_numpy(float), job.test["label"].to_numpy(int)
    key = _thresholds_key(job, context, scores, labels)
    stored = job.derived.get_value(key) if key else None
    labels_of = [spec.label for spec in context.calibrations]
    if is_number_map(stored, labels_of):
        return {label: floats(stored)[label] for label in labels_of}
    thresholds = {
        spec.label: spec.calibrator.threshold(calibration_data(spec.calibrator, job.holdout, scores, labels))
        for spec in context.calibrations
    }
    if key:
        job.derived.put_value(key, thresholds)
    return thresholds


CALIBRATION_VERSION = 1
"""Bumped when a built-in calibrator's threshold changes: part of the key of cached thresholds."""


def _thresholds_key(job: JobData, context: AnalysisContext, scores: np.ndarray, labels: np.ndarray) -> str | None:
    """The derived-cache key of a job's thresholds, or ``None`` (no cache, or a calibrator from a plugin)."""
    calibrators = [spec.calibrator for spec in context.calibrations]
    if job.derived is None or not all(type(c).__module__ == "harness.calibration" for c in calibrators):
        return None
    from harness.figures import array_digest
    from harness.metrics import distribution_version

    described = [[spec.label, type(spec.calibrator).__name__, vars(spec.calibrator)] for spec in context.calibrations]
    data = array_digest(job.holdout, scores, labels)
    return digest("thresholds", CALIBRATION_VERSION, distribution_version("scipy"), described, data)


def reference_calibration(context: AnalysisContext) -> CalibrationSpec | None:
    """The deployable calibration the review lists use: ``kde`` if present, else the first non-oracle."""
    deployable = [spec for spec in context.calibrations if not spec.oracle]
    return next((s for s in deployable if s.name == "kde"), deployable[0] if deployable else None)


class _Missing(Exception):
    """Raised in place of computing a value: it is not in the derived cache."""


def _refuse(_specs: object) -> dict[str, float]:
    raise _Missing


def cached_pixel_metrics(job: JobData) -> dict[str, float] | None:
    """The job's pixel metrics when the derived cache holds every one (none is computed here), else ``None``."""
    if "pixel_metrics" in vars(job):
        return job.pixel_metrics
    try:
        values = job._cached_metrics("pixel", _refuse)
    except _Missing:
        return None
    vars(job)["pixel_metrics"] = values  # what the cached property would hold
    return values


SLOW_PIXEL_METRICS = ("pl",)
"""Pixel metrics computed in a child process (:class:`Background`) while this one computes the others."""


def pending_pixel_metrics() -> dict[str, float]:
    """Every registered pixel metric as NaN: a job's pixel columns while their values are still computed."""
    from harness.analyses.base import _metrics

    return dict.fromkeys(_metrics("pixel"), float("nan"))


def pixel_metric_values(job: JobData, names: object) -> dict[str, float]:
    """The registered pixel metrics among ``names``, computed as :attr:`JobData.pixel_metrics` computes them."""
    from harness.analyses.base import _metric_value, _metrics

    specs = {name: spec for name, spec in _metrics("pixel").items() if name in names}
    if not specs:
        return {}
    maps, masks = job.load_maps(), job.load_masks()
    if maps is None or masks is None or not masks.any():
        return dict.fromkeys(specs, float("nan"))
    return {name: _metric_value(spec, maps, masks) for name, spec in specs.items()}


def pixel_metrics_beside(job: JobData, background: Background, key: str) -> dict[str, float]:
    """:attr:`JobData.pixel_metrics`: the slow ones from ``background`` (``key``), the others computed here meanwhile.

    ``key`` was submitted with :func:`pixel_metric_values` of :data:`SLOW_PIXEL_METRICS`.
    """

    def compute(missing: dict[str, Any]) -> dict[str, float]:
        values = pixel_metric_values(job, [name for name in missing if name not in SLOW_PIXEL_METRICS])
        slow = [name for name in missing if name in SLOW_PIXEL_METRICS]
        values.update(background.result(key, lambda: pixel_metric_values(job, slow)) if slow else {})
        return {name: values[name] for name in missing}

    return job._cached_metrics("pixel", compute)


class Background:
    """Values computed in forked child processes while this process goes on, ``workers`` at a time.

    On two cores the pixel metrics of a job (minutes of PL, AUPRO and pixel AUROC on large sets)
    are computed beside its figures. A value comes back through a pipe; a child that fails or
    dies leaves the value to be computed here, so errors and numbers are those of the inline path.
    Warnings raised in the child are raised again here, and its harness log lines logged again here.
    """

    def __init__(self, workers: int | None = None) -> None:
        cores = os.cpu_count() or 1
        self.workers = min(4, cores - 1) if workers is None else workers
        self.queued: dict[str, Callable[[], Any]] = {}
        self.running: dict[str, tuple[Any, Any]] = {}
        self.done: dict[str, Any] = {}

    def submit(self, key: str, function: Callable[[], Any]) -> None:
        """Compute ``function()`` in a child process as soon as a worker is free (``result`` collects it)."""
        self.queued[key] = function
        self._start()

    def poll(self) -> None:
        """Collect the values of children that finished, and start queued ones in their place."""
        for key, (_, receiver) in list(self.running.items()):
            if receiver.poll():
                self.done[key] = self._receive(key)
        self._start()

    def _receive(self, key: str) -> Any:
        process, receiver = self.running.pop(key)
        message = None
        with contextlib.suppress(EOFError, OSError):
            message = receiver.recv()
        receiver.close()
        process.join()
        return message

    def _start(self) -> None:
        from multiprocessing import get_context

        if sys.platform == "win32":
            return
        context = get_context("fork")
        while self.queued and len(self.running) < self.workers:
            key, function = next(iter(self.queued.items()))
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_background_child, args=(sender, function, os.getpid()), daemon=True)
            try:
                process.start()
            except OSError:  # no process to be had (limits, memory): the value is computed here when asked
                receiver.close()
                sender.close()
                self.workers = 0
                return
            del self.queued[key]
            sender.close()
            self.running[key] = (process, receiver)

    def result(self, key: str, function: Callable[[], Any]) -> Any:
        """The value of ``key`` from its child, or ``function()`` computed here (not submitted, queued or failed)."""
        self.queued.pop(key, None)
        message = self.done.pop(key) if key in self.done else self._receive(key) if key in self.running else None
        self._start()
        if not (isinstance(message, tuple) and message[0] == "value"):
            return function()
        for caught in message[2]:
            warnings.warn_explicit(caught[0], caught[1], caught[2], caught[3])
        for level, line in message[3]:
            logging.getLogger("harness").log(level, "%s", line)
        return message[1]

    def close(self) -> None:
        """Stop children whose value was never asked for."""
        self.queued.clear()
        self.done.clear()
        for process, receiver in self.running.values():
            process.kill()
            process.join()
            receiver.close()
        self.running.clear()


class _Collected(logging.Handler):
    """The harness's log lines of a child, kept to be logged again by the parent (its streams and run.log)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


def _background_child(sender: Any, function: Callable[[], Any], parent: int) -> None:
    from harness.isolation import die_with_parent

    die_with_parent(parent)
    logger, collected = logging.getLogger("harness"), _Collected()
    logger.handlers, logger.propagate = [collected], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = function()
        raised = [(w.message, w.category, w.filename, w.lineno) for w in caught]
        sender.send(("value", value, raised, collected.lines))
    except BaseException:  # the parent computes it again and meets the same error there
        sender.send(("failed",))
    finally:
        sender.close()
