"""SegF1 (MVTec AD 2) and the size classes, on hand-computed cases (plugins/harness_pixel)."""

import numpy as np
import pytest
from harness_pixel.segmentation import oracle_pixel_threshold, seg_f1, size_class


def test_seg_f1_pools_pixels_over_all_images_including_defect_free_ones():
    maps = np.zeros((2, 2, 2))
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[0, 0, :] = True  # two defect pixels in image 0
    maps[0, 0, 0] = 1.0  # one found (TP=1), one missed (FN=1)
    maps[1, 1, 1] = 1.0  # one flagged pixel on a defect-free image (FP=1)
    assert seg_f1(maps, masks, 0.5) == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    assert np.isnan(seg_f1(maps, masks, float("nan")))


def test_oracle_threshold_maximises_seg_f1_on_the_test_masks():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 8, 8)) < 0.2
    maps = masks + rng.normal(0, 0.3, masks.shape)
    threshold, best = oracle_pixel_threshold(maps, masks)
    assert seg_f1(maps, masks, threshold) == pytest.approx(best)
    for other in np.linspace(maps.min(), maps.max(), 25):
        assert seg_f1(maps, masks, other) <= best + 1e-12


@pytest.mark.parametrize(
    ("share", "expected"), [(0.0005, "small"), (0.001, "medium"), (0.0099, "medium"), (0.01, "large")]
)
def test_size_classes_by_mask_share_of_the_image(share, expected):
    assert size_class(share) == expected


@pytest.fixture
def small_batches(monkeypatch):
    from harness_pixel import pixel_counts

    monkeypatch.setattr(pixel_counts, "BATCH_PIXELS", 2 * 16 * 16 + 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle_counted_per_float16_value_equals_scikit_learns_curve(seed, small_batches):
    from harness_pixel.segmentation import _oracle_sorted

    rng = np.random.default_rng(seed)
    masks = rng.random((7, 16, 16)) < 0.1
    maps = (np.round(rng.normal(0, 1, masks.shape) * 3) / 3 + masks).astype(np.float16)  # ties
    assert oracle_pixel_threshold(maps, masks) == _oracle_sorted(maps, masks)
    threshold = float(maps[0, 0, 0])
    flagged, truth = maps >= threshold, masks
    tp = np.sum(flagged & truth)
    expected = 2 * tp / (2 * tp + np.sum(flagged & ~truth) + np.sum(~flagged & truth))
    assert seg_f1(maps, masks, threshold) == pytest.approx(expected, abs=0)
    assert np.isnan(oracle_pixel_threshold(maps, np.zeros_like(masks))[0])


def test_recall_at_the_operating_point_per_image(small_batches):
    import pandas as pd
    from harness_pixel.segmentation import recall_at_operating_point

    masks = np.zeros((5, 16, 16), dtype=bool)
    masks[0, :2, :2] = True  # 4 pixels: 1.6 % of the image, large
    masks[1, 5, 5] = True  # 1 pixel: 0.4 %, medium
    maps = np.zeros(masks.shape, dtype=np.float16)
    maps[0, 0, :2] = 1.0  # half of image 0's defect pixels flagged
    test = pd.DataFrame({"label": [1, 1, 1, 0, 0], "defect_type": ["a", "b", "a", "good", "good"]})
    test["score"] = [0.9, 0.1, 0.8, 0.0, 0.0]

    class Job:
        pass

    job = Job()
    job.test, job.load_masks, job.load_maps = test, lambda: masks, lambda: maps
    table = recall_at_operating_point(job, 0.5, 0.5)
    assert table["size"].tolist() == ["large", "medium", "no mask"]
    assert table["detected"].tolist() == [1.0, 0.0, 1.0]
    assert table["pixel_recall"].tolist()[:2] == [0.5, 0.0]
    assert np.isnan(table["pixel_recall"].iloc[2])
