"""harness plugin: the field's public benchmarks as dataset layouts, and the ``precomputed`` model.

Layouts: ``loco``, ``visa``, ``mvtec_ad2``, ``mvtec_3d``, ``btech``, ``kolektor_sdd2``, ``mpdd``,
``real_iad`` (:mod:`harness_datasets.layouts`; README, "Datasets", cites each). Model:
``precomputed`` reads scores (and maps) a method wrote elsewhere, so that it is evaluated like
any model (:mod:`harness_datasets.precomputed`). The dataset audit: its checks
(``harness_dataset_audit``, :mod:`harness_datasets.audit`), and the audit of a run, cached, stored as
``audit.json`` and shown in the report (``harness_run_audit``, ``harness_report_sections``,
:mod:`harness_datasets.audit_run`). They use only the public ``harness`` modules, as a third
party's plugin would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import harness

__version__ = "0.1.0"


@harness.hookimpl
def harness_datasets() -> dict[str, object]:
    """The public benchmarks' layouts."""
    from harness_datasets import layouts

    return layouts.harness_datasets()


@harness.hookimpl
def harness_models() -> dict[str, object]:
    """The ``precomputed`` model."""
    from harness_datasets import precomputed

    return precomputed.harness_models()


@harness.hookimpl
def harness_dataset_audit(categories: list[Any], max_distance: int) -> list[dict[str, str]]:
    """Near-duplicates, conflicting labels, empty masks, masks on good images, unreadable files."""
    from dataclasses import asdict

    from harness_datasets.audit import audit

    return [asdict(finding) for finding in audit(categories, max_distance)]


@harness.hookimpl
def harness_run_audit(categories: list[Any], dataset: Any, cache_root: Path | None) -> dict[str, Any]:
    """The run's audit record (``audit.json``): cached by content; a failure is a note, never a failed run."""
    from harness_datasets.audit_run import audit_run

    return audit_run(categories, dataset, cache_root)


@harness.hookimpl
def harness_report_sections(out: Path | None) -> list[harness.ReportSection] | None:
    """The report's "Dataset audit" section, from the run's stored ``audit.json`` (never recomputed)."""
    from harness_datasets.audit_run import audit_section

    return [audit_section(out)] if out is not None else None
