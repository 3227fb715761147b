"""Where jobs run: this process or a local process pool (default), a Ray cluster, or SLURM via submitit.

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

from tqdm import tqdm

from harness.errors import HarnessError, ProtocolError, unknown_name_message
from harness.isolation import IsolatedJobs
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


def execute_job(job: Job, cache_root: str) -> Result:
    """Run one job in whatever process this is: skip it if cached, else fit, score and store it.

    A plugin's ``sys.exit`` fails its own job, not the run.
    """
    from harness.plugins import get_plugins

    cache = ScoreCache(Path(cache_root))
    if cache.has(job.key, report=False):  # the driver has named a damaged entry already
        return job.key, "cached", None
    try:
        run_job(job, get_plugins().get("models", job.model.name), cache)
    except JobFailed as exc:
        return job.key, "failed", str(exc)
    except SystemExit as exc:
        return job.key, "failed", f"the model called sys.exit({exc.code!r}) while fitting or scoring"
    return job.key, "fitted", None


def _progress(total: int) -> tqdm:
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

    def run(self, jobs: Sequence[Job], cache_root: Path) -> Iterator[Result]:
        """Yield each job's result as it finishes."""
        if self.isolate:
            yield from IsolatedJobs(self.workers, self.gpus, self.timeout).run(list(jobs), str(cache_root))
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


class RayExecutor:
    """Jobs as Ray tasks on an existing cluster (``executor.address``, e.g. ``127.0.0.1:6379``).

    ``cpus_per_job`` and ``gpus_per_job`` become the tasks' resource requests. The driver's plugin
    settings and ``PYTHONPATH`` travel to the workers in the runtime environment.
    """

    def __init__(self, address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0) -> None:
        self.address, self.cpus, self.gpus = address, cpus_per_job, gpus_per_job

    def run(self, jobs: Sequence[Job], cache_root: Path) -> Iterator[Result]:
        """Submit every job, then yield results as tasks finish."""
        try:
            import ray
        except ImportError:
            raise HarnessError("executor 'ray' needs Ray: pip install 'ray[default]'") from None
        env = {name: os.environ[name] for name in PASS_ENV if name in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(p for p in [env.get("PYTHONPATH", ""), *sys.path] if p)
        try:
            ray.init(
                address=self.address,
                ignore_reinit_error=True,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"env_vars": env},
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HarnessError(
                f"cannot connect to the Ray cluster at executor.address={self.address!r}: "
                f"{str(exc).splitlines()[0]}; start one with `ray start --head`"
            ) from None
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(execute_job)
        progress = _progress(len(jobs))
        try:
            waiting = [remote.remote(job, str(cache_root)) for job in jobs]
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                progress.update()
                yield ray.get(done[0])
        finally:
            progress.close()
            ray.shutdown()


class SubmititExecutor:
    """Jobs as a SLURM job array through submitit (``cluster: slurm``), or submitit's ``local``/``debug`` runners.

    ``folder`` holds submitit's logs (default ``OUT/.submitit`` via the runner); ``slurm`` passes
    parameters such as ``{partition: gpu, timeout_min: 120, gpus_per_node: 1}``.
    """

    def __init__(
        self, folder: str | None = None, cluster: str | None = None, slurm: Mapping[str, Any] | None = None
    ) -> None:
        self.folder, self.cluster, self.parameters = folder, cluster, dict(slurm or {})

    def run(self, jobs: Sequence[Job], cache_root: Path) -> Iterator[Result]:
        """Submit the jobs as one array and yield results as they come back."""
        try:
            import submitit
        except ImportError:
            raise HarnessError("executor 'submitit' needs submitit: pip install submitit") from None
        folder = Path(self.folder or cache_root.parent / "submitit-logs")
        executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster)
        if self.parameters:
            executor.update_parameters(**self.parameters)
        submitted = executor.map_array(execute_job, list(jobs), [str(cache_root)] * len(jobs))
        progress = _progress(len(submitted))
        try:
            for job in submitted:
                try:
                    result = job.result()
                except submitit.core.utils.FailedJobError as exc:
                    raise HarnessError(
                        f"a submitit job failed outside the model: {str(exc).splitlines()[0]}; see the logs in {folder}"
                    ) from None
                progress.update()
                yield result
        finally:
            progress.close()


EXECUTORS: dict[str, Callable[..., Any]] = {"local": LocalExecutor, "ray": RayExecutor, "submitit": SubmititExecutor}


def build_executor(config: Mapping[str, Any]) -> Any:
    """The executor named by ``executor.name`` with the rest of ``executor:`` as options."""
    options = dict(config)
    name = str(options.pop("name", "local"))
    if name not in EXECUTORS:
        raise ProtocolError(unknown_name_message("executor", name, EXECUTORS), key="executor.name")
    try:
        return EXECUTORS[name](**options)
    except TypeError as exc:
        raise ProtocolError(f"invalid options for executor '{name}': {exc}", key="executor") from None
