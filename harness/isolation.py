"""Each job in its own forked child process: a crash, ``os._exit`` or a hang fails that job only.

The child fits, scores and writes the cache entry; the parent learns the outcome through a
pipe, or from how the child ended when it sent none (a signal, an exit status, the timeout).
Measured on a 2-core CPU machine (9 trivial jobs against in-process), a job's process costs about
0.07 s, 0.15 s with energy tracking on (plugins/harness_efficiency starts a codecarbon tracker in each).
A run of one job per worker forks at once: each job imports its model's ``ModelSpec.preload`` while
its images are handed over. Where a worker runs several jobs, this process imports them once first
(and plugins prepare their measuring beside it, ``harness_prepare_jobs``) so that every job inherits them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from tqdm import tqdm

from harness.data.handover import remove_left_by
from harness.errors import HarnessError
from harness.scoring import Job
from harness.store import ScoreCache

Result = tuple[str, str, str | None]
logger = logging.getLogger("harness.executors")


@dataclass
class _Running:
    job: Job
    process: Any
    receiver: Connection
    started: float
    slot: int


def _torch_probe() -> None:
    torch = sys.modules["torch"]
    torch.ones(1 << 20).add_(1).sum()
    (torch.randn(64, 64) @ torch.randn(64, 64)).sum()


def _import_torch() -> None:
    """Import torch (when installed) once here, not in every job's process: importing starts no threads."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401


def preload_models(names: Iterable[str]) -> None:
    """Import here, once, the modules that these models declare in ``ModelSpec.preload`` (forked jobs inherit them).

    A module that fails to import is left to fail its own job, with the real error, in the job's process.
    """
    from harness.plugins import get_plugins

    plugins = get_plugins()
    for name in dict.fromkeys(names):
        try:
            for module in plugins.model(name).preload:
                importlib.import_module(module)
        except Exception as exc:  # reported by the job that needs it, in its own process
            logger.debug("preloading model %s: %s", name, exc)


def prepare_forks(names: Iterable[str], efficiency: Mapping[str, Any]) -> None:
    """Before forking several jobs: import their models' modules here while plugins prepare, in a thread, to measure.

    The thread ends before this returns: no fork copies a thread's half-held lock.
    """
    from harness.plugins import get_plugins

    plugins = get_plugins()
    with ThreadPoolExecutor(1, thread_name_prefix="harness-prepare") as pool:
        prepared = pool.submit(plugins.call_each, "harness_prepare_jobs", efficiency=dict(efficiency), forking=True)
        preload_models(names)
        prepared.result()


def preload_modules(modules: Iterable[str]) -> None:
    """Import ``modules`` here (an analysis' own, while its jobs run); one that fails, fails where it is used."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the analysis meets the real error when it imports the module itself
            logger.debug("preloading %s: %s", module, exc)


def _cuda_initialised() -> bool:
    """Whether this process initialised CUDA (then jobs start in spawned processes, which find plugins anew)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def torch_survives_fork(context: Any, seconds: float = 5.0) -> bool:
    """Whether torch's CPU thread pool works in a forked child (False once the parent ran parallel torch work).

    OpenMP's pool does not survive a fork: a child of a process that ran parallel torch operations
    hangs on its first one. One probe child per run tells; where it hangs, jobs run torch with one
    thread (what PyTorch's own DataLoader workers do).
    """
    if "torch" not in sys.modules:
        return True
    probe = context.Process(target=_torch_probe)
    probe.start()
    probe.join(seconds)
    if probe.exitcode is None:
        probe.kill()
        probe.join()
        logger.info("torch ran parallel work in this process before the run: jobs use one torch thread")
        return False
    return True


def die_with_parent(parent: int) -> None:
    """End this child when the run's process ``parent`` dies (Linux): a killed run leaves no job or helper running.

    An orphan would go on holding the output folder's lock, so resuming at once would be refused.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before this process asked
        os._exit(1)


def _child(sender: Connection, job: Job, cache_root: str, device: int | None, one_thread: bool, parent: int) -> None:
    """Body of a job's process: run the job and send back its result (or the harness error that stopped it).

    The model's ``ModelSpec.preload`` is imported here while the images are handed over, unless inherited.
    """
    from harness.executors import execute_job

    die_with_parent(parent)

    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
    if one_thread:
        sys.modules["torch"].set_num_threads(1)
    preloading = partial(preload_models, [job.model.name])  # imports nothing when inherited
    try:
        message: tuple[Any, ...] = ("result", execute_job(job, cache_root, preloading), "torch" in sys.modules)
    except HarnessError as exc:  # bad data or options: the whole run stops with one line, as in-process
        message = ("harness_error", (type(exc).__name__, str(exc)))
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException as exc:
        message = ("result", (job.key, "failed", f"{type(exc).__name__}: {exc}"))
    sender.send(message)
    sender.close()


def _death(code: int | None) -> str:
    """Why a job's process ended without a result."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the job's process was killed by {name} (a crash in the model, or out of memory)"
    return f"the job's process exited with status {code} before it finished (os._exit or a crash in the model)"


