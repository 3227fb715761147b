"""Thresholded segmentation, honestly calibrated: SegF1 and recall at the operating point by defect type and size.

SegF1 (MVTec AD 2, Heckler-Kram et al., "The MVTec AD 2 Dataset: Advanced Scenarios for
Unsupervised Anomaly Detection", 2025, arXiv:2503.21622, Sec. 4): binarise every test image's
anomaly map at ONE threshold and compute the F1 of the pixels, with true and false positives
and false negatives pooled over all test images (defect-free ones included: their flagged
pixels are false positives).

The deployable pixel threshold sees only the held-out normals' maps: their pixel mean plus three
standard deviations (the statistical binarisation used on MVTec AD 2's ``validation`` normals, as
RoBiS, Li et al., arXiv:2505.21152, describes it; ``harness.runs.holdout_pixel_threshold``). The
threshold that maximises SegF1 on the test masks is reported beside it as a labelled oracle.

Recall at the operating point, per defect type and per defect size: the share of defective test
images whose image score reaches the reference deployable image threshold (``kde``, else the first
non-oracle calibration), and the share of their defect pixels above the deployable pixel
threshold. Size classes by the mask's share of the image area: small < 0.1 %, medium 0.1-1 %,
large >= 1 % (:data:`SIZE_BOUNDS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import AnalysisContext, FigureRecord, JobData, reference_calibration
from harness.runs import holdout_pixel_threshold
from harness_pixel.pixel_counts import batches, descending, key_values, value_counts

SIZE_BOUNDS = (0.001, 0.01)
"""Mask area as a share of the image: below the first bound small, below the second medium, else large."""


def seg_f1(maps: np.ndarray, masks: np.ndarray, threshold: float) -> float:
    """Pixel F1 pooled over all images at ``threshold`` (a pixel is flagged when its score >= threshold).

    Counted a batch of images at a time (memory bounded whatever the number of images).
    """
    if not np.isfinite(threshold):
        return float("nan")
    tp = fp = fn = 0
    for part in batches(len(maps), _image_pixels(maps)):
        flagged, truth = np.asarray(maps[part]) >= threshold, np.asarray(masks[part], dtype=bool)
        hits = int(np.count_nonzero(flagged & truth))
        tp, fp, fn = tp + hits, fp + int(np.count_nonzero(flagged)) - hits, fn + int(np.count_nonzero(truth)) - hits
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _image_pixels(maps: np.ndarray) -> int:
    return int(np.prod(np.shape(maps)[1:])) if len(maps) else 0


def oracle_pixel_threshold(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """(threshold, SegF1) maximising SegF1 on the test masks: an oracle, reported as such.

    scikit-learn's ``precision_recall_curve`` over every pixel, the lowest threshold among equal
    best F1s; float16 maps are counted per distinct value (:mod:`harness_pixel.pixel_counts`) to the
    same curve in bounded memory.
    """
    counts = value_counts(maps, masks, np.float64)
    if counts is None:
        return _oracle_sorted(maps, masks)
    keys, fps, tps = descending(*counts)
    if not tps.size or tps[-1] == 0:
        return float("nan"), float("nan")
    fps, tps = fps.astype(np.float64), tps.astype(np.float64)
    precision, recall = tps / (tps + fps), tps / tps[-1]
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    best = int(np.argmax(f1[::-1]))  # ascending thresholds, as scikit-learn orders them: the lowest best
    index = f1.size - 1 - best
    return float(key_values()[keys[index]]), float(f1[index])


def _oracle_sorted(maps: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """:func:`oracle_pixel_threshold` by scikit-learn over every pixel (maps that are not float16 values)."""
    from sklearn.metrics import precision_recall_curve

    truth = np.asarray(masks, dtype=bool).ravel()
    if not truth.any():
        return float("nan"), float("nan")
    precision, recall, thresholds = precision_recall_curve(truth, np.asarray(maps, dtype=np.float64).ravel())
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    best = int(np.argmax(f1[:-1]))
    return float(thresholds[best]), float(f1[best])


def size_class(area_share: float, bounds: tuple[float, float] = SIZE_BOUNDS) -> str:
    """``small``, ``medium`` or ``large`` for a mask covering ``area_share`` of its image."""
    return "small" if area_share < bounds[0] else "medium" if area_share < bounds[1] else "large"


def job_segmentation(
    job: JobData, arrays: tuple[np.ndarray | None, np.ndarray | None] | None = None
) -> dict[str, float]:
    """SegF1 at the held-out threshold and the oracle, for one job; NaN without maps or masks.

    ``arrays``: the job's (maps, masks) when already loaded.
    """
    maps, masks = arrays or (job.load_maps(), job.load_masks())
    empty = {"seg_threshold": float("nan"), "seg_f1": float("nan")}
    if maps is None or masks is None or not masks.any():
        return {**empty, "seg_threshold_oracle": float("nan"), "seg_f1_oracle": float("nan")}
    threshold = holdout_pixel_threshold(job.load_holdout_maps())
    oracle, oracle_f1 = oracle_pixel_threshold(maps, masks)
    return {
        "seg_threshold": threshold,
        "seg_f1": seg_f1(maps, masks, threshold),
        "seg_threshold_oracle": oracle,
        "seg_f1_oracle": oracle_f1,
    }


def recall_at_operating_point(
    job: JobData,
    image_threshold: float,
    pixel_threshold: float,
    arrays: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> pd.DataFrame:
    """Per defect type and size class: defective images, image recall and pixel recall at the operating point.

    ``arrays``: the job's (maps, masks) when already loaded.
    """
    test = job.test
    defective = np.flatnonzero(test["label"].to_numpy(int) == 1)
    maps, masks = arrays or (job.load_maps(), job.load_masks())
    area, pixels = np.full(defective.size, np.nan), np.full(defective.size, np.nan)
    if masks is not None:
        area, pixels = _defect_pixels(maps, masks, defective, pixel_threshold)
    sizes = [size_class(a) if np.isfinite(a) and a > 0 else "no mask" for a in area]
    return pd.DataFrame(
        {
            "defect_type": test["defect_type"].to_numpy()[defective],
            "size": sizes,
            "detected": (test["score"].to_numpy()[defective] >= image_threshold).astype(float),
            "pixel_recall": pixels,
        },
        columns=["defect_type", "size", "detected", "pixel_recall"],
    )


def _defect_pixels(
    maps: np.ndarray | None, masks: np.ndarray, images: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(mask share of the image, share of defect pixels >= ``threshold``) of each of ``images``, a batch at a time.

    The share is NaN without maps, without a finite threshold, or for an image without defect pixels.
    """
    area, pixels = np.full(images.size, np.nan), np.full(images.size, np.nan)
    scored = maps is not None and np.isfinite(threshold)
    for part in batches(images.size, _image_pixels(masks)):
        truth = np.asarray(masks[images[part]], dtype=bool).reshape(len(images[part]), -1)
        defect = truth.sum(axis=1)
        area[part] = defect / truth.shape[1]
        if scored:
            flagged = np.asarray(maps[images[part]]).reshape(truth.shape) >= threshold
            hits = (flagged & truth).sum(axis=1)
            pixels[part] = np.where(defect > 0, hits / np.maximum(defect, 1), np.nan)
    return area, pixels


