"""The score cache's integrity and atomic swap, content keys, output ownership and the executor's options."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import ProtocolError
from harness.executors import LocalExecutor
from harness.integrity import by_content
from harness.ownership import folder_files, foreign_files, owned_files, record
from harness.report import latex_escape
from harness.store import ScoreCache


def _entry(n_holdout: int = 2, n_test: int = 3, value: float = 0.5):
    scores = pd.DataFrame(
        {
            "path": [f"a/{i}.png" for i in range(n_holdout + n_test)],
            "split": ["holdout"] * n_holdout + ["test"] * n_test,
            "score": [value] * (n_holdout + n_test),
        }
    )
    maps = np.full((n_test, 4, 4), value, dtype=np.float32)
    meta = {"n_holdout": n_holdout, "n_test": n_test, "image_size": [4, 4]}
    return scores, maps, meta


def test_put_records_checksums_and_counts_and_reads_back(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("k", *_entry())
    assert cache.has("k")
    integrity = cache.meta("k")["integrity"]
    assert integrity["rows"] == 5 and integrity["maps_shape"] == [3, 4, 4]
    assert set(integrity["files"]) == {"scores.csv", "maps.npz"}
    assert len(cache.scores("k")) == 5 and cache.maps("k").shape == (3, 4, 4)


def test_an_entry_from_before_checksums_counts_as_missing(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    scores, _, meta = _entry()
    scores.to_csv(folder / "scores.csv", index=False)
    (folder / "meta.json").write_text(json.dumps(meta))
    assert not ScoreCache(tmp_path).has("old")
    ScoreCache(tmp_path).put("old", *_entry())  # the plain folder is replaced by a verified entry
    assert ScoreCache(tmp_path).has("old")


def test_rewriting_an_entry_replaces_it_and_removes_the_old_version(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("k", *_entry(value=0.1))
    cache.put("k", *_entry(value=0.9))
    assert cache.scores("k")["score"].tolist() == [0.9] * 5
    assert len([p for p in (tmp_path / ".entries").iterdir() if p.is_dir()]) == 1


def _writer(root: str, rounds: int) -> None:
    cache = ScoreCache(Path(root))
    for index in range(rounds):
        cache.put("k", *_entry(value=float(index % 3)))


@pytest.mark.slow  # three writer processes and a reader racing: run alone, not beside other tests
def test_concurrent_writers_never_leave_a_reader_without_a_whole_entry(tmp_path):
    cache = ScoreCache(tmp_path)
    cache.put("k", *_entry())
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_writer, args=(str(tmp_path), 25)) for _ in range(3)]
    for writer in writers:
        writer.start()
    seen = 0
    while any(w.is_alive() for w in writers):
        reader = ScoreCache(tmp_path)
        assert reader.has("k"), "a reader found no whole entry during a rewrite"
        assert len(reader.scores("k")) == 5 and reader.maps("k").shape == (3, 4, 4)
        seen += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert ScoreCache(tmp_path).has("k") and seen > 0
    assert len([p for p in (tmp_path / ".entries").iterdir() if p.is_dir()]) == 1


def test_options_naming_files_enter_by_content_not_path(tmp_path):
    first, second = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    first.write_bytes(b"weights")
    second.parent.mkdir()
    shutil.copy(first, second)
    keyed = by_content({"weights": str(first), "lr": 0.1, "nested": [str(second)]})
    assert str(tmp_path) not in json.dumps(keyed)
    assert keyed["weights"] == keyed["nested"][0] and keyed["lr"] == 0.1
    os.utime(first, ns=(5, 5))
    first.write_bytes(b"other weights")
    assert by_content({"weights": str(first)})["weights"] != keyed["weights"]


def test_folders_enter_by_their_tree(tmp_path):
    for name in ("x", "y"):
        (tmp_path / name / "class").mkdir(parents=True)
        (tmp_path / name / "class" / "1.png").write_bytes(b"img")
    assert by_content(str(tmp_path / "x")) == by_content(str(tmp_path / "y"))
    (tmp_path / "y" / "class" / "2.png").write_bytes(b"more")
    assert by_content(str(tmp_path / "x")) != by_content(str(tmp_path / "y"))


def test_ownership_manifest_and_a_folder_from_before_manifests(tmp_path):
    for name in ("results.csv", "run.json", "figures/a.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert foreign_files(tmp_path) == ["notes.txt"]  # legacy: the harness's own names are adopted
    record(tmp_path, ["results.csv"], replace=True)
    assert owned_files(tmp_path) == {"results.csv"}
    assert ".harness-owned.json" not in folder_files(tmp_path)
    assert set(foreign_files(tmp_path)) == {"run.json", "figures/a.png", "notes.txt"}


@pytest.mark.parametrize("timeout", [0, -1, "soon"])
def test_executor_timeout_must_be_positive_seconds(timeout):
    with pytest.raises(ProtocolError, match=r"executor\.timeout"):
        LocalExecutor(timeout=timeout)


def test_latex_escape_is_idempotent_and_drops_control_characters():
    once = latex_escape("a_b\\c\x07")
    assert once == r"a\_b\textbackslash{}c" and latex_escape(once) == once


def test_recording_into_a_folder_from_before_manifests_keeps_its_known_names(tmp_path):
    for name in ("results.csv", "run.json", "report.html"):
        (tmp_path / name).write_text("x")
    record(tmp_path, ["report.html"])
    assert owned_files(tmp_path) == {"results.csv", "run.json", "report.html"}
