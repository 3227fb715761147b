"""plugins/harness_review through kde_vs_test: review sheets, map panels and label_review.csv, drawn once."""

import json

import pandas as pd
import pytest

from conftest import SMALL_PROTOCOL, write_protocol

REVIEW_COLUMNS = ["model", "category", "kind", "path", "defect_type", "score", "threshold"]


def test_review_sheets_and_map_panels_per_category(small_run):
    figures = small_run / "figures"
    manifest = json.loads((figures / "manifest.json").read_text())
    records = {m["file"]: m for m in manifest}
    for category in ("weave", "disc"):
        review, maps = (
            records[f"review_fixed_scores_{category}_seed0.png"],
            records[f"maps_fixed_scores_{category}_seed0.png"],
        )
        assert review["category"] == maps["category"] == category and review["model"] == "fixed_scores"
        assert review["caption"].startswith(f"Label review, fixed_scores on {category}: test images labelled good")
        assert "above the kde threshold" in review["caption"]
        assert maps["caption"].startswith(f"Anomaly maps, fixed_scores on {category}: the best and the worst case")
        for name in (review["file"], maps["file"]):
            assert (figures / name).is_file() and (figures / name).with_suffix(".pdf").is_file()
        in_category = [m["file"] for m in manifest if m["category"] == category]  # the report's order
        assert in_category[0].startswith("scores_") and in_category[1:] == [review["file"], maps["file"]]
    files = [m["file"] for m in manifest]  # before the other plugins' figures, as when kde_vs_test drew them
    assert files.index("maps_fixed_scores_disc_seed0.png") < files.index("recall_by_type_and_size.png")
    table = pd.read_csv(figures / "label_review.csv")
    assert list(table.columns) == REVIEW_COLUMNS
    kde = pd.read_csv(small_run / "results.csv").query("calibration == 'kde'").set_index("category")["threshold"]
    for category, rows in table.groupby("category"):
        assert rows["threshold"].to_numpy() == pytest.approx(kde[category], rel=1e-12)
        assert set(rows["kind"]) <= {"good above threshold", "defect scoring lowest"}


def test_a_cached_rerun_draws_no_review_figure_and_writes_the_same_files(cli, small_protocol, tmp_path, monkeypatch):
    from harness_review import review

    drawn: list[str] = []
    for name in ("_draw_review", "_draw_map_panels"):
        original = getattr(review, name)
        monkeypatch.setattr(review, name, lambda *a, _f=original, _n=name: drawn.append(_n) or _f(*a))
    assert cli("-q", "run", str(small_protocol), "--out", str(tmp_path / "a"))[0] == 0
    assert sorted(drawn) == ["_draw_map_panels"] * 2 + ["_draw_review"] * 2  # in this process, once per category
    drawn.clear()
    assert cli("-q", "run", str(small_protocol), "--out", str(tmp_path / "b"))[0] == 0
    assert drawn == []  # copied from the derived cache
    written = sorted(p.name for p in (tmp_path / "a" / "figures").iterdir() if p.name.startswith(("review", "maps")))
    assert len(written) == 8
    for name in [*written, "label_review.csv"]:
        assert (tmp_path / "a" / "figures" / name).read_bytes() == (tmp_path / "b" / "figures" / name).read_bytes()


def test_the_kind_options_switch_them_off(cli, tmp_path):
    protocol = write_protocol(tmp_path / "off.yaml", SMALL_PROTOCOL + "analysis: {review: 0, map_panels: false}\n")
    assert cli("-q", "run", str(protocol), "--out", str(tmp_path / "out"))[0] == 0
    names = {p.name for p in (tmp_path / "out" / "figures").iterdir()}
    assert not {n for n in names if n.startswith(("review_", "maps_"))} and "label_review.csv" not in names


@pytest.fixture
def restore_plugins():
    from harness.plugins import configure

    yield
    configure()  # back to the environment's defaults for the other tests


def test_without_the_plugin_only_the_review_outputs_are_missing(cli, tmp_path, restore_plugins):
    protocol = write_protocol(tmp_path / "p.yaml", SMALL_PROTOCOL.replace("fixed_scores", "mean_colour"))
    assert cli("-q", "run", str(protocol), "--out", str(tmp_path / "with"))[0] == 0
    assert cli("--disable-plugin", "review", "-q", "run", str(protocol), "--out", str(tmp_path / "without"))[0] == 0
    with_, without = ({p.name for p in (tmp_path / out / "figures").iterdir()} for out in ("with", "without"))
    assert with_ - without == {
        "label_review.csv",
        *(
            f"{kind}_mean_colour_{c}_seed0.{s}"
            for kind in ("review", "maps")
            for c in ("weave", "disc")
            for s in ("png", "pdf")
        ),
    }
    assert without <= with_
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "with" / "results.csv"), pd.read_csv(tmp_path / "without" / "results.csv")
    )
