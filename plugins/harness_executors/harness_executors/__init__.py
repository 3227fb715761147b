"""harness plugin: the ``ray`` and ``submitit`` executors (``executor: {name: ray}``, ``--executor submitit``).

Registered through ``harness_executors``; Ray and submitit are imported when a run uses them.
The executors' options are part of the protocol schema (``harness schema``).
"""

from __future__ import annotations

from typing import Any

import harness

__version__ = "0.1.0"


@harness.hookimpl
def harness_executors() -> dict[str, Any]:
    """``ray`` (a Ray cluster) and ``submitit`` (SLURM job arrays, or submitit's local runner)."""
    from harness_executors.backends import RayExecutor, SubmititExecutor

    return {"ray": RayExecutor, "submitit": SubmititExecutor}
