"""harness plugin: the field's public benchmarks as dataset layouts, and the ``precomputed`` model.

Layouts: ``visa``, ``mvtec_ad2``, ``mvtec_3d``, ``btech``, ``kolektor_sdd2``, ``mpdd``,
``real_iad`` (:mod:`harness_datasets.layouts`; README, "Datasets", cites each). Model:
``precomputed`` reads scores (and maps) a method wrote elsewhere, so that it is evaluated like
any model (:mod:`harness_datasets.precomputed`). The dataset audit's checks
(``harness_dataset_audit``, :mod:`harness_datasets.audit`). They use only ``harness`` and
:mod:`harness.datasets`, as a third party's layout would.
"""

from __future__ import annotations

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