def _grouped(per_image: pd.DataFrame, job: JobData, calibration: str) -> pd.DataFrame:
    parts = []
    for group in ("defect_type", "size"):
        table = per_image.groupby(group).agg(
            n=("detected", "size"), image_recall=("detected", "mean"), pixel_recall=("pixel_recall", "mean")
        )
        table = table.reset_index().rename(columns={group: "value"})
        table.insert(0, "group", "type" if group == "defect_type" else "size")
        parts.append(table)
    result = pd.concat(parts, ignore_index=True)
    for column, value in (("model", job.model), ("category", job.category), ("seed", job.seed)):
        result.insert(0, column, value)
    result["calibration"] = calibration
    return result


def segmentation_report(context: AnalysisContext, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[FigureRecord]]:
    """SegF1 columns per job (``cache_key`` and the columns), and the recall-by-type-and-size table and figure.

    The columns are for joining to ``rows`` on ``cache_key`` (empty when ``rows`` is); the table is
    written as a CSV beside the figure, in the report.
    """
    reference = reference_calibration(context)
    per_job, tables = {}, []
    for job in context.jobs:
        per_job[job.key], table = _job_report(job, reference, rows)
        tables.extend([table] if table is not None else [])
    if rows.empty:
        return pd.DataFrame(), []
    seg_columns = pd.DataFrame([{"cache_key": k, **v} for k, v in per_job.items()])
    figures = []
    if tables:
        table = pd.concat(tables, ignore_index=True)
        table.to_csv(context.figure_dir / "recall_by_type_and_size.csv", index=False)
        figures.append(_recall_figure(table, context, reference.label))
    return seg_columns, figures


def _job_report(job: JobData, reference: Any, rows: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame | None]:
    """One job's SegF1 columns and its recall-by-type-and-size rows (``None`` without them); its maps loaded once."""
    arrays = job.load_maps(), job.load_masks()
    seg = job_segmentation(job, arrays)
    if reference is None or rows.empty:
        return seg, None
    chosen = rows[(rows["cache_key"] == job.key) & (rows["calibration"] == reference.label)]
    if chosen.empty or not job.test["label"].any():
        return seg, None
    per_image = recall_at_operating_point(job, float(chosen["threshold"].iloc[0]), seg["seg_threshold"], arrays)
    return seg, _grouped(per_image, job, reference.label)


def _recall_figure(table: pd.DataFrame, context: AnalysisContext, calibration: str) -> FigureRecord:
    """Image and pixel recall per defect type and per size class (mean over models' categories and seeds)."""
    import matplotlib.pyplot as plt

    from harness.analysis import save

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, group in zip(axes, ("type", "size"), strict=True):
        part = table[table["group"] == group].groupby(["value", "model"])[["image_recall", "pixel_recall"]].mean()
        part.unstack("model").plot.bar(ax=ax, rot=0, legend=group == "size")
        ax.set_title(f"recall at the operating point by defect {group}", fontsize=9)
        ax.set_xlabel("")
        ax.set_ylim(0, 1.05)
    if axes[1].get_legend() is not None:
        axes[1].legend(fontsize=7)
    name = "recall_by_type_and_size.png"
    save(fig, context.figure_dir / name)
    caption = (
        f"Recall at the operating point ({calibration} image threshold; pixel threshold = held-out normals' "
        "mean + 3 std, never the test set) per defect type and per defect size (mask share of the image: "
        "small < 0.1 %, medium 0.1-1 %, large >= 1 %); numbers in figures/recall_by_type_and_size.csv."
    )
    return FigureRecord(name, caption)


__all__ = [
    "SIZE_BOUNDS",
    "holdout_pixel_threshold",
    "job_segmentation",
    "oracle_pixel_threshold",
    "recall_at_operating_point",
    "seg_f1",
    "segmentation_report",
    "size_class",
]
