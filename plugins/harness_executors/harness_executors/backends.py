"""Jobs on a Ray cluster or through submitit (SLURM, or submitit's local runner).

Each back-end calls :func:`harness.runs.execute_job` for a job, in whatever process runs it: the
result goes to the score cache atomically and a cached job is skipped, as with the local executor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import HarnessError
from harness.runs import PASS_ENV, execute_job, job_progress

_progress = job_progress


class RayExecutor:
    """Jobs as Ray tasks on an existing cluster (``executor.address``, e.g. ``127.0.0.1:6379``).

    ``cpus_per_job`` and ``gpus_per_job`` become the tasks' resource requests. The driver's plugin
    settings and ``PYTHONPATH`` travel to the workers in the runtime environment.
    """

    def __init__(self, address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0) -> None:
        self.address, self.cpus, self.gpus = address, cpus_per_job, gpus_per_job

    def run(self, jobs: Sequence[Any], cache_root: Path) -> Iterator[tuple[str, str, str | None]]:
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

    def run(self, jobs: Sequence[Any], cache_root: Path) -> Iterator[tuple[str, str, str | None]]:
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
