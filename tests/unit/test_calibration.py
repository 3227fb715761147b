import numpy as np
import pytest
from scipy.stats import gaussian_kde

from harness.calibration import (
    CalibrationData,
    EmpiricalQuantile,
    KDEPercentile,
    SplitConformal,
    TestF1Oracle,
    TestYoudenOracle,
    best_f1_threshold,
    calibration_data,
    youden_threshold,
)
from harness.errors import HarnessError


def test_kde_threshold_is_the_percentile_of_the_kde_distribution():
    scores = np.random.default_rng(0).gamma(2.0, 1.0, size=40)
    threshold = KDEPercentile(percentile=97.5).threshold(CalibrationData(scores))
    kde = gaussian_kde(scores)
    assert kde.integrate_box_1d(-np.inf, threshold) == pytest.approx(0.975, abs=1e-9)


def test_kde_options_change_the_threshold():
    scores = np.random.default_rng(1).normal(size=50)
    base = KDEPercentile().threshold(CalibrationData(scores))
    assert KDEPercentile(percentile=99).threshold(CalibrationData(scores)) > base
    assert KDEPercentile(bandwidth=0.5).threshold(CalibrationData(scores)) != base


def test_kde_of_identical_scores_sits_just_above_them():
    # a point mass: just above it, so that the tied scores themselves count as normal
    assert KDEPercentile().threshold(CalibrationData(np.full(5, 2.5))) == np.nextafter(2.5, np.inf)


def test_kde_rejects_a_bad_percentile():
    with pytest.raises(HarnessError, match="percentile"):
        KDEPercentile(percentile=150)


def test_quantile_is_numpy_percentile():
    scores = np.arange(101, dtype=float)
    assert EmpiricalQuantile(percentile=97.5).threshold(CalibrationData(scores)) == 97.5


def test_f1_oracle_on_a_hand_made_example():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 0, 1, 1])
    # >= 0.35 gives TP=3 FP=1 FN=0 -> F1 = 6/7, the best possible here
    assert TestF1Oracle().threshold(CalibrationData(np.array([]), scores, labels)) == 0.35


def test_youden_oracle_on_a_hand_made_example():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 0, 1, 1])
    # >= 0.8: TPR 2/3, FPR 0 -> J = .667 ; >= 0.35: TPR 1, FPR 1/4 -> J = .75 (best)
    assert TestYoudenOracle().threshold(CalibrationData(np.array([]), scores, labels)) == 0.35


def test_non_oracle_calibrators_are_given_no_test_data():
    data = calibration_data(KDEPercentile(), np.ones(3), np.ones(4), np.array([0, 1, 0, 1]))
    assert data.test_scores is None and data.test_labels is None
    oracle = calibration_data(TestF1Oracle(), np.ones(3), np.ones(4), np.array([0, 1, 0, 1]))
    assert oracle.test_labels is not None


def test_oracle_without_labels_fails_clearly():
    with pytest.raises(HarnessError, match="no test labels"):
        TestF1Oracle().threshold(CalibrationData(np.ones(3)))


def _sklearn_f1_threshold(scores, labels):
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return thresholds[int(np.argmax(f1[:-1]))]


def _sklearn_youden_threshold(scores, labels):
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return thresholds[int(np.argmax(tpr[1:] - fpr[1:])) + 1]


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_oracles_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(size=n) + labels * rng.uniform(0, 2), int(rng.integers(0, 3)))  # with ties
    assert best_f1_threshold(scores, labels) == _sklearn_f1_threshold(scores, labels)
    assert youden_threshold(scores, labels) == _sklearn_youden_threshold(scores, labels)


def test_conformal_threshold_keeps_the_false_positive_rate():
    rng = np.random.default_rng(0)
    calibrator = SplitConformal(alpha=0.1)
    rates = []
    for _ in range(300):
        holdout, fresh = rng.normal(size=30), rng.normal(size=200)
        rates.append(np.mean(fresh >= calibrator.threshold(CalibrationData(holdout))))
    assert np.mean(rates) <= 0.1 + 0.01


def test_conformal_with_too_few_normals_flags_nothing():
    assert SplitConformal(alpha=0.01).threshold(CalibrationData(np.arange(10.0))) == float("inf")


@pytest.mark.parametrize("calibrator", [KDEPercentile(), EmpiricalQuantile(), EmpiricalQuantile(50)])
def test_a_threshold_over_tied_held_out_scores_sits_strictly_above_the_tie(calibrator):
    from harness.calibration import tie_note

    for holdout in (np.zeros(20), np.r_[-1.0, -0.5, np.zeros(30)]):  # all tied; the top 30 tied
        if isinstance(calibrator, KDEPercentile) and np.ptp(holdout) > 0:
            continue  # a smooth KDE of spread scores does not land on a tie
        threshold = calibrator.threshold(CalibrationData(holdout))
        assert threshold > 0 and threshold == np.nextafter(0.0, 1.0)
        flagged = np.array([0.0, 0.0, 1e-12]) >= threshold
        assert flagged.tolist() == [False, False, True]  # the tie counts as normal; anything above does not
        assert "just above 30 tied" in tie_note(threshold, holdout) or "just above 20 tied" in tie_note(
            threshold, holdout
        )


def test_no_tie_note_without_a_tie():
    from harness.calibration import tie_note

    holdout = np.linspace(0, 1, 41)
    threshold = EmpiricalQuantile(97.5).threshold(CalibrationData(holdout))
    assert threshold == pytest.approx(0.975) and tie_note(threshold, holdout) == ""
