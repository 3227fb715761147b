"""Where jobs run: this process or a local process pool (default); plugins add more (``harness_executors``).

A Ray cluster and SLURM via submitit come from plugins/harness_executors.

The unit of work is one :class:`~harness.scoring.Job`, keyed by its content hash. Every
back-end calls :func:`execute_job`, which writes the job's result to the score cache
atomically and skips a job already there, so reruns are idempotent and a run killed at any
point resumes from what finished. Workers find models through the installed plugins (entry
points) and ``HARNESS_PLUGINS``; they never receive labels, only the job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, ProtocolError, unknown_name_message
from harness.scoring import Job, JobFailed, run_job
from harness.store import ScoreCache

Result = tuple[str, str, str | None]  # (job key, "cached" | "fitted" | "failed", error)
PASS_ENV = (
    "HARNESS_PLUGINS",
    "HARNESS_DISABLE_PLUGINS",
    "HARNESS_DISABLE_PLUGIN_AUTOLOAD",
    "HARNESS_HOME",
    "HF_HUB_OFFLINE",
    "PYTHONPATH",
)
"""Environment the remote workers need to see the same plugins and data as the driver."""


def execute_job(job: Job, cache_root: str, meanwhile: Callable[[], None] | None = None) -> Result:
    """Run one job in whatever process this is: skip it if cached, else fit, score and store it.

    ``meanwhile`` runs in this thread while the job's images are handed over (a job's process
    imports its model's libraries there). A plugin's ``sys.exit`` fails its own job, not the run.
    """
    from harness.plugins import get_plugins

    cache = ScoreCache(Path(cache_root))
    if cache.has(job.key, report=False):  # the driver has named a damaged entry already
        return job.key, "cached", None
    try:
        run_job(job, get_plugins().get("models", job.model.name), cache, meanwhile)
    except JobFailed as exc:
        return job.key, "failed", str(exc)
    except SystemExit as exc:
        return job.key, "failed", f"the model called sys.exit({exc.code!r}) while fitting or scoring"
    return job.key, "fitted", None


def _progress(total: int) -> Any:
    """A ``tqdm`` progress bar (imported when there is a job to run, like the forked jobs' module)."""
    from tqdm import tqdm

    return tqdm(total=total, desc="fit + score", unit="job", disable=None, file=sys.stderr)


class LocalExecutor:
    """Jobs on this machine, each in its own child process (forked), ``workers`` at a time (default 1).

    A job whose process dies (``os._exit``, a segfault, a kill) or runs past ``timeout`` seconds
    (off by default) becomes a failed row with its reason; the other jobs go on. ``isolate: false``
    runs jobs in this process instead (``workers: 1``) or in a spawned pool. With ``gpus: N`` (or
    ``auto`` on a machine with several GPUs) ``N`` jobs run at once, each seeing only its own device.

    Forking is safe because the harness never runs torch in the parent; a program that ran torch
    operations on CPU before calling the harness in the same process sets ``isolate: false``
    (OpenMP's thread pool does not survive a fork).
    """

    def __init__(
        self, workers: int = 1, gpus: int | str | None = None, timeout: float | None = None, isolate: bool = True
    ) -> None:
        self.gpus = _gpu_count(gpus)
        self.workers = self.gpus if self.gpus > 1 else int(workers)
        if self.workers < 1:
            raise HarnessError(f"executor.workers must be at least 1, got {workers}")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ProtocolError(f"executor.timeout must be a positive number of seconds, got {timeout!r}")
        if timeout is not None and not isolate:
            raise ProtocolError("executor.timeout needs isolated jobs; remove executor.isolate: false")
        self.timeout, self.isolate = (float(timeout) if timeout else None), bool(isolate)
        self.while_waiting: Callable[[], None] | None = None
        """Work for this process while its job processes run (the run imports its analysis' modules there)."""

    def run(self, jobs: Sequence[Job], cache_root: Path) -> Iterator[Result]:
        """Yield each job's result as it finishes."""
        if self.isolate:
            from harness.isolation import IsolatedJobs

            isolated = IsolatedJobs(self.workers, self.gpus, self.timeout)
            isolated.while_waiting = self.while_waiting
            yield from isolated.run(list(jobs), str(cache_root))
        elif self.workers == 1:
            progress = _progress(len(jobs))
            for job in jobs:
                progress.set_postfix_str(f"{job.model.label} / {job.category.name} / seed {job.seed}")
                yield execute_job(job, str(cache_root))
                progress.update()
            progress.close()
        else:
            yield from self._spawned_pool(jobs, cache_root)

    def _spawned_pool(self, jobs: Sequence[Job], cache_root: Path) -> Iterator[Result]:
        context = get_context("spawn")  # fork would copy torch's thread pools and locks
        slots = context.Queue()
        for index in range(self.workers):
            slots.put(index)
        progress = _progress(len(jobs))
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_pin_gpu, initargs=(slots, self.gpus)
        ) as pool:
            futures = [pool.submit(execute_job, job, str(cache_root)) for job in jobs]
            try:
                for future in as_completed(futures):
                    progress.update()
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()
                progress.close()


def _gpu_count(gpus: int | str | None) -> int:
    if gpus in (None, 0, "none"):
        return 0
    if gpus == "auto":
        torch = sys.modules.get("torch")
        try:
            if torch is None:
                import torch
            return int(torch.cuda.device_count())
        except ImportError:
            return 0
    return int(gpus)


def _pin_gpu(slots: Any, gpus: int) -> None:
    index = slots.get()
    if gpus > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)


EXECUTORS: dict[str, Callable[..., Any]] = {"local": LocalExecutor}
"""The built-in executor; ``ray`` and ``submitit`` come from plugins/harness_executors (``harness_executors``)."""


def build_executor(config: Mapping[str, Any]) -> Any:
    """The executor named by ``executor.name`` with the rest of ``executor:`` as options."""
    from harness.plugins import get_plugins

    options = dict(config)
    name = str(options.pop("name", "local"))
    executors = {**get_plugins().registry("executors"), **EXECUTORS}
    if name not in executors:
        raise ProtocolError(unknown_name_message("executor", name, executors), key="executor.name")
    try:
        return executors[name](**options)
    except TypeError as exc:
        raise ProtocolError(f"invalid options for executor '{name}': {exc}", key="executor") from None
