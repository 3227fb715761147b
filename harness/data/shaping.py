"""Dataset shaping: the protocol's categories, subsampled, rebalanced and split for supervision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from harness.data.base import Category, Record, subsample
from harness.data.checks import check_category
from harness.errors import DatasetError, ProtocolError, unknown_name_message


def open_dataset(config: Any, plugins: Any) -> Any:
    """Build the dataset source named by the protocol's layout."""
    layout = plugins.get("datasets", config.effective_layout, key="dataset.layout")
    try:
        return layout(config.root, **config.effective_options)
    except TypeError as exc:
        raise ProtocolError(
            f"invalid options for layout '{config.effective_layout}': {exc}", key="dataset.options"
        ) from None


def supervise(test: list[Record], fraction: float, rng: np.random.Generator) -> list[Record]:
    """A seeded ``fraction`` of each defect type's test images, as training data for supervised models.

    Returned as extra records of split "supervised" (each type keeps at least one image out of
    it); the test split keeps every image. Models that train on no label are evaluated on the
    whole test set; a supervised model's evaluation leaves its own training images out
    (``harness.analyses.base.evaluation_view``), and the benchmark compares every model on the
    images left after the split in a separate table.
    """
    chosen: set[int] = set()
    for defect_type in sorted({r.defect_type for r in test if r.label}):
        members = [i for i, r in enumerate(test) if r.defect_type == defect_type]
        count = min(round(fraction * len(members)), len(members) - 1)
        if count > 0:
            chosen.update(rng.choice(members, size=count, replace=False).tolist())
    return [replace(r, split="supervised") for i, r in enumerate(test) if i in chosen]


def rebalance(
    train: list[Record], test: list[Record], share: float, rng: np.random.Generator, keep_train: int = 10
) -> tuple[list[Record], list[Record]]:
    """Move seeded training normals into the test set until ``share`` of it is good (paper 001).

    At least ``keep_train`` training images stay (or all, when there are fewer).
    """
    good = sum(1 for r in test if not r.label)
    defective = len(test) - good
    wanted = int(np.ceil(share * defective / (1 - share))) - good
    movable = max(0, len(train) - keep_train)
    count = min(max(wanted, 0), movable)
    if count == 0:
        return train, test
    chosen = set(rng.choice(len(train), size=count, replace=False).tolist())
    moved = [replace(r, split="test") for i, r in enumerate(train) if i in chosen]
    return [r for i, r in enumerate(train) if i not in chosen], test + moved


def shape_category(category: Category, config: Any, supervision: Mapping[str, Any] | None) -> Category:
    """One category as the protocol asks: subsampled, rebalanced, supervision split; checked usable."""
    rng = np.random.default_rng(0)  # the subsample is part of the data, the same for every seed
    train = subsample(category.split("train"), config.max_train_images, rng)
    test: list[Record] = []
    for defect_type in sorted({r.defect_type for r in category.split("test")}):
        records = [r for r in category.split("test") if r.defect_type == defect_type]
        test.extend(subsample(records, config.max_test_images_per_type, rng))
    if config.rebalance_normals:
        train, test = rebalance(train, test, config.rebalance_normals, rng)
    supervised: list[Record] = []
    if supervision:
        seed = np.random.default_rng(supervision.get("seed", 0))
        supervised = supervise(test, supervision["anomaly_train_fraction"], seed)
    if len(train) < 2:
        raise DatasetError(
            f"category '{category.name}' has {len(train)} defect-free training images; at least 2 are needed"
        )
    if not any(r.label for r in test) or all(r.label for r in test):
        raise DatasetError(
            f"category '{category.name}' needs both defect-free and defective test images; "
            f"found {len(test)} test images ({sum(r.label for r in test)} defective)"
        )
    kept = category.split("holdout") + category.split("unlabelled")  # a dataset's own held-out normals, private tests
    shaped = Category(category.name, train + kept + test + supervised, category.families)
    check_category(shaped)  # headers of every image and mask it uses, before anything is fitted
    return shaped


def load_categories(source: Any, config: Any, supervision: Mapping[str, Any] | None = None) -> list[Category]:
    """The protocol's categories, subsampled as asked, each checked to be usable."""
    found = source.categories()
    if not found:
        raise DatasetError(f"no categories found under {config.root}; check dataset.root and dataset.layout")
    names = list(config.categories) if config.categories else found
    for name in names:
        if name not in found:
            raise ProtocolError(unknown_name_message("category", name, found), key="dataset.categories")
    return [shape_category(source.load(name), config, supervision) for name in names]
