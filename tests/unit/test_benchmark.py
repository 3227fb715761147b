"""Ranks, groups, significance, Pareto fronts and efficiency plumbing of the benchmark protocol."""

import numpy as np
import pandas as pd
import pytest
from harness_paradigms.benchmark import bootstrap_metric, rank_table
from harness_paradigms.benchmark_figures import critical_difference_figure, friedman_nemenyi, pareto_front
from sklearn.metrics import average_precision_score, roc_auc_score

from harness.data.base import Record
from harness.data.shaping import rebalance
from harness.efficiency import EnergyMeter, footprint, nvml_status, with_co2


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


def test_gpu_power_without_a_gpu_says_why():
    module, reason = nvml_status()
    if module is not None:
        pytest.skip("an NVIDIA GPU is present")
    assert reason.startswith("GPU power: no NVIDIA GPU or driver")


def test_codecarbon_offline_tracker_measures_energy():
    with EnergyMeter.measure("test", "BEL") as result:
        sum(i * i for i in range(2_000_000))
    assert result.get("energy_kwh", 0) > 0, result
    figures = with_co2(dict(result), 0.475)
    assert figures["co2_kg"] == pytest.approx(figures["energy_kwh"] * 0.475)


def test_footprint_of_a_torch_module():
    torch = pytest.importorskip("torch")

    class Detector:
        torch_module = torch.nn.Conv2d(3, 8, 3, padding=1)

    figures = footprint(Detector(), (16, 16))
    assert figures["parameters"] == 3 * 8 * 9 + 8
    assert figures["gmac"] == pytest.approx(16 * 16 * 8 * 27 / 1e9)  # MACs of the convolution, bias not counted
    assert figures["size_mb"] > 0
    Detector.input_size = (32, 32)  # the network resizes: GMAC at the size it really takes
    assert footprint(Detector(), (16, 16))["gmac"] == pytest.approx(4 * 16 * 16 * 8 * 27 / 1e9)


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


def test_gpu_figures_are_empty_for_a_job_that_ran_on_the_cpu():
    from harness.efficiency import Sampler, summarise_samples

    with Sampler(0.01).running() as sampler:
        sum(i * i for i in range(200_000))
    figures = summarise_samples(sampler, None)
    assert not {"gpu_memory_mb", "gpu_power_w", "gpu_util_percent", "gpu_energy_kwh"} & set(figures)
    assert figures["gpu_note"].startswith("GPU figures: none")


@pytest.mark.gpu
def test_gpu_memory_is_the_jobs_own_peak_and_cpu_jobs_get_none():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from harness.efficiency import Sampler, summarise_samples

    with Sampler(0.01).running() as sampler:  # a big job first: 256 MB
        big = torch.ones(64, 1024, 1024, device="cuda")
        del big
    first = summarise_samples(sampler, None)
    with Sampler(0.01).running() as sampler:  # then a small one: its peak is its own, not the process's
        small = torch.ones(1024, 1024, device="cuda")
        del small
    second = summarise_samples(sampler, None)
    with Sampler(0.01).running() as sampler:  # and one that never touches the GPU
        sum(i * i for i in range(100_000))
    third = summarise_samples(sampler, None)
    assert first["gpu_memory_mb"] >= 256 and second["gpu_memory_mb"] < 64
    assert "gpu_memory_mb" not in third and "gpu_power_w" not in third and "the job ran on the CPU" in third["gpu_note"]
    if "gpu_power_w" in second:
        assert "whole card" in second["gpu_note"]