class IsolatedJobs:
    """Runs jobs in forked children, ``workers`` at a time, each stopped after ``timeout`` seconds when set."""

    def __init__(self, workers: int, gpus: int = 0, timeout: float | None = None) -> None:
        self.workers, self.gpus, self.timeout = workers, gpus, timeout
        self.context = get_context("fork")
        self.one_thread = False
        self.imports_torch = False
        """Whether a job's process imported torch (then this process imports it once, for the jobs after)."""
        self.while_waiting: Callable[[], None] | None = None
        """Called once here when the last job has started, while its process runs (no fork follows)."""

    def run(self, jobs: list[Job], cache_root: str) -> Iterator[Result]:
        """Yield each job's result as its process ends; a job already cached is reported without a process.

        The cache is looked up first. torch is imported here (once, for the jobs forked after) only
        when a job's process imported it: a model that never uses torch leaves this process without it.
        """
        cache = ScoreCache(Path(cache_root))
        pending, running = [], []
        for job in jobs:
            if cache.has(job.key, report=False):  # e.g. written by a concurrent run since planning
                yield job.key, "cached", None
            else:
                pending.append(job)
        if not pending:
            return
        # later jobs inherit one import; else each job imports its own, beside its hand-over
        if len(pending) > self.workers:
            prepare_forks([job.model.name for job in pending], pending[0].efficiency)  # torch: once a job imports it
        if _cuda_initialised():  # CUDA cannot be used in a forked child of a process that initialised it
            self.context = get_context("spawn")
        self.one_thread = self.context.get_start_method() == "fork" and not torch_survives_fork(self.context)
        progress = tqdm(total=len(pending), desc="fit + score", unit="job", disable=None, file=sys.stderr)
        try:
            while pending or running:
                free = sorted(set(range(self.workers)) - {r.slot for r in running})
                while pending and free:
                    running.append(self._start(pending.pop(0), cache_root, free.pop(0)))
                    progress.set_postfix_str(_describe(running[-1].job))
                if not pending and self.while_waiting is not None:
                    self.while_waiting, idle = None, self.while_waiting
                    idle()
                for item in self._wait(running):
                    running.remove(item)
                    progress.update()
                    yield self._outcome(item)
                    if self.imports_torch and pending:  # the next jobs inherit it instead of importing it each
                        _import_torch()
        finally:
            for item in running:
                item.process.kill()
                remove_left_by(item.process.pid)
                item.process.join()
            progress.close()

    def _start(self, job: Job, cache_root: str, slot: int) -> _Running:
        receiver, sender = self.context.Pipe(duplex=False)
        device = slot % self.gpus if self.gpus > 1 else None
        process = self.context.Process(
            target=_child, args=(sender, job, cache_root, device, self.one_thread, os.getpid())
        )
        process.start()
        sender.close()
        return _Running(job, process, receiver, time.monotonic(), slot)

    def _wait(self, running: list[_Running]) -> list[_Running]:
        """The jobs whose process ended (or ran out of time, then killed) while waiting."""
        timeout = None
        if self.timeout is not None:
            timeout = max(0.0, min(r.started + self.timeout for r in running) - time.monotonic())
        ready = wait([r.receiver for r in running] + [r.process.sentinel for r in running], timeout)
        done = [r for r in running if r.receiver in ready or r.process.sentinel in ready]
        if self.timeout is not None:
            now = time.monotonic()
            done += [r for r in running if r not in done and now - r.started >= self.timeout]
        return done

    def _outcome(self, item: _Running) -> Result:
        """Read the child's message (waiting for it to exit), or say why there is none."""
        message = None
        timed_out = self.timeout is not None and time.monotonic() - item.started >= self.timeout
        if item.receiver.poll(0 if timed_out else 5):
            try:
                message = item.receiver.recv()
            except (EOFError, OSError):
                message = None
        if message is None:  # killed, crashed or out of time: its hand-over folder is removed here
            item.process.kill()
            remove_left_by(item.process.pid)
        item.process.join()
        item.receiver.close()
        if message is None:
            if timed_out:
                return item.job.key, "failed", f"timed out after {self.timeout:g} s (executor.timeout)"
            return item.job.key, "failed", _death(item.process.exitcode)
        kind, payload, *imported = message
        self.imports_torch = self.imports_torch or bool(imported and imported[0])
        if kind == "harness_error":
            raise HarnessError(payload[1])
        return payload


def _describe(job: Job) -> str:
    return f"{job.model.label} / {job.category.name} / seed {job.seed}"
