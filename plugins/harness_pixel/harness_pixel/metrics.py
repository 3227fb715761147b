"""Pixel-level metrics, each a plain function of (maps, masks): the test images' anomaly maps (N, H, W) and masks.

scikit-learn's definitions for pixel AUROC and AUPR (counted per distinct float16 value,
:mod:`harness_pixel.pixel_counts`), anomalib's for PRO, the authors' ``proportion-localised`` package
for PL; AUPRO and PRO are written out here (AUPRO the MVTec AD definition, tested against anomalib's
and an independent implementation; PRO against anomalib's ``pro_score``). Registered through
``harness_metrics`` (:mod:`harness_pixel`); moved from the core's ``harness.metrics`` unchanged.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from harness_pixel import pixel_counts


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUROC over every pixel of every test image (scikit-learn's ``roc_auc_score``).

    Float16 maps (the score cache's) are counted per distinct value a batch of images at a time
    (:mod:`harness_pixel.pixel_counts`): the same ROC points and area as scikit-learn's sort over every
    pixel, in bounded memory. Other maps go through scikit-learn as float32.
    """
    curve = _pixel_curve(maps, masks)
    if curve is None:
        from sklearn.metrics import roc_auc_score

        truth = np.asarray(masks, dtype=bool).ravel()
        if truth.all() or not truth.any():
            return float("nan")
        return float(roc_auc_score(truth, np.asarray(maps, dtype=np.float32).ravel()))
    return pixel_counts.roc_auc(*curve) if curve else float("nan")


