"""Checks of a category's files before anything is fitted: headers only, no image is decoded here.

Each problem is one line naming the file and what to do. Found at planning time, a bad file
costs nothing; found while scoring, it would have cost every fit before it. Files whose
header is fine but whose pixel data is damaged are found when the harness decodes them to
hand them over, still before the job's detector is built.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from harness.data.base import READ_ERRORS, Category, open_image, unreadable_error
from harness.data.memo import remembered
from harness.errors import DatasetError


def image_size(path: Path, kind: str = "image") -> tuple[int, int]:
    """(width, height) from the file's header; unreadable or oversized files are a :class:`DatasetError`."""
    try:
        with open_image(path) as image:
            return image.size
    except READ_ERRORS as exc:
        raise unreadable_error(kind, path, exc) from None


def check_category(category: Category) -> None:
    """Every image and mask of ``category`` opens, is not a decompression bomb, and masks fit their images.

    In a category where some defect images have masks, every defect image must have one: a
    missing mask would count as "no defect pixel" and quietly inflate pixel metrics. A category
    whose files passed before and have not changed since (:mod:`harness.data.memo`) is not opened again.
    """
    purpose = f"checked|{Image.MAX_IMAGE_PIXELS}"  # a lowered bomb limit checks again
    remembered(purpose, list(category.records), lambda: _check(category))


def _check(category: Category) -> str:
    records = list(category.records)
    sizes = {record.path: image_size(record.path) for record in records}
    defects = [r for r in records if r.label]
    with_masks = [r for r in defects if r.mask_paths]
    if with_masks and len(with_masks) < len(defects):
        missing = [r for r in defects if not r.mask_paths]
        raise DatasetError(
            f"defect image {missing[0].path} has no mask while {len(with_masks)} other defect images of "
            f"category '{category.name}' have one ({len(missing)} without); add the missing masks or move "
            "those images out of the dataset"
        )
    for record in with_masks:
        size = sizes[record.path]
        for mask in record.mask_paths:
            mask_size = image_size(mask, "mask")
            if mask_size != size:
                raise DatasetError(
                    f"mask {mask} is {mask_size[0]}x{mask_size[1]} pixels but its image {record.path} is "
                    f"{size[0]}x{size[1]}; give the mask the image's size (or remove both)"
                )
    return "ok"
