import sys

import pandas as pd
import pytest
from harness_paradigms.kde_vs_test import KdeVsTest, oracle_gap

from harness.report.finding import Finding, default_finding, finding_of, oracle_gap_finding, ranking_finding


def _summary():
    return pd.DataFrame(
        {
            "model": ["padim", "padim", "padim", "fastflow", "fastflow"],
            "calibration": ["test_f1_oracle", "quantile", "kde", "test_f1_oracle", "kde"],
            "oracle": [True, False, False, True, False],
            "recall": [0.9, 0.7, 0.6, 0.8, 0.8],
            "f1": [0.90, 0.75, 0.70, 0.80, 0.82],
            "false_negatives": [2, 6, 8, 4, 4],
            "n_anomalous": [20, 20, 20, 20, 20],
        }
    )


def test_oracle_gap_finding_quotes_kde_beside_the_best_oracle_per_model():
    finding = oracle_gap_finding(_summary())
    rows = {row[0]: dict(zip(finding.columns, row, strict=True)) for row in finding.rows}
    assert rows["padim"]["deployable"] == "kde" and rows["padim"]["oracle"] == "test_f1_oracle"
    assert rows["padim"]["f1_gap"] == pytest.approx(-20.0) and rows["fastflow"]["f1_gap"] == pytest.approx(2.0)
    assert rows["padim"]["missed"] == 8 and rows["padim"]["defects"] == 20 and rows["padim"]["oracle_missed"] == 2
    assert "misses 12 of 40 defects where the oracle misses 6" in finding.headline
    assert "-20.0 to +2.0 points" in finding.headline
    assert finding.to_json()["rows"][0]["model"] == "padim"


def test_kde_vs_test_leaderboard_gap_column_is_in_points_against_the_models_best_oracle():
    gaps = oracle_gap(_summary())["f1_gap"].tolist()
    assert gaps == pytest.approx([0.0, -15.0, -20.0, 0.0, 2.0])


def test_an_analysis_finding_method_wins_over_the_default():
    class Custom:
        def finding(self, rows, summary):
            return Finding(f"{len(summary)} rows")

    assert finding_of(Custom(), pd.DataFrame(), _summary()).headline == "5 rows"
    assert finding_of(object(), pd.DataFrame(), _summary()).headline == default_finding(_summary()).headline
    assert finding_of(KdeVsTest(), pd.DataFrame(), _summary()).rows == oracle_gap_finding(_summary()).rows
    assert "No job finished" in finding_of(Custom(), pd.DataFrame(), pd.DataFrame()).headline


def test_ranking_finding_orders_by_the_first_metric_and_respects_direction():
    summary = pd.DataFrame({"model": ["a", "b", "c"], "mean_rank": [2.0, 1.0, 3.0], "auroc": [0.8, 0.9, 0.7]})
    finding = ranking_finding(summary)
    assert finding.numbers["metric"] == "mean_rank" and [r[0] for r in finding.rows] == ["b", "a", "c"]
    assert finding.headline.startswith("Best mean rank: b (1.000)") and "spread of 2.000" in finding.headline
    assert ranking_finding(summary.drop(columns="mean_rank")).rows[0][0] == "b"


def test_the_findings_that_moved_into_their_kinds_still_import_with_a_deprecation_warning():
    from harness_paradigms.missing_type import left_out_finding
    from harness_paradigms.partial_anomaly import fraction_finding

    import harness.analysis
    import harness.report.finding as finding

    for name, moved in (("fraction_finding", fraction_finding), ("left_out_finding", left_out_finding)):
        with pytest.warns(DeprecationWarning, match=f"{name} moved to harness_paradigms"):
            assert getattr(finding, name) is moved
    summary = pd.DataFrame({"model": ["a"], "calibration": ["kde"], "oracle": [False], "fraction": [0.0]})
    with pytest.warns(DeprecationWarning):
        assert harness.analysis.fraction_finding(summary).headline.startswith("No oracle calibration")
    with pytest.raises(AttributeError):
        finding.no_such_finding  # noqa: B018


def test_a_moved_finding_warns_at_the_plugin_line_that_imports_it():
    """The warning names the plugin's own line (a filter on its module matches), not harness internals."""
    for name, module in (("fraction_finding", "partial_anomaly"), ("left_out_finding", "missing_type")):
        moved = f"harness.analysis.{name} moved to harness_paradigms.{module}"
        with pytest.warns(DeprecationWarning, match=moved) as w:
            exec(f"from harness.analysis import {name}", {})
        assert [warning.filename for warning in w] == ["<string>"]


def test_the_former_module_path_forwards_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="harness_paradigms.kde_vs_test.KdeVsTest"):
        from harness.analyses.kde_vs_test import KdeVsTest as former
    assert former is KdeVsTest


@pytest.mark.parametrize(
    ("former", "name", "now"),
    [
        ("harness.analyses.options", "KdeVsTestOptions", "harness_paradigms.options"),
        ("harness.figures", "score_distributions", "harness_paradigms.kde_figures"),
        ("harness.figures", "confusion_bars", "harness_paradigms.kde_figures"),
        ("harness.figures", "grouped_metric_bars", "harness_paradigms.kde_figures"),
        ("harness.figures", "COLOURS", "harness_paradigms.kde_figures"),
        ("harness.figures", "LINE_STYLES", "harness_paradigms.kde_figures"),
    ],
)
def test_kde_vs_test_helpers_read_from_their_former_modules_warn_and_forward(former, name, now):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{former}.{name} moved to {now}.{name}"):
        value = getattr(importlib.import_module(former), name)
    assert value is getattr(importlib.import_module(now), name)


def test_the_former_module_path_answers_other_names_as_absent_without_the_plugin(monkeypatch):
    """``hasattr``, ``from ... import *``, inspect and doctest ask for dunders: absent, not an ImportError."""
    import harness.analyses.kde_vs_test as former

    monkeypatch.setitem(sys.modules, "harness_paradigms.kde_vs_test", None)  # as if not installed
    assert not hasattr(former, "__all__") and not hasattr(former, "harness_protocols")
    with pytest.raises(ImportError):
        former.KdeVsTest  # noqa: B018


def test_a_moved_finding_with_a_plugin_older_than_the_move_is_an_error_not_a_recursion(monkeypatch):
    """harness_paradigms from before the move imports fraction_finding from harness.analysis, which points back."""
    from harness_paradigms import partial_anomaly

    import harness.analysis
    from harness.errors import HarnessError

    with pytest.warns(DeprecationWarning):
        monkeypatch.setattr(partial_anomaly, "fraction_finding", harness.analysis.fraction_finding)  # as it was
    with pytest.raises(HarnessError, match="harness_paradigms is older than this harness; upgrade it"):
        harness.analysis.fraction_finding(None)


def test_a_moved_finding_without_its_plugin_installed_is_one_clear_error(monkeypatch):
    """A third party's kind calling harness.analysis.left_out_finding where harness_paradigms is absent."""
    import sys

    import harness.analysis
    from harness.errors import HarnessError

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name == "harness_paradigms":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for name in [m for m in sys.modules if m == "harness_paradigms" or m.startswith("harness_paradigms.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NotInstalled(), *sys.meta_path])
    with pytest.warns(DeprecationWarning):
        moved = harness.analysis.left_out_finding
    with pytest.raises(HarnessError, match=r"harness_paradigms is not installed: pip install it"):
        moved(None)
