"""Derived artefacts beside the score cache: verified on read, damaged ones recomputed; reuse without recomputing."""

from __future__ import annotations

import json
import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from harness.analyses.base import JobData
from harness.derived_cache import DerivedCache, digest
from harness.figures import render_once
from harness.metrics import bootstrap_intervals_many, threshold_metrics


def bootstrap_intervals(scores, labels, threshold, rng, resamples):
    """The reference: percentile bootstrap intervals of recall and F1 at one threshold, resample by resample."""
    n = scores.size
    index = rng.integers(0, n, size=(resamples, n))
    predicted = scores[index] >= threshold
    truth = labels[index].astype(bool)
    tp = (predicted & truth).sum(axis=1)
    fn = (~predicted & truth).sum(axis=1)
    fp = (predicted & ~truth).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    low_recall, high_recall = np.nanpercentile(recall, [2.5, 97.5])
    low_f1, high_f1 = np.nanpercentile(f1, [2.5, 97.5])
    return {"recall_ci_low": low_recall, "recall_ci_high": high_recall, "f1_ci_low": low_f1, "f1_ci_high": high_f1}


def _record(store: DerivedCache, key: str):
    return store.root / key[:2] / f"{key}.json"


def test_value_round_trip_with_nan(tmp_path):
    store = DerivedCache(tmp_path)
    key = digest("test", 1)
    assert store.get_value(key) is None
    store.put_value(key, {"a": 0.25, "b": float("nan")})
    value = store.get_value(key)
    assert value["a"] == 0.25 and math.isnan(value["b"])


def test_tampered_value_is_ignored_with_a_warning(tmp_path, caplog):
    store = DerivedCache(tmp_path)
    key = digest("test", 2)
    store.put_value(key, {"auroc": 0.5})
    record = json.loads(_record(store, key).read_text())
    record["value"]["auroc"] = 0.99
    _record(store, key).write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="harness.cache"):
        assert DerivedCache(tmp_path).get_value(key) is None
    assert "damaged" in caplog.text


def test_truncated_record_is_ignored(tmp_path):
    store = DerivedCache(tmp_path)
    key = digest("test", 3)
    store.put_value(key, [1, 2])
    _record(store, key).write_text(_record(store, key).read_text()[:5])
    assert store.get_value(key) is None


def _draw_counter(calls: list[str]):
    def draw(path):
        calls.append(path.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG fake " + path.name.encode())
        path.with_suffix(".pdf").write_bytes(b"%PDF fake")

    return draw


def test_figure_drawn_once_then_copied(tmp_path):
    store, calls = DerivedCache(tmp_path / "cache"), []
    render_once(tmp_path / "a" / "f.png", _draw_counter(calls), store, "kind", [1, 2])
    render_once(tmp_path / "b" / "f.png", _draw_counter(calls), store, "kind", [1, 2])
    assert calls == ["f.png"]
    assert (tmp_path / "b" / "f.png").read_bytes() == (tmp_path / "a" / "f.png").read_bytes()
    assert (tmp_path / "b" / "f.pdf").is_file()
    render_once(tmp_path / "c" / "f.png", _draw_counter(calls), store, "kind", [1, 3])  # other content
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_figure_is_redrawn(tmp_path, damage):
    store, calls = DerivedCache(tmp_path / "cache"), []
    render_once(tmp_path / "a" / "f.png", _draw_counter(calls), store, "kind", "x")
    (png,) = store.root.rglob("*.png")
    if damage == "flip":
        png.write_bytes(png.read_bytes().replace(b"fake", b"FAKE"))
    elif damage == "truncate":
        png.write_bytes(png.read_bytes()[:4])
    else:
        png.unlink()
    render_once(tmp_path / "b" / "f.png", _draw_counter(calls), store, "kind", "x")
    assert len(calls) == 2
    render_once(tmp_path / "c" / "f.png", _draw_counter(calls), store, "kind", "x")  # stored again, intact
    assert len(calls) == 2


def test_many_thresholds_match_one_at_a_time_on_the_same_resamples():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 40))
        scores, labels = np.round(rng.normal(size=n), 1), rng.integers(0, 2, n)
        thresholds = [-np.inf, np.inf, *rng.choice(scores, 3), 0.05]
        many = bootstrap_intervals_many(scores, labels, thresholds, np.random.default_rng(7), 100)
        for threshold, together in zip(thresholds, many, strict=True):
            with warnings.catch_warnings():  # the one-threshold version warns on all-NaN resamples
                warnings.simplefilter("ignore")
                alone = bootstrap_intervals(scores, labels, threshold, np.random.default_rng(7), 100)
            assert together.keys() == alone.keys()
            for name, value in alone.items():
                assert value == pytest.approx(together[name], nan_ok=True)


