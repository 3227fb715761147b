"""Training subsets as cache keys, and the forgetting measure on hand-made matrices."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_paradigms.continual import forgetting, mean_forgetting
from harness_paradigms.subsets import (
    ContaminatedSubset,
    FewShotSubset,
    UnionSubset,
    contaminant_count,
    supports_continual,
)

from harness.data.base import Category, Record
from harness.protocol import ModelConfig
from harness.scoring import Job, TrainingSubset
from harness.subsets import teach


def _category(name: str, n_train: int = 8) -> Category:
    train = [Record(Path(f"/d/{name}/train/good/{i}.png"), "train") for i in range(n_train)]
    test = [Record(Path(f"/d/{name}/test/bad/{i}.png"), "test", "bad") for i in range(3)]
    return Category(name, train + test)


def _job(subset: TrainingSubset) -> Job:
    category = _category("a")
    category.__dict__["_fingerprint"] = "fixed"  # no files behind these records
    return Job(ModelConfig("m", {}, "m"), category, 0, subset, (8, 8), "p", "1", "")


def test_few_shot_keeps_the_standard_holdout_and_draws_from_the_fit_split():
    category = _category("a")
    base_fit, base_held = TrainingSubset(0.25, 0).split(category)
    seen = set()
    for shots in (1, 2, 4):
        for draw in range(3):
            fit, held = FewShotSubset(0.25, 0, shots=shots, draw=draw).split(category)
            assert held == base_held and len(fit) == shots and set(fit) <= set(base_fit)
            seen.add(tuple(fit))
    assert len(seen) > 3  # draws differ
    assert FewShotSubset(0.25, 0, shots=100).split(category)[0] == base_fit


def test_every_subset_variant_is_its_own_cache_key():
    subsets = [
        TrainingSubset(0.25, 0),
        FewShotSubset(0.25, 0, shots=1, draw=0),
        FewShotSubset(0.25, 0, shots=1, draw=1),
        FewShotSubset(0.25, 0, shots=2, draw=0),
        ContaminatedSubset(0.25, 0, rate=0.0),
        ContaminatedSubset(0.25, 0, rate=0.1, contaminants=(Record(Path("/d/a/test/bad/0.png"), "c", "bad"),)),
        UnionSubset(0.25, 0, categories=("a", "b")),
        UnionSubset(0.25, 0, categories=("b", "a")),
        UnionSubset(0.25, 0, categories=("a", "b"), incremental=True),
    ]
    keys = {_job(subset).key for subset in subsets}
    assert len(keys) == len(subsets)
    assert _job(FewShotSubset(0.25, 0, shots=1)).key == _job(replace(FewShotSubset(0.25, 0), shots=1)).key


def test_contaminated_subset_adds_its_defects_to_the_fit_split_only():
    category = _category("a")
    bad = tuple(category.split("test")[:2])
    fit, held = ContaminatedSubset(0.25, 0, rate=0.2, contaminants=bad).split(category)
    base_fit, base_held = TrainingSubset(0.25, 0).split(category)
    assert fit == base_fit + list(bad) and held == base_held


@pytest.mark.parametrize(("rate", "count"), [(0, 0), (0.05, 0), (0.1, 1), (0.2, 2), (0.5, 8)])
def test_contaminant_count_is_the_defective_share_of_the_training_set(rate, count):
    assert contaminant_count(rate, 8) == count


def test_incremental_union_teaches_categories_in_sequence_order():
    a, b = _category("a"), _category("b", 4)
    merged = Category.merged("b+a", [a, b])
    stages = UnionSubset(0.25, 0, categories=("b", "a"), incremental=True).stages(merged)
    assert stages == [TrainingSubset(0.25, 0).split(b)[0], TrainingSubset(0.25, 0).split(a)[0]]
    assert UnionSubset(0.25, 0, categories=("a", "b")).stages(merged) is None


def test_supports_continual_reads_the_registration_flag():
    class Plain:
        pass

    class Continues:
        continual = True

    class Registration:  # a registration object wrapping a factory (what plugins may register)
        def __init__(self, factory, continual=False):
            self.factory, self.continual = factory, continual

    assert not supports_continual(Plain) and supports_continual(Continues)
    assert supports_continual(Registration(Plain, continual=True)) and supports_continual(Registration(Continues))
    assert not supports_continual(Registration(Plain))


def test_teach_uses_fit_more_or_fit_again():
    class WithMore:
        def __init__(self):
            self.calls = []

        def fit(self, samples):
            self.calls.append(("fit", samples))

        def fit_more(self, samples):
            self.calls.append(("fit_more", samples))

    class FitAgain(WithMore):
        fit_more = None

    with_more, again = WithMore(), FitAgain()
    teach(with_more, [[1], [2], [3]])
    teach(again, [[1], [2]])
    assert with_more.calls == [("fit", [1]), ("fit_more", [2]), ("fit_more", [3])]
    assert again.calls == [("fit", [1]), ("fit", [2])]


def test_forgetting_measure_by_hand():
    # paper 004, Table 4.3: FM_j^k = max_{l<k} T_{l,j} - T_{k,j}, for j taught before step k
    t = pd.DataFrame(
        [[0.9, np.nan, np.nan], [0.7, 0.8, np.nan], [0.8, 0.5, 0.95]], index=[1, 2, 3], columns=["a", "b", "c"]
    )
    fm = forgetting(t)
    assert np.isnan(fm.loc[1]).all() and np.isnan(fm.loc[2, "b"]) and np.isnan(fm.loc[3, "c"])
    assert fm.loc[2, "a"] == pytest.approx(0.2)
    assert fm.loc[3, "a"] == pytest.approx(0.1)  # the max over steps 1..2 (0.9), not the previous step's 0.7
    assert fm.loc[3, "b"] == pytest.approx(0.3)
    assert mean_forgetting(fm).tolist()[1:] == pytest.approx([0.2, 0.2])


def test_forgetting_skips_a_missing_step():
    # step 2 failed: FM at step 3 compares with step 1 only, and b (taught at step 2) has no earlier value
    t = pd.DataFrame([[0.9, np.nan, np.nan], [0.6, 0.7, 0.8]], index=[1, 3], columns=["a", "b", "c"])
    fm = forgetting(t, {"a": 1, "b": 2, "c": 3})
    assert fm.loc[3, "a"] == pytest.approx(0.3) and np.isnan(fm.loc[3, "b"]) and np.isnan(fm.loc[3, "c"])
