"""The ``dataset.options`` of the ``folder`` layout, as a typed model (checked when a protocol is loaded)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from harness.config.types import Fraction, NonNegativeInt, OptionsModel, Str

Folder = Annotated[Str, Field(min_length=1)]


class FolderOptions(OptionsModel):
    """Options of layout ``folder``: one folder of normal images and one per defect type."""

    normal_dir: Folder = Field(description="folder of defect-free images, relative to the root")
    abnormal_dirs: Annotated[dict[Str, Folder] | tuple[Folder, ...], BeforeValidator(lambda v: v or {})] = Field(
        default_factory=dict, description="{defect_type: folder}, or a list of folders named by folder"
    )
    normal_test_dir: Folder | None = Field(None, description="folder of defect-free test images")
    test_normal_fraction: Fraction = Field(
        0.2, description="without normal_test_dir: share of normal_dir that becomes test normals"
    )
    split_seed: NonNegativeInt = Field(0, description="seed of that split")
    image_pattern: Folder | None = Field(None, description="glob of image files, e.g. '*.jpg' when masks lie beside")
    mask_dir: Folder | None = Field(None, description="folder of masks (default: each image's own folder)")
    mask_pattern: Folder | None = Field(None, description="mask file name from the image's {stem} or {name}")
    category: Str | None = Field(None, description="category name (default: the root folder's name)")
    families: dict[Str, Any] | None = Field(None, description="{family: [types]}")

    @field_validator("mask_pattern")
    @classmethod
    def _placeholders(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                pattern.format(stem="x", name="x.png")
            except (KeyError, IndexError, ValueError):
                raise ValueError("may use only the placeholders {stem} and {name}") from None
        return pattern
