"""Dataset layouts (MVTec AD, generic folder, embedded synthetic) and records."""

from harness.data.base import Category, DatasetSource, Record, load_image, load_mask, samples_for

__all__ = ["Category", "DatasetSource", "Record", "load_image", "load_mask", "samples_for"]
