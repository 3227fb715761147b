"""harness plugin: the evaluation paradigms, as protocol kinds.

Kinds: ``kde_vs_test`` (paper 000: test-calibrated vs KDE-calibrated thresholds),
``partial_anomaly`` and ``missing_type`` (paper 000's stress experiments), ``per_type`` (paper
003), ``multiclass_unified``, ``few_shot``, ``noisy_training``, ``continual`` (paper 004) and
``benchmark`` (papers 001, 004). Each module registers its kind; this package gathers them under
one entry point. They use only ``harness`` and :mod:`harness.analysis`, as a third party's kind
would, and import pandas, matplotlib and scipy on first use.
"""

from __future__ import annotations

import importlib

import harness

__version__ = "0.2.0"

KINDS = (
    "kde_vs_test",
    "partial_anomaly",
    "missing_type",
    "multiclass",
    "benchmark",
    "per_type",
    "few_shot",
    "noisy_training",
    "continual",
)
"""The modules that register a protocol kind (``sweep``, ``stress``, ``subsets``, ``kde_figures`` are helpers)."""


@harness.hookimpl
def harness_protocols() -> dict[str, object]:
    """Every paradigm kind, by name."""
    kinds: dict[str, object] = {}
    for module in KINDS:
        kinds.update(importlib.import_module(f"harness_paradigms.{module}").harness_protocols())
    return kinds
