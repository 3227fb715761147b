"""Fingerprints and data checks remembered across runs only while no file changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data import memo
from harness.data.base import Category, Record
from harness.data.checks import check_category
from harness.errors import DatasetError


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(folder))
    return folder


def _category(tmp_path: Path) -> Category:
    rng = np.random.default_rng(0)
    records = []
    for i, split in enumerate(["train", "train", "test", "test"]):
        path = tmp_path / "data" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
        records.append(Record(path, split, "good" if i < 3 else "scratch"))
    return Category("c", records)


def test_a_remembered_fingerprint_is_the_computed_one_and_changes_with_a_file(tmp_path, home):
    category = _category(tmp_path)
    first = category.fingerprint()
    assert (home / memo.MEMO_FILE).is_file()
    again = _category_same_files(category)
    assert again.fingerprint() == first == again._compute_fingerprint()
    path = category.records[0].path
    stat = os.stat(path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes, mtime put back: ctime still moves
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = _category_same_files(category)
    assert changed.fingerprint() == changed._compute_fingerprint() != first


def _category_same_files(category: Category) -> Category:
    return Category(category.name, list(category.records))


def test_a_check_passed_before_is_run_again_once_a_file_is_damaged(tmp_path, home):
    category = _category(tmp_path)
    check_category(category)
    check_category(_category_same_files(category))  # remembered
    category.records[2].path.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot read image"):
        check_category(_category_same_files(category))


def test_no_home_no_memo_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "absent"))
    _category(tmp_path).fingerprint()
    assert not (tmp_path / "absent").exists()
