"""The core's image metrics; the pixel metrics are tested with their plugin (plugins/harness_pixel/tests)."""

import numpy as np
import pytest

from harness.metrics import holdout_pixel_threshold, ranking_metrics, threshold_metrics


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


def test_deployable_pixel_threshold_is_mean_plus_three_std_of_held_out_pixels():
    import harness.runs

    held = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    assert holdout_pixel_threshold(held) == pytest.approx(1.5 + 3 * np.std([0, 1, 2, 3]))
    assert np.isnan(holdout_pixel_threshold(None))
    assert harness.runs.holdout_pixel_threshold is holdout_pixel_threshold  # harness export's public spelling
