"""The harness hook specification: the public API that plugins implement.

Every hook is a *registration* hook: it returns a mapping of names to the things the
plugin contributes, and the harness merges the mappings of all plugins (a name claimed
twice is an error that names both plugins). Implement any subset with
``@harness.hookimpl``; a misspelt hook name fails at start-up.

Hooks are grouped by phase, as in pytest's ``hookspec.py``: models, data, calibration,
analysis. See ``docs/hooks.md`` (generated from these docstrings) and README.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from harness.analyses.base import Analysis
    from harness.calibration import Calibrator
    from harness.data.base import DatasetSource
    from harness.types import DetectorFactory

hookspec = pluggy.HookspecMarker("harness")

# -------------------------------------------------------------------------------------
# Models
# -------------------------------------------------------------------------------------


@hookspec
def harness_models() -> Mapping[str, DetectorFactory]:
    """Register detectors by name.

    Returns:
        A mapping from model name (as written under ``models[].name`` in a protocol) to a
        factory. The harness calls ``factory(**options)`` with the model's ``options`` from
        the protocol file and gets an object with ``fit(samples)`` and
        ``score(samples) -> harness.Scores``. A factory may carry ``why_unavailable()``
        returning a reason (str) when it cannot run on this machine, or ``None``; and
        ``version`` (str), which enters the score-cache key.

    .. versionadded:: 0.1

    """


# -------------------------------------------------------------------------------------
# Data
# -------------------------------------------------------------------------------------


@hookspec
def harness_datasets() -> Mapping[str, Callable[..., DatasetSource]]:
    """Register dataset layouts by name (``dataset.layout`` in a protocol).

    Returns:
        A mapping from layout name to a callable ``layout(root, **options)`` that returns a
        :class:`harness.data.DatasetSource` (``categories()`` and ``load(category)``).
        ``root`` is ``dataset.root`` (a :class:`pathlib.Path` or ``None``) and ``options``
        are the layout's own keys from ``dataset.options``.

    .. versionadded:: 0.1

    """


# -------------------------------------------------------------------------------------
# Calibration
# -------------------------------------------------------------------------------------


@hookspec
def harness_calibrations() -> Mapping[str, Callable[..., Calibrator]]:
    """Register threshold calibrators by name (entries of ``calibrations`` in a protocol).

    Returns:
        A mapping from calibration name to a factory ``factory(**options) -> Calibrator``.
        A calibrator has ``oracle`` (bool: it reads test labels, and reports label it as an
        oracle) and ``threshold(data: CalibrationData) -> float``; non-oracle calibrators
        receive no test data at all.

    .. versionadded:: 0.1

    """


# -------------------------------------------------------------------------------------
# Analysis (protocol kinds)
# -------------------------------------------------------------------------------------


@hookspec
def harness_protocols() -> Mapping[str, Analysis]:
    """Register protocol kinds by name (the ``protocol`` key of a protocol file).

    Returns:
        A mapping from protocol kind to an :class:`harness.analyses.Analysis`: it turns cached
        scores into result rows, figures and report sections, and never fits a model itself.

    .. versionadded:: 0.1

    """
