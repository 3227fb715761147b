"""Paper 001's Tables 1-3 reproduced from its Appendix A through the benchmark's own aggregation.

tests/data/paper001_appendix_a.csv holds the per-category figures of Appendix A (Tables A1-A4);
the benchmark's ``mean_over_categories`` and ``rank_table`` (``rank_by: metric_mean``) over the
named groups ``mvtec_ad_paper001`` must give the paper's Tables 1 (15 categories), 2 (fixed
objects) and 3 (rotating objects): every value within rounding, and the paper's row order.
"""

from pathlib import Path

import pandas as pd
import pytest
from harness_paradigms.benchmark import NAMED_GROUPS, mean_over_categories, rank_table

APPENDIX_A = Path(__file__).resolve().parents[1] / "data" / "paper001_appendix_a.csv"
METRICS = ("auroc", "recall", "f1", "ap")

TABLES = {
    "all categories": """Dinomaly 99.61 1 97.56 1 98.27 1 99.65 1
PatchCore 98.89 2 96.84 2 97.10 2 99.08 2
GLASS 97.65 3 92.95 4 93.90 3 97.83 3
DDAD 96.79 4 91.84 5 89.74 6 96.79 4
DRAEM 95.88 5 94.00 3 93.63 4 95.59 6
DiffusionAD 95.29 6 90.71 6 92.16 5 95.99 5
MSPBA 92.45 7 86.20 7 87.00 7 93.24 7
CutPaste 91.72 8 83.64 8 86.83 8 92.64 8
RIAD 81.71 9 75.96 9 77.47 9 82.07 9
PatchSVDD 77.98 10 76.68 10 75.87 10 78.11 10""",
    "fixed objects": """Dinomaly 99.46 1 97.25 1 97.72 1 99.52 1
PatchCore 98.48 2 95.34 3 95.97 2 98.69 2
DDAD 96.68 3 94.73 2 86.30 6 97.06 4
GLASS 96.35 4 90.17 5 90.99 3 96.63 3
DiffusionAD 93.14 5 86.68 6 88.42 7 94.32 7
MSPBA 93.13 6 85.79 7 88.14 5 94.26 6
DRAEM 92.54 7 90.65 4 90.89 4 91.77 5
CutPaste 89.15 8 79.25 8 83.45 8 90.05 8
RIAD 83.17 9 79.93 9 79.83 9 83.77 9
PatchSVDD 83.59 10 78.66 10 79.84 10 83.49 10""",
    "rotating objects": """PatchCore 99.49 1 98.52 1 98.21 1 99.49 2
Dinomaly 99.38 2 96.64 2 98.09 2 99.50 1
DRAEM 99.05 3 95.56 3 95.73 3 99.10 3
GLASS 97.18 4 92.20 4 93.30 4 97.44 4
DDAD 93.96 5 84.33 8 88.34 6 94.52 5
DiffusionAD 92.93 6 86.56 5 89.55 5 93.65 6
MSPBA 90.37 7 86.49 6 85.32 7 90.97 8
CutPaste 88.86 8 78.34 9 83.41 8 91.21 7
RIAD 73.93 9 62.63 10 68.49 10 74.43 9
PatchSVDD 63.02 10 85.60 7 74.19 9 62.75 10""",
}

# Where the paper contradicts itself (its printed figure vs its own Appendix A or its own values):
ERRATA = {
    # Table 1 prints DDAD's AP as 96.79 (its AUC); Table A4's DDAD row averages 97.14 (the paper's own
    # "Average" column says 97.14 too)
    ("all categories", "DDAD", "ap"),
}
TABLE_2_ORDER_ERRATUM = ("RIAD", "PatchSVDD")
"""Table 2 lists RIAD (AUC 83.17) above PatchSVDD (83.59): its own values order them the other way."""


def _table(text: str) -> pd.DataFrame:
    rows = [line.split() for line in text.splitlines()]
    columns = ["model"] + [f"{m}{suffix}" for m in METRICS for suffix in ("", "_rank")]
    return pd.DataFrame(rows, columns=columns).set_index("model").astype(float)


def _aggregate(group: str) -> pd.DataFrame:
    appendix = pd.read_csv(APPENDIX_A, comment="#").assign(seed=0)
    members = (
        sorted(set(appendix["category"])) if group == "all categories" else NAMED_GROUPS["mvtec_ad_paper001"][group]
    )
    part = appendix[appendix["category"].isin(members)]
    return rank_table(mean_over_categories(part, METRICS).reset_index(), METRICS, "metric_mean")


def test_the_appendix_has_every_category_and_model():
    appendix = pd.read_csv(APPENDIX_A, comment="#")
    assert appendix.groupby("model")["category"].nunique().eq(15).all() and appendix["model"].nunique() == 10
    groups = NAMED_GROUPS["mvtec_ad_paper001"]
    assert sorted(c for members in groups.values() for c in members) == sorted(set(appendix["category"]))


@pytest.mark.parametrize("group", list(TABLES))
def test_values_within_rounding(group):
    ours, paper = _aggregate(group).set_index("model"), _table(TABLES[group])
    for model in paper.index:
        for metric in METRICS:
            if (group, model, metric) in ERRATA or pd.isna(ours.loc[model, metric]):
                continue  # the two AP rows the appendix lacks, and the paper's own errata
            assert ours.loc[model, metric] == pytest.approx(paper.loc[model, metric], abs=0.0051), (model, metric)
    if group == "all categories":
        assert ours.loc["DDAD", "ap"] == pytest.approx(97.14, abs=0.0051)  # what Table A4 gives


@pytest.mark.parametrize("group", list(TABLES))
def test_row_order_is_the_papers(group):
    order = _aggregate(group)["model"].tolist()
    expected = _table(TABLES[group]).index.tolist()
    if group == "fixed objects":
        i, j = expected.index(TABLE_2_ORDER_ERRATUM[0]), expected.index(TABLE_2_ORDER_ERRATUM[1])
        expected[i], expected[j] = expected[j], expected[i]
    assert order == expected


RANK_ERRATA = {("all categories", "RIAD", "recall"), ("all categories", "PatchSVDD", "recall")}
"""Table 1 ranks RIAD's recall (75.96) 9th and PatchSVDD's (76.68) 10th. Table 2's printed ranks depart
from its own values in 15 places (e.g. recall: PatchCore 95.34 ranked 3rd, DDAD 94.73 2nd), so its
ranks are checked against its printed values only."""


@pytest.mark.parametrize("group", list(TABLES))
def test_ranks_are_the_ranks_of_the_printed_values(group):
    ours, paper = _aggregate(group).set_index("model"), _table(TABLES[group])
    if group == "all categories":
        paper.loc["DDAD", "ap"] = 97.14
    for metric in METRICS:
        known = ours.index[ours[metric].notna()]  # RIAD and PatchSVDD have no AP in our copy
        printed = paper.loc[known, metric].rank(ascending=False, method="min")
        assert ours.loc[known, f"{metric}_rank"].equals(printed.loc[known]), metric
        if group == "fixed objects":
            continue
        for model in known:
            if (group, model, metric) not in RANK_ERRATA:
                assert ours.loc[model, f"{metric}_rank"] == paper.loc[model, f"{metric}_rank"], (model, metric)


def test_mean_rank_is_a_labelled_option_that_orders_differently():
    ours = _aggregate("fixed objects")
    by_rank = rank_table(ours.drop(columns=[c for c in ours if c.endswith("rank")]), METRICS, "mean_rank")
    assert by_rank["mean_rank"].is_monotonic_increasing
    assert by_rank["model"].tolist() != ours["model"].tolist()
