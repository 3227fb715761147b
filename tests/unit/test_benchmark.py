"""Ranks, groups, significance and Pareto fronts of the benchmark protocol (efficiency: plugins/harness_efficiency)."""

import numpy as np
import pandas as pd
import pytest
from harness_paradigms.benchmark import bootstrap_metric, rank_table
from harness_paradigms.benchmark_figures import critical_difference_figure, friedman_nemenyi, pareto_front
from sklearn.metrics import average_precision_score, roc_auc_score

from harness.data.base import Record
from harness.data.shaping import rebalance


def test_ranks_on_a_hand_made_table():
    table = pd.DataFrame({"model": ["a", "b", "c"], "auroc": [0.90, 0.95, 0.90], "f1": [0.8, 0.6, 0.7]})
    ranked = rank_table(table, ("auroc", "f1"), rank_by="mean_rank")
    # auroc: b=1, a and c tie for 2; f1: a=1, c=2, b=3 -> mean ranks a 1.5, b 2.0, c 2.0 (c after b on auroc)
    assert ranked["model"].tolist() == ["a", "b", "c"]
    assert ranked.set_index("model")["auroc_rank"].to_dict() == {"a": 2, "b": 1, "c": 2}
    assert ranked.set_index("model")["mean_rank"].to_dict() == {"a": 1.5, "b": 2.0, "c": 2.0}
    # paper 001's order (the default): by the first metric's value, mean rank breaking the a/c tie
    assert rank_table(table, ("auroc", "f1"))["model"].tolist() == ["b", "a", "c"]


def test_bootstrap_metrics_on_the_identity_resample_equal_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = rng.normal(size=60) + labels
    values = bootstrap_metric(scores, labels, 0.5, np.arange(60)[None, :])
    assert values["auroc"][0] == pytest.approx(roc_auc_score(labels, scores))
    assert values["ap"][0] == pytest.approx(average_precision_score(labels, scores))
    predicted = scores >= 0.5
    assert values["recall"][0] == pytest.approx((predicted & (labels == 1)).sum() / labels.sum())


def test_pareto_front():
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    quality = np.array([0.7, 0.6, 0.9, 0.8])
    assert pareto_front(cost, quality).tolist() == [0, 2]


def test_rebalance_moves_train_normals_into_test():
    train = [Record(f"t{i}.png", "train") for i in range(40)]
    test = [Record(f"g{i}.png", "test") for i in range(5)] + [Record(f"d{i}.png", "test", "dent") for i in range(15)]
    new_train, new_test = rebalance(train, test, 0.5, np.random.default_rng(0))
    assert len(new_train) == 30 and sum(1 for r in new_test if not r.label) == 15
    assert {r.path for r in new_train}.isdisjoint({r.path for r in new_test})


def test_friedman_nemenyi_over_categories(tmp_path):
    from scipy.stats import friedmanchisquare

    rng = np.random.default_rng(0)
    per_category = pd.DataFrame(
        {"strong": 0.9 + 0.05 * rng.random(12), "middle": 0.7 + 0.05 * rng.random(12), "weak": 0.5 * rng.random(12)}
    )
    ranks, p_values, friedman_p = friedman_nemenyi(per_category)
    assert ranks.to_dict() == {"strong": 1.0, "middle": 2.0, "weak": 3.0}  # 1 = best: higher metric is better
    assert friedman_p == pytest.approx(friedmanchisquare(*per_category.to_numpy().T).pvalue)
    assert p_values.loc["strong", "weak"] < 0.05 and list(p_values.columns) == ["strong", "middle", "weak"]
    rows = per_category.rename_axis("category").reset_index().melt("category", var_name="model", value_name="auroc")
    record = critical_difference_figure(rows, ("auroc",), tmp_path / "cd.png")
    assert record is not None and (tmp_path / "cd.png").is_file() and "Friedman p" in record.caption
    two_models = rows[rows["model"] != "weak"]
    assert critical_difference_figure(two_models, ("auroc",), tmp_path / "none.png") is None  # Friedman needs 3
