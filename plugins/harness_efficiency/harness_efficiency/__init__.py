"""harness plugin: efficiency of every job (memory, GPU, energy and CO2, latency, throughput, size, GMAC).

It implements ``harness_fit_and_score`` as a pluggy wrapper around each job's build, fit and score,
in the job's own process: the meters start before the detector is built and stop once it has
scored; latency, size and GMAC are measured after that, on the fitted detector, so no score
changes. ``harness_prepare_jobs`` starts codecarbon (its hardware probe takes about 1.5 s) while
the job's images are handed over, outside the measured block. The harness records the figures with
the job (its cache entry's ``efficiency``) and the protocol kinds show them as columns. Measuring
code is imported on the first job, not when the plugin loads (``harness validate`` and
``harness --help`` stay fast).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import harness

__version__ = "0.1.0"


@harness.hookimpl
def harness_prepare_jobs(efficiency: Mapping[str, Any], forking: bool) -> None:
    """Start codecarbon (probe the hardware only, where jobs are forked from) before the first job is measured."""
    from harness_efficiency.meters import prepare

    prepare(efficiency, forking)


@harness.hookimpl(wrapper=True)
def harness_fit_and_score(job: Any, efficiency: Mapping[str, Any]) -> Generator[None, Any, Any]:
    """Measure the job while it is built, fitted and scored; add the figures to ``fitted.figures``."""
    from harness_efficiency.meters import measuring

    with measuring(job, efficiency) as finish:
        fitted = yield
    finish(fitted)
    return fitted
