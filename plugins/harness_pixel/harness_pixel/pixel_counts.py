"""Exact pixel-metric curves from per-value counts, a batch of images at a time.

Cached anomaly maps are float16: at most 65,536 distinct values. Every float16 bit pattern is
mapped to an ordered bin (:func:`order_keys`), so the number of normal and defect pixels at each
distinct value is a ``np.bincount`` per batch of images, and cumulative sums of those counts from
the highest value down give the ROC and precision-recall points at every distinct threshold: the
same points scikit-learn's ``roc_auc_score`` and ``average_precision_score`` compute after sorting
every pixel, ties included, in memory that does not grow with the number of pixels.

Maps that are not float16 values (a plugin's float32 maps used directly) get ``None`` from
:func:`value_counts`, and the callers fall back to the exact sort-based path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

BATCH_PIXELS = 1 << 22
"""Pixels per batch (about 4 M): bounds the temporary arrays of one batch to tens of MB."""
BINS = 1 << 16


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(key of each float16 bit pattern, float16 value of each key): keys sort as the values do; -0 shares +0's key."""
    bits = np.arange(BINS, dtype=np.int64)
    keys = np.where(bits & 0x8000, 0xFFFF - bits, bits | 0x8000)
    keys[0x8000] = 0x8000  # -0.0 ties with +0.0
    values = np.zeros(BINS, dtype=np.float16)
    values[keys[::-1]] = bits[::-1].astype(np.uint16).view(np.float16)  # +0.0 (bits 0) written last for key 0x8000
    return keys.astype(np.uint16), values


