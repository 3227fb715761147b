"""What ``harness validate`` found: per category the images of each role, masks and defect types."""

from __future__ import annotations

from collections.abc import Iterable

from harness.data.base import Category

COLUMNS = ("category", "train", "held-out", "test normal", "defect", "masks", "defect types")


def category_counts(category: Category, holdout_fraction: float) -> dict[str, object]:
    """Counts of one category as the run will see them (held-out as the seeded split takes it)."""
    train = category.split("train")
    test = category.split("test")
    defects = [r for r in test if r.label]
    own = category.split("holdout")  # a dataset's own held-out normals (MVTec AD 2 validation/good): not carved
    held_out = len(own) if own else round(len(train) * holdout_fraction)
    types = sorted({r.defect_type for r in defects})
    return {
        "category": category.name,
        "train": len(train) - (0 if own else held_out),
        "held-out": held_out,
        "test normal": len(test) - len(defects),
        "defect": len(defects),
        "masks": sum(1 for r in defects if r.mask_paths),
        "supervised": len(category.split("supervised")),
        "unlabelled": len(category.split("unlabelled")),
        "defect types": ", ".join(types) or "-",
    }


def dataset_table(categories: Iterable[Category], holdout_fraction: float) -> str:
    """A fixed-width table, one row per category (train = images the model is fitted on).

    ``supervised`` (labelled anomalies set aside for supervised models) shows only when there are any.
    """
    rows = [category_counts(c, holdout_fraction) for c in categories]
    optional = ("supervised", "unlabelled")  # shown only when some category has them
    columns = [c for c in (*COLUMNS[:-1], *optional, COLUMNS[-1]) if c not in optional or any(r[c] for r in rows)]
    cells = [columns] + [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns) - 1)]
    lines = []
    for line in cells:
        padded = [line[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(line[1:-1], widths[1:], strict=True)]
        lines.append("  ".join([*padded, line[-1]]))
    return "\n".join(lines)