def _pixel_curve(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[()] | None:
    """(fps, tps) at every distinct value, highest first; ``()`` with a single class; ``None`` for non-float16 maps."""
    counts = pixel_counts.value_counts(maps, masks, np.float32)
    if counts is None:
        return None
    _, fps, tps = pixel_counts.descending(*counts)
    if fps.size == 0 or fps[-1] == 0 or tps[-1] == 0:
        return ()
    return fps, tps


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, normalised to [0, 1].

    As in the MVTec AD evaluation: each connected ground-truth region (8-connectivity) counts
    equally; the false-positive rate is over pixels outside every region, across all images.
    Float16 maps are counted per distinct value a batch of images at a time (normal pixels, and
    each defect pixel weighted by one over its region's size); other maps are sorted whole.
    """
    held = pixel_counts.defect_regions(maps, masks, np.float64)
    if held is None:
        return _aupro_sorted(maps, masks, fpr_limit)
    weighted = np.zeros(pixel_counts.BINS, dtype=np.float64)
    n_regions = 0
    for keys, (labels, count) in zip(held["defect_keys"], held["regions"], strict=True):
        weighted += np.bincount(keys, weights=1.0 / np.bincount(labels)[labels], minlength=pixel_counts.BINS)
        n_regions += count
    _, fp, overlap = pixel_counts.descending(held["counts"][0].copy(), weighted)
    n_normal = fp[-1] if fp.size else 0
    if n_regions == 0 or n_normal == 0:
        return float("nan")
    return _area_up_to(fp / n_normal, overlap / n_regions, fpr_limit)


def _area_up_to(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    """Normalised area under PRO(FPR) from (0, 0) through the points given (one per distinct threshold)."""
    fpr, pro = np.r_[0.0, fpr], np.r_[0.0, pro]
    pro_at_limit = np.interp(fpr_limit, fpr, pro)
    keep = fpr <= fpr_limit
    fpr, pro = np.r_[fpr[keep], fpr_limit], np.r_[pro[keep], pro_at_limit]
    return float(np.trapezoid(pro, fpr) / fpr_limit)


def _aupro_sorted(maps: np.ndarray, masks: np.ndarray, fpr_limit: float) -> float:
    """:func:`aupro` by sorting every pixel (maps that are not float16 values)."""
    from scipy.ndimage import label as connected_components

    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    fp_weight = np.zeros(maps.shape, dtype=np.float64)
    pro_weight = np.zeros(maps.shape, dtype=np.float64)
    n_regions = 0
    for index, mask in enumerate(masks):
        regions, count = connected_components(mask, structure=np.ones((3, 3), dtype=int))
        fp_weight[index][regions == 0] = 1.0
        if count:
            sizes = np.bincount(regions.ravel())
            pro_weight[index] = np.where(regions > 0, 1.0 / sizes[regions], 0.0)
            n_regions += count
    n_normal_pixels = fp_weight.sum()
    if n_regions == 0 or n_normal_pixels == 0:
        return float("nan")
    order = np.argsort(maps.ravel(), kind="stable")[::-1]
    sorted_scores = maps.ravel()[order]
    fpr = np.cumsum(fp_weight.ravel()[order]) / n_normal_pixels
    pro = np.cumsum(pro_weight.ravel()[order]) / n_regions
    # one point per distinct threshold: keep the last index of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    return _area_up_to(fpr[last], pro[last], fpr_limit)


PL_SIDE = 256
"""The image side the ``proportion-localised`` package is written for (VisionAD evaluates at 256 x 256)."""


def _to_side(stack: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    import cv2

    if stack.shape[1:] == (side, side):
        return stack
    return np.stack([cv2.resize(item, (side, side), interpolation=interpolation) for item in stack])


def _proportion_localised() -> types.ModuleType:
    """The ``proportion_localised`` package, imported without importing torch when torch is not loaded yet.

    The package imports ``torch.Tensor`` only for its type hints (1.5-2 s and several hundred MB
    of import for nothing it calls); while it is imported, a stand-in ``torch`` module holding a
    placeholder ``Tensor`` class answers that one import, and is removed right after. Its
    dependencies are imported first, so only the package's own ``from torch import Tensor`` sees it.
    """
    if "proportion_localised" in sys.modules or "torch" in sys.modules:
        import proportion_localised

        return proportion_localised
    import cv2  # noqa: F401  (the package's dependencies, imported for real before the stand-in exists)
    import scipy.spatial.distance  # noqa: F401
    import shapely.geometry  # noqa: F401
    import skimage.measure  # noqa: F401

    stand_in = types.ModuleType("torch")
    stand_in.Tensor = type("Tensor", (), {})  # type: ignore[attr-defined]
    sys.modules["torch"] = stand_in
    try:
        import proportion_localised
    finally:
        if sys.modules.get("torch") is stand_in:
            del sys.modules["torch"]
    return proportion_localised


def proportion_localised(maps: np.ndarray, masks: np.ndarray) -> float:
    """PL (Taylor et al., VisionAD, TMLR 2024; reported by paper 002 §5), computed by the authors' package.

    ``proportion_localised.calculate`` (PyPI ``proportion-localised``) takes each ground-truth
    anomaly's minimum-area rotated box, scales its sides up to at least 1/8 of the image side,
    merges boxes that overlap by more than 1/3, counts an anomaly as localised when the IoU of
    the thresholded map (restricted to the pixels nearest that anomaly) with its box exceeds 0.3,
    and returns the best proportion over 25 thresholds at evenly spaced percentiles of the maps.
    The package assumes 256 x 256 inputs, so maps are resized bilinearly and masks by nearest
    neighbour to 256 x 256 first; only images with a defect pixel take part (a defect-free image
    has no anomaly to localise). Higher map values mean more anomalous, as everywhere here.
    """
    import cv2

    reference = _proportion_localised()
    masks = np.asarray(masks, dtype=bool)
    defective = masks.reshape(len(masks), -1).any(axis=1)
    if not defective.any():
        return float("nan")
    heatmaps = _to_side(np.asarray(np.asarray(maps)[defective], dtype=np.float32), PL_SIDE, cv2.INTER_LINEAR)
    targets = _to_side(masks[defective].astype(np.uint8), PL_SIDE, cv2.INTER_NEAREST)
    return float(
        reference.calculate(heatmaps, targets, anomaly_likelihood_definitely_increasing=True, return_score_only=True)
    )


def pixel_aupr(maps: np.ndarray, masks: np.ndarray) -> float:
    """Pixel-level AUPR (paper 004 §4.2): scikit-learn's average precision over every test pixel.

    Counted per distinct value for float16 maps, as :func:`pixel_auroc`; scikit-learn otherwise.
    """
    curve = _pixel_curve(maps, masks)
    if curve is None:
        from sklearn.metrics import average_precision_score

        truth = np.asarray(masks, dtype=bool).ravel()
        if truth.all() or not truth.any():
            return float("nan")
        return float(average_precision_score(truth, np.asarray(maps, dtype=np.float32).ravel()))
    return pixel_counts.average_precision(*curve) if curve else float("nan")


def pro(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> float:
    """PRO (paper 004 §4.2): anomalib's per-region overlap at one threshold (``anomalib.metrics.pro.pro_score``).

    The mean over connected ground-truth regions (8-connected, as anomalib's
    ``connected_components_cpu``, which calls ``cv2.connectedComponents``) of the share of each
    region's pixels the map flags (``normalised > threshold``, compared in float32 as anomalib
    does). Anomalib applies its 0.5 threshold to maps its post-processor normalised with a
    threshold learnt on validation masks; the harness gives a model no masks, so the maps are
    min-max normalised over the evaluated images instead (anomalib's ``MinMax`` convention) and
    cut at ``threshold``. Written out in numpy a batch of images at a time (anomalib's
    ``pro_score`` is the reference in the tests; it sums the per-region shares in float32, so
    the two agree to about 1e-7).
    """
    masks = np.asarray(masks, dtype=bool)
    if not masks.any():
        return float("nan")
    held = pixel_counts.defect_regions(maps, masks, np.float64)
    if held is None:
        return _pro_per_pixel(maps, masks, threshold)
    normal, defect = held["counts"]
    present = np.flatnonzero((normal > 0) | (defect > 0))
    values = pixel_counts.key_values()[present].astype(np.float64)
    flagged = np.zeros(pixel_counts.BINS, dtype=bool)  # per key, as each pixel of that value would be
    flagged[present] = _flagged(values, values[0], values[-1], threshold)
    shares, n_regions = [], 0
    for keys, (labels, count) in zip(held["defect_keys"], held["regions"], strict=True):
        sizes = np.bincount(labels, minlength=count + 1)[1:]
        hits = np.bincount(labels[flagged[keys]], minlength=count + 1)[1:]
        shares.append(hits / sizes)
        n_regions += count
    return _pro_value(shares, n_regions, int(defect.sum()) == masks.size)


def _flagged(values: np.ndarray, low: np.float64, high: np.float64, threshold: float) -> np.ndarray:
    """Whether each of ``values`` (float64) is flagged: min-max normalised to [low, high], compared in float32."""
    span = high - low
    normalised = (values - low) / span if span > 0 else np.zeros_like(values)
    return normalised.astype(np.float32) > np.float32(threshold)


def _pro_value(shares: list[np.ndarray], n_regions: int, all_defect: bool) -> float:
    n_labels = n_regions + int(not all_defect)  # anomalib counts the background as a label when present
    if n_labels == 1:
        return 1.0
    return float(np.concatenate(shares).sum() / (n_labels - 1))


def _pro_per_pixel(maps: np.ndarray, masks: np.ndarray, threshold: float) -> float:
    """:func:`pro` flagging every pixel (maps that are not float16 values)."""
    from scipy.ndimage import label as connected_components

    low, high = np.float64(np.min(maps)), np.float64(np.max(maps))
    structure = np.zeros((3, 3, 3), dtype=int)
    structure[1] = 1  # 8-connected within an image
    shares, n_regions = [], 0
    for part in pixel_counts.batches(len(maps), int(np.prod(masks.shape[1:]))):
        flagged = _flagged(np.asarray(maps[part], dtype=np.float64), low, high, threshold)
        regions, count = connected_components(masks[part], structure=structure)
        sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]
        hits = np.bincount(regions[flagged], minlength=count + 1)[1:]
        shares.append(hits / sizes)
        n_regions += count
    return _pro_value(shares, n_regions, bool(masks.all()))


PIXEL_METRICS = {
    "pixel_auroc": pixel_auroc,
    "pixel_aupr": pixel_aupr,
    "aupro": aupro,
    "pro": pro,
    "pl": proportion_localised,
}
"""Pixel-level metrics computed for every job with maps and masks: name -> f(maps, masks) -> float."""
