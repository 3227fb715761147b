import numpy as np
import pytest

from harness.metrics import aupro, pixel_auroc, ranking_metrics, threshold_metrics


def test_threshold_metrics_by_hand():
    scores = np.array([0.1, 0.5, 0.6, 0.9, 0.2])
    labels = np.array([0, 0, 1, 1, 1])
    m = threshold_metrics(scores, labels, 0.5)  # predicted 0,1,1,1,0
    assert (m["true_positives"], m["false_positives"], m["true_negatives"], m["false_negatives"]) == (2, 1, 1, 1)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_ranking_metrics_single_class_is_nan():
    assert np.isnan(ranking_metrics(np.ones(3), np.zeros(3))["auroc"])


def test_aupro_perfect_and_inverted_maps():
    masks = np.zeros((3, 16, 16), dtype=bool)
    masks[0, 2:6, 2:6] = True
    masks[1, 8:12, 1:3] = True
    assert aupro(masks.astype(float), masks) == pytest.approx(1.0)
    assert aupro(-masks.astype(float), masks) == pytest.approx(0.0, abs=1e-6)
    assert pixel_auroc(masks.astype(float), masks) == pytest.approx(1.0)


def test_aupro_counts_each_region_equally():
    # one big region found, one single-pixel region missed: PRO = 0.5 at FPR 0; the next (and
    # last) operating point is "everything anomalous" (FPR 1, PRO 1). Linear between them,
    # PRO(0.3) = 0.65, so the normalised area up to 0.3 is (0.5 + 0.65) / 2 = 0.575.
    masks = np.zeros((1, 20, 20), dtype=bool)
    masks[0, 0:10, 0:10] = True
    masks[0, 15, 15] = True
    maps = np.zeros((1, 20, 20))
    maps[0, 0:10, 0:10] = 1.0
    assert aupro(maps, masks, fpr_limit=0.3) == pytest.approx(0.575)


def test_aupro_matches_anomalibs_reference():
    torch = pytest.importorskip("torch")
    aupro_module = pytest.importorskip("anomalib.metrics.aupro")
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 32, 32), dtype=bool)
    for i in range(4):
        y, x = rng.integers(0, 24, 2)
        masks[i, y : y + rng.integers(3, 8), x : x + rng.integers(3, 8)] = True
    maps = rng.random((6, 32, 32)) + masks * rng.uniform(0.2, 0.8)
    reference = aupro_module._AUPRO(fpr_limit=0.3)  # the torchmetrics metric behind anomalib.metrics.AUPRO
    reference.update(torch.from_numpy(maps).float(), torch.from_numpy(masks).int())
    assert aupro(maps, masks) == pytest.approx(float(reference.compute()), abs=0.01)


def test_proportion_localised_on_hand_made_masks():
    from harness.metrics import proportion_localised

    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:6, 2:6] = True  # region A (16 px)
    masks[0, 12:14, 12:18] = True  # region B
    masks[1, 5:15, 5:15] = True  # region C
    predicted = np.zeros_like(masks)
    predicted[0, 2:6, 3:7] = True  # A: IoU = 12 / 20 = 0.6 -> found
    predicted[0, 12:14, 17:20] = True  # B: IoU = 1 / 17 -> missed
    predicted[1, 5:9, 5:9] = True  # C: IoU = 16 / 100 = 0.16 -> missed
    assert proportion_localised(predicted, masks) == pytest.approx(1 / 3)
    predicted[1, 5:15, 5:12] = True  # C: IoU = 70 / 100 -> found
    assert proportion_localised(predicted, masks) == pytest.approx(2 / 3)
