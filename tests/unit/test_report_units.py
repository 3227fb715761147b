import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from harness.figures import save
from harness.report.latex_tables import table_tex, tex
from harness.report.layout import column_groups, fold_intervals, sticky_count
from harness.report.readable import MIN_FONT_PT, make_readable, quantity, si
from harness.results_files import results_document, typed


def test_quantities_read_in_si_units():
    assert quantity("co2_kg", 1.23e-5) == "12.3 mg"
    assert quantity("co2_kg", 0.0042) == "4.2 g"
    assert quantity("latency_ms", 12.5) == "12.5 ms"
    assert quantity("energy_kwh", 0.002) == "2 Wh"
    assert quantity("co2_kg", float("nan")) == "–" and quantity("auroc", 0.5) is None
    assert si(1500, "B") == "1.5 kB"


def test_saved_figures_have_no_text_below_10_pt_co2_in_grams_and_a_pdf(tmp_path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
    left.plot([1e-5, 3e-5], [0.5, 0.9])
    left.set_xlabel("CO2 of fit + scoring (kg, estimated)")
    left.legend(["a"], fontsize=6)
    right.bar([f"a_long_model_name_{i}" for i in range(8)], np.arange(8))
    right.tick_params(axis="x", labelsize=5)
    make_readable(fig)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    assert min(sizes) >= MIN_FONT_PT
    assert left.get_xlabel() == "CO2 of fit + scoring (g, estimated)"
    assert left.xaxis.get_major_formatter()(2e-5) == "20 mg"
    assert all(t.get_rotation() == 30 for t in right.get_xticklabels() if t.get_text())  # they collided
    save(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").is_file() and (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")


def test_tables_keep_identity_columns_sticky_and_group_metrics():
    columns = ["model", "calibration", "recall", "f1", "auroc", "ap", "pixel_auroc", "aupro", "weights"]
    assert column_groups(columns) == [("", 2), ("at the threshold", 2), ("threshold-free", 2), ("pixel", 2), ("", 1)]
    assert sticky_count(columns) == 2 and sticky_count(["auroc", "model"]) == 1
    table = {
        "columns": ["model", "recall", "recall_ci"],
        "headers": ["model", "recall", "ci"],
        "rows": [[("a", "a"), ("0.9", 0.9), ("[0.8, 1.0]", "[0.8, 1.0]")]],
    }
    folded = fold_intervals(table)
    assert folded["columns"] == ["model", "recall"] and folded["rows"][0][1] == ("0.9", 0.9, "[0.8, 1.0]")


def test_latex_text_is_escaped_and_typesettable():
    assert tex("a_b & 50% #1") == r"a\_b \& 50\% \#1"
    assert tex("café Ünï") == "café Ünï"  # utf8 inputenc + T1
    assert tex("日本") == "[U+65E5][U+672C]" and tex("ﬁt") == "fit"
    assert tex("F1 ↑") == r"F1 $\uparrow$"
    assert tex(tex("a_b")) == r"a\_b"  # escaping escaped text is a no-op
    text = table_tex({"spec": "lr", "headers": ["a", "b"], "rows": [["x", "1"]]}, "cap", "tab:x-y")
    assert "\\label{tab:x-y}" in text and "\\caption{cap}" in text and "\\toprule" in text
    assert text.endswith("\\bottomrule\n\\end{tabular}}\n\\end{table}\n")  # reports/table.tex.j2, byte for byte
    assert "\\toprule\na & b \\\\\n\\midrule\nx & 1 \\\\\n\\bottomrule" in text


def test_counts_are_integers_and_missing_values_null():
    rows = pd.DataFrame(
        {
            "model": ["a", "b"],
            "seed": [0.0, 1.0],
            "false_negatives": [3.0, np.nan],
            "n_test": [10.0, np.nan],
            "f1": [0.5, np.nan],
            "oracle": [True, False],
        }
    )
    typed_rows = typed(rows)
    assert str(typed_rows["false_negatives"].dtype) == "Int64" and typed_rows["f1"].dtype == float
    assert typed_rows.to_csv(index=False).splitlines()[1] == "a,0,3,10,0.5,True"

    class NoFinding:
        def to_json(self):
            return {"headline": "h"}

    document = results_document(rows, rows, NoFinding(), {"protocol": "p", "versions": {"harness": "1"}})
    text = json.dumps(document, allow_nan=False)  # no NaN reaches JSON
    assert document["columns"]["false_negatives"] == "integer" and document["columns"]["oracle"] == "boolean"
    assert document["rows"][1]["false_negatives"] is None and isinstance(document["rows"][0]["n_test"], int)
    assert json.loads(text)["schema"] == "harness.results/1"


@pytest.mark.parametrize("value", [0.0, 1e-9])
def test_zero_and_tiny_quantities(value):
    assert quantity("co2_kg", value) in ("0 g", "1 µg")


def test_latex_tables_with_one_name_get_numbered_files(tmp_path):
    from harness.report.latex_tables import LatexWriter

    writer = LatexWriter(tmp_path, "p")
    table = {"spec": "l", "headers": ["a"], "rows": [["x"]]}
    inputs = [writer.table("Per category", table, "c")["input"] for _ in range(3)]
    assert inputs == ["tables/per-category", "tables/per-category-2", "tables/per-category-3"]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(f"{i[7:]}.tex" for i in inputs)
