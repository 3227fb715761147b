"""The ``dataset.options`` of the public-benchmark layouts and the ``precomputed`` model's options, as typed models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from harness.datasets import OptionsModel, Str

Families = dict[Str, Any] | None
FAMILIES = "{family: [types]} (or {type: family})"


class FamiliesOptions(OptionsModel):
    """Options of ``mvtec_3d`` and ``btech``: only the defect families."""

    families: Families = Field(None, description=FAMILIES)


class MVTecAD2Options(FamiliesOptions):
    """Options of layout ``mvtec_ad2``."""

    private: bool = Field(
        False, description="also score the unlabelled test_private and test_private_mixed sets (cached, exported)"
    )


class VisAOptions(FamiliesOptions):
    """Options of layout ``visa``."""

    split_file: Str = Field("split_csv/1cls.csv", description="the split CSV, relative to the root")


class KolektorSDD2Options(OptionsModel):
    """Options of layout ``kolektor_sdd2``."""

    train_defects: Literal["drop", "test"] = Field(
        "drop", description="defective training images: left out (drop) or moved to the test set (test)"
    )
    category: Str = Field("kolektor_sdd2", description="the category name")


class RealIADOptions(OptionsModel):
    """Options of layout ``real_iad``."""

    images: Str = Field("realiad_1024", description="image folder under the root (realiad_256, _512, _1024, ...)")
    splits: Str = Field("realiad_jsons/realiad_jsons", description="folder of the <category>.json split files")


class PrecomputedOptions(OptionsModel):
    """Options of model ``precomputed`` (files are checked to exist by its ``check_options``)."""

    root: Str = Field(description="the dataset root the listed paths are relative to")
    scores: Str | None = Field(None, description="CSV with columns path,score")
    maps: Str | None = Field(None, description="folder of maps mirroring the images' relative paths")
    map_range: tuple[float, float] | None = Field(None, description="[lo, hi]: what a PNG map's 0 and full scale mean")
