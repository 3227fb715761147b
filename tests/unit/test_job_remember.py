"""An analysis's own per-job work kept beside the scores (``JobData.remember``): reused, never stale or damaged."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from harness.analyses.base import JobData
from harness.derived_cache import DerivedCache


def _job(tmp_path, scores_sha: str = "s1", shift: float = 0.0, derived: bool = True) -> JobData:
    frame = pd.DataFrame(
        {
            "path": [f"img{i}.png" for i in range(8)],
            "split": ["holdout"] * 2 + ["test"] * 6,
            "score": np.linspace(0, 1, 8) + shift,
            "label": [0, 0, 0, 0, 0, 1, 1, 1],
        }
    )
    meta = {"integrity": {"files": {"scores.csv": {"sha256": scores_sha}}}}
    store = DerivedCache(tmp_path) if derived else None
    return JobData("m", "c", 0, "key", meta, frame, lambda: None, lambda: None, derived=store)


def _counting(calls: list[int]):
    def compute():
        calls.append(1)
        return {"rows": [{"threshold": 0.5, "n": 3, "t": (1, 2)}], "nan": float("nan")}

    return compute


def test_computed_once_then_read_back_as_json_reads_it(tmp_path):
    calls: list[int] = []
    first = _job(tmp_path).remember("kind", _counting(calls), "options", 1)
    again = _job(tmp_path).remember("kind", _counting(calls), "options", 1)
    assert calls == [1]
    assert first["rows"] == again["rows"] == [{"threshold": 0.5, "n": 3, "t": [1, 2]}]  # tuples as lists both times
    assert np.isnan(again["nan"])


def test_changed_inputs_scores_or_entry_recompute(tmp_path):
    calls: list[int] = []
    _job(tmp_path).remember("kind", _counting(calls), "options", 1)
    _job(tmp_path).remember("kind", _counting(calls), "options", 2)  # another option
    _job(tmp_path).remember("other", _counting(calls), "options", 1)  # another analysis
    _job(tmp_path, shift=0.01).remember("kind", _counting(calls), "options", 1)  # other scores
    _job(tmp_path, scores_sha="s2").remember("kind", _counting(calls), "options", 1)  # another score entry
    _job(tmp_path).remember("kind", _counting(calls), "options", 1, "code v2")  # new code (its hash an input)
    assert len(calls) == 6


def test_damaged_record_is_recomputed_and_named(tmp_path, caplog):
    calls: list[int] = []
    _job(tmp_path).remember("kind", _counting(calls))
    (record,) = (tmp_path / ".derived").rglob("*.json")
    content = json.loads(record.read_text())
    content["value"]["rows"][0]["threshold"] = 0.25
    record.write_text(json.dumps(content))
    with caplog.at_level(logging.WARNING, logger="harness.cache"):
        value = _job(tmp_path).remember("kind", _counting(calls))
    assert len(calls) == 2 and value["rows"][0]["threshold"] == 0.5
    assert "damaged" in caplog.text
    _job(tmp_path).remember("kind", _counting(calls))  # stored again, intact
    assert len(calls) == 2


def test_without_a_derived_cache_or_checksums_computed_each_time(tmp_path):
    calls: list[int] = []
    for _ in range(2):
        _job(tmp_path, derived=False).remember("kind", _counting(calls))
    job = _job(tmp_path)
    job.meta = {}
    for _ in range(2):
        job.remember("kind", _counting(calls))
    assert len(calls) == 4
    assert not (tmp_path / ".derived").exists()