def test_threshold_metrics_equal_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(1, 50))
        scores, labels = np.round(rng.normal(size=n), 1), rng.integers(0, 2, n)
        for threshold in (-np.inf, np.inf, *rng.choice(scores, 2)):
            predicted = (scores >= threshold).astype(int)
            ours = threshold_metrics(scores, labels, threshold)
            assert ours["accuracy"] == float(accuracy_score(labels, predicted))
            assert ours["precision"] == float(precision_score(labels, predicted, zero_division=0))
            assert ours["recall"] == float(recall_score(labels, predicted, zero_division=0))
            assert ours["f1"] == float(f1_score(labels, predicted, zero_division=0))


def _job(tmp_path, loads: list[str], scores_sha: str = "s1") -> JobData:
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(6, int), np.ones(6, int)]
    frame = pd.DataFrame(
        {
            "path": [f"img{i}.png" for i in range(16)],
            "split": ["holdout"] * 4 + ["test"] * 12,
            "score": np.r_[rng.random(4), rng.random(12) + labels],
            "label": np.r_[np.zeros(4, int), labels],
            "defect_type": ["good"] * 10 + ["scratch"] * 6,
        }
    )
    maps = rng.random((12, 8, 8)).astype(np.float32)
    masks = np.zeros((12, 8, 8), bool)
    masks[6:, 2:5, 2:5] = True

    def load_maps():
        loads.append("maps")
        return maps

    meta = {"integrity": {"files": {"scores.csv": {"sha256": scores_sha}, "maps.npz": {"sha256": "m1"}}}}
    return JobData("m", "c", 0, "key", meta, frame, load_maps, lambda: masks, derived=DerivedCache(tmp_path))


def test_pixel_metrics_computed_once_per_content(tmp_path):
    loads: list[str] = []
    first = _job(tmp_path, loads).pixel_metrics
    assert loads == ["maps"]
    again = _job(tmp_path, loads).pixel_metrics  # a rerun: read back, no map loaded
    assert loads == ["maps"]
    assert first.keys() == again.keys()
    for name, value in first.items():
        assert value == pytest.approx(again[name], nan_ok=True)
    assert _job(tmp_path, loads, scores_sha="s2").pixel_metrics.keys() == first.keys()  # another entry: computed
    assert loads == ["maps", "maps"]


def test_image_metrics_same_from_cache(tmp_path):
    loads: list[str] = []
    first = _job(tmp_path, loads).image_metrics
    assert first == _job(tmp_path, loads).image_metrics


def test_analysis_and_report_modules_import_no_plotting_or_model_library():
    import subprocess
    import sys

    code = (
        "import sys, harness.report, harness_paradigms.kde_vs_test, harness_review.review, harness.builtin_metrics, "
        "harness.calibration, harness.figures, harness.metrics, harness.derived_cache\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    loaded = set(result.stdout.split())
    assert not loaded & {"matplotlib", "sklearn", "scipy", "torch", "anomalib", "PIL", "cv2"}


def test_unwritable_cache_still_draws(tmp_path, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".derived").write_text("a file where the folder would go")
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, logger="harness.cache"):
        render_once(tmp_path / "a" / "f.png", _draw_counter(calls), DerivedCache(cache), "kind", 1)
        render_once(tmp_path / "b" / "f.png", _draw_counter(calls), DerivedCache(cache), "kind", 2)
    assert calls == ["f.png", "f.png"] and (tmp_path / "b" / "f.png").is_file()
    assert caplog.text.count("cannot store") == 2  # one line per run (per cache object), not per figure