def order_keys(half: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 keys of float16 values (equal values, -0.0 and +0.0 included, share a key)."""
    return _tables()[0][np.ascontiguousarray(half).view(np.uint16)]


def key_values() -> np.ndarray:
    """The float16 value of each key (index = key)."""
    return _tables()[1]


def batches(n_images: int, image_pixels: int) -> Iterator[slice]:
    """Slices of consecutive images holding about :data:`BATCH_PIXELS` pixels each."""
    step = max(1, BATCH_PIXELS // max(1, image_pixels))
    for start in range(0, n_images, step):
        yield slice(start, min(n_images, start + step))


def as_half(batch: np.ndarray, dtype: type = np.float32) -> np.ndarray | None:
    """``batch`` as float16 when each value, seen as ``dtype``, is a finite float16 value; else ``None``.

    ``dtype`` is what the sort-based path would have compared (float32 for pixel AUROC and AUPR,
    float64 for AUPRO), so a value counts as float16 only when nothing is lost at that precision.
    """
    if batch.dtype == np.float16:
        half = batch
    else:
        wide = np.asarray(batch, dtype=dtype)
        half = wide.astype(np.float16)
        if not (half == wide).all():  # NaN is never equal: such maps take the sort-based path
            return None
    return half if np.isfinite(half).all() else None


def value_counts(
    maps: np.ndarray,
    masks: np.ndarray,
    dtype: type = np.float32,
    defect_weights: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(normal pixels per key, defect pixels per key) over all images; ``None`` when the maps are not float16.

    With ``defect_weights`` (a function of a batch of masks returning one float weight per defect
    pixel, in ``mask`` order), the second array sums those weights per key instead of counting.
    The pixels of one job are counted once (:func:`_held`): pixel AUROC, pixel AUPR, AUPRO's
    weighted counts and the oracle pixel threshold share the plain counts and the defect pixels' keys.
    """
    held = _held(maps, masks, dtype)
    if held is None:
        return None
    normal, defect = held["counts"]
    if defect_weights is None:
        return normal.copy(), defect.copy()
    weighted = np.zeros(BINS, dtype=np.float64)
    for part, keys in zip(batches(len(maps), _image_pixels(maps)), held["defect_keys"], strict=True):
        weighted += np.bincount(keys, weights=defect_weights(masks[part]), minlength=BINS)
    return normal.copy(), weighted


_LAST: dict[str, Any] = {}
"""The last counts, with the two arrays they were counted from (one job's, while its metrics run)."""


def _image_pixels(maps: np.ndarray) -> int:
    return int(np.prod(maps.shape[1:])) if len(maps) else 0


def _held(maps: np.ndarray, masks: np.ndarray, dtype: type) -> dict[str, Any] | None:
    """The counts of ``maps`` and ``masks`` (counted now, or held from the last call with the same arrays).

    Arrays are the same when they are the same objects or hold the same values (a job's maps and
    masks loaded again: comparing them costs a fraction of counting them). Float16 and float32
    maps are exact at either precision, so only other maps are counted again for another ``dtype``.
    """
    exact = np.dtype(getattr(maps, "dtype", np.float64)) in (np.float16, np.float32)
    precision = None if exact else np.dtype(dtype).str
    arrays = _LAST.get("arrays", (None, None))
    if _LAST.get("precision") != precision or not (_same(arrays[0], maps) and _same(arrays[1], masks)):
        _LAST.clear()  # the previous job's arrays are let go first
        _LAST.update(arrays=(maps, masks), precision=precision, held=_counted(maps, masks, dtype))
    return _LAST["held"]


def _same(held: Any, given: Any) -> bool:
    if held is given:
        return True
    if not isinstance(held, np.ndarray) or not isinstance(given, np.ndarray):
        return False
    return held.shape == given.shape and held.dtype == given.dtype and bool(np.array_equal(held, given))


def _counted(maps: np.ndarray, masks: np.ndarray, dtype: type) -> dict[str, Any] | None:
    """Plain counts per key, and the keys of each batch's defect pixels (in mask order); ``None`` if not float16.

    Pixels are counted per float16 bit pattern, and the 65,536 counts then summed per key (the
    same integers as counting each pixel's key, without looking up a key for every pixel).
    """
    table = _tables()[0]
    by_bits = np.zeros(2 * BINS, dtype=np.int64)
    defect_keys = []
    for part in batches(len(maps), _image_pixels(maps)):
        half = as_half(np.asarray(maps[part]), dtype)
        if half is None:
            return None
        truth = np.asarray(masks[part], dtype=bool).ravel()
        bits = np.ascontiguousarray(half).view(np.uint16).ravel()
        defect_keys.append(table[bits[truth]])
        both = bits.astype(np.intp)
        both[truth] += BINS  # one bincount: normal pixels in the first BINS bins, defect pixels after
        by_bits += np.bincount(both, minlength=2 * BINS)
    normal, defect = np.zeros(BINS, dtype=np.int64), np.zeros(BINS, dtype=np.int64)
    np.add.at(normal, table, by_bits[:BINS])
    np.add.at(defect, table, by_bits[BINS:])
    return {"counts": (normal, defect), "defect_keys": defect_keys}


def defect_regions(maps: np.ndarray, masks: np.ndarray, dtype: type = np.float64) -> dict[str, Any] | None:
    """The held pixels of one job with its defect regions; ``None`` when the maps are not float16.

    ``{"counts": (normal, defect), "defect_keys": [...], "regions": [(labels, count), ...]}``: per batch
    of :func:`batches`, the keys of its defect pixels and their 8-connected region labels (1..count,
    never across images), both in mask order. Labelled once per job: AUPRO and PRO share them.
    """
    held = _held(maps, masks, dtype)
    if held is not None and "regions" not in held:
        from scipy.ndimage import label as connected_components

        structure = np.zeros((3, 3, 3), dtype=int)
        structure[1] = 1  # 8-connected within an image, never across images
        regions = []
        for part in batches(len(maps), _image_pixels(maps)):
            labels, count = connected_components(np.asarray(masks[part], dtype=bool), structure=structure)
            regions.append((labels[labels > 0], count))
        held["regions"] = regions
    return held


def descending(normal: np.ndarray, defect: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, cumulative normal, cumulative defect) at each distinct value present, from the highest down.

    The cumulative sums are scikit-learn's ``fps`` and ``tps`` at its distinct-value thresholds.
    """
    present = np.flatnonzero((normal > 0) | (defect > 0))[::-1]
    return present, np.cumsum(normal[present]), np.cumsum(defect[present])


def roc_auc(fps: np.ndarray, tps: np.ndarray) -> float:
    """Area under the ROC curve from ``fps``/``tps`` at descending thresholds, as ``sklearn.metrics.roc_auc_score``.

    The same steps as ``roc_curve(drop_intermediate=True)`` followed by ``auc``: collinear points
    dropped, (0, 0) prepended, rates over the last counts, trapezoids.
    """
    fps, tps = fps.astype(np.float64), tps.astype(np.float64)
    if fps.size > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def average_precision(fps: np.ndarray, tps: np.ndarray) -> float:
    """Average precision from ``fps``/``tps`` at descending thresholds (``sklearn.metrics.average_precision_score``)."""
    fps, tps = fps.astype(np.float64), tps.astype(np.float64)
    precision = np.r_[np.flip(tps / (tps + fps)), 1.0]
    recall = np.r_[np.flip(tps / tps[-1]), 0.0]
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))
