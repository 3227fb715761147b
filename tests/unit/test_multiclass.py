import numpy as np
import pandas as pd
import pytest
from harness_paradigms.multiclass import aggregate_rows, pooled_row


def test_pooled_and_mean_of_categories_on_a_hand_made_table():
    # category A: scores around 0-1, threshold 0.5; category B: scores around 10-20, threshold 15
    a = (np.array([0.1, 0.9]), np.array([0, 1]), 0.5)
    b = (np.array([10.0, 20.0]), np.array([0, 1]), 15.0)
    pooled = pooled_row([a, b])
    # each category is perfect at its own threshold, so pooled confusion counts are perfect too
    assert pooled["accuracy"] == 1.0 and pooled["recall"] == 1.0 and pooled["false_positives"] == 0
    # but pooled AUROC ranks raw scores across categories: 0.9 (defect) < 10 (good) -> 3 of 4 pairs
    assert pooled["auroc"] == pytest.approx(0.75)
    rows = pd.DataFrame(
        {
            "model": ["m", "m"],
            "seed": [0, 0],
            "setting": ["per-category"] * 2,
            "calibration": ["kde"] * 2,
            "oracle": [False, False],
            "category": ["A", "B"],
            "auroc": [1.0, 0.8],
            "ap": [1.0, 0.5],
            "accuracy": [1.0, 0.5],
            "precision": [1.0, 0.5],
            "recall": [1.0, 0.0],
            "f1": [1.0, 0.0],
            "false_negatives": [0, 3],
            "false_positives": [0, 1],
            "n_test": [2, 6],
        }
    )
    mean = aggregate_rows(rows).iloc[0]
    assert mean["category"] == "mean of categories"
    assert mean["auroc"] == pytest.approx(0.9) and mean["recall"] == pytest.approx(0.5)
    assert mean["false_negatives"] == 3 and mean["n_test"] == 8
