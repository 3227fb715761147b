"""The API for dataset-layout authors beyond ``harness.__all__``: records, categories and folder helpers.

Public, like :mod:`harness` itself: the public benchmarks' layouts and the ``precomputed``
model (plugins/harness_datasets) import from here and from ``harness`` only, so a third
party's layout can do everything they do. Every name is imported on first use. ::

    from harness.datasets import Category, MVTecLayout, Record
"""

from __future__ import annotations

from harness.lazy import lazy_names

_NAMES = {
    "harness.config.types": "Bool Float NonNegativeInt OptionsModel PositiveInt Str",
    "harness.data.base": "IMAGE_SUFFIXES NORMAL Category Record load_image",
    "harness.data.layouts": "MVTecLayout families_from images_in",
}
_PRIVATE = {"families_from": "_families_from", "images_in": "_images"}
"""Public spellings of the folder layouts' helpers: a ``{type: family}`` mapping, a folder's images."""

__all__, __getattr__, __dir__ = lazy_names("harness.datasets", _NAMES, _PRIVATE)
