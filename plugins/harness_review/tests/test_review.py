"""The review plugin's pieces: candidates, the hook's guard, and imports that load no plotting library."""

import subprocess
import sys
from types import SimpleNamespace

import harness_review
import pandas as pd
from harness_review.review import review_candidates


def _job() -> SimpleNamespace:
    test = pd.DataFrame(
        {
            "label": [0, 0, 0, 1, 1, 1],
            "score": [0.1, 0.9, 0.7, 0.2, 0.95, 0.3],
            "path": [f"/d/{i}.png" for i in range(6)],
            "defect_type": ["good"] * 3 + ["crack"] * 3,
            "category": ["weave"] * 6,
        }
    )
    return SimpleNamespace(test=test, model="m")


def test_candidates_are_goods_above_the_threshold_highest_first_and_the_lowest_defects():
    rows = review_candidates(_job(), threshold=0.5, count=2)
    assert list(rows.columns) == ["model", "category", "kind", "path", "defect_type", "score", "threshold"]
    goods = rows[rows["kind"] == "good above threshold"]
    defects = rows[rows["kind"] == "defect scoring lowest"]
    assert goods["score"].tolist() == [0.9, 0.7] and defects["score"].tolist() == [0.2, 0.3]
    assert (rows["threshold"] == 0.5).all() and (rows["model"] == "m").all()
    assert review_candidates(_job(), threshold=1.0, count=2)["kind"].tolist() == ["defect scoring lowest"] * 2


def test_the_hook_adds_nothing_to_rows_without_thresholds():
    context = SimpleNamespace(jobs=[], options={}, figure_dir=None, calibrations=[])
    assert harness_review.harness_analysis_extras(context, pd.DataFrame()) is None
    assert harness_review.harness_analysis_extras(context, pd.DataFrame({"cache_key": ["k"]})) is None


def test_the_plugin_is_registered_as_review():
    from harness.runs import get_plugins

    assert "review" in {info.name for info in get_plugins().infos}


def test_importing_the_plugin_loads_no_plotting_library():
    code = (
        "import sys, harness_review, harness_review.review\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert not set(result.stdout.split()) & {"matplotlib", "sklearn", "scipy", "torch", "PIL"}


def test_every_figure_key_covers_the_plugins_code(monkeypatch, tmp_path):
    from harness_review import review

    keys = []
    monkeypatch.setattr(review, "render_once", lambda path, draw, store, *key: keys.append(key))
    test = pd.DataFrame({"label": [0, 1]})
    job = SimpleNamespace(
        derived=object(), view_digest="v", key="k", model="m", category="c", seed=0, test=test, meta={}
    )
    candidates = pd.DataFrame(
        {"path": ["a.png"], "defect_type": ["crack"], "score": [0.5], "kind": ["missed"], "threshold": [0.4]}
    )
    for code in ("old", "new"):
        monkeypatch.setattr(review, "code_digest", lambda code=code: code)
        review.review_figure(job, candidates, tmp_path, "kde")
        review.map_panel_figure(job, tmp_path)
    review_old, maps_old, review_new, maps_new = keys
    assert review_old != review_new and maps_old != maps_new  # new plugin code, new figures
