"""The dataset audit inside ``harness run``: audit.json, the report's section, the cache, and no number changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from public_datasets import WRITERS

from conftest import write_protocol

METRICS = ["auroc", "ap", "f1", "threshold", "recall", "precision"]


def _protocol(tmp_path, layout="mpdd", audit=None, plant=True):
    root = tmp_path / layout
    if not root.exists():
        WRITERS[layout](root)
    if plant and layout == "mpdd":
        base = root / "bracket_black"
        shutil.copy(base / "train/good/000.png", base / "test/good/100.png")  # a training image in the test set
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(base / "ground_truth/hole/001_mask.png")  # empty mask
    setting = "" if audit is None else f", audit: {str(audit).lower()}"
    return write_protocol(
        tmp_path / f"{layout}-{audit}.yaml",
        f"""
protocol: kde_vs_test
dataset: {{layout: {layout}, root: {root}, image_size: 32{setting}}}
models: [fixed_scores]
calibrations: [test_f1_oracle, kde]
seeds: [0]
analysis: {{bootstrap: 0, review: 0, map_panels: false}}
""",
    )


def test_a_run_reports_what_the_audit_found(cli, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(_protocol(tmp_path)), "--out", str(out))
    assert code == 0, stderr  # findings are warnings, not errors
    assert "dataset audit: 1 near_duplicate, 1 empty_mask" in stderr
    audit = json.loads((out / "audit.json").read_text())
    assert audit["ran"] and not audit["cached"] and audit["counts"] == {"near_duplicate": 1, "empty_mask": 1}
    paths = {f["kind"]: f["path"] for f in audit["findings"]}
    assert paths == {"near_duplicate": "test/good/100.png", "empty_mask": "test/hole/001.png"}  # relative
    html = (out / "report.html").read_text()
    assert "Dataset audit" in html and "2 findings" in html and "test/good/100.png" in html
    assert "defect images whose mask marks no pixel" in html and "train/good/000.png" in html
    tex = (out / "report.tex").read_text()
    assert r"\section*{Dataset audit}" in tex and "bracket\\_black: test/hole/001.png" in tex


def test_reruns_and_reports_read_the_stored_audit(cli, tmp_path, monkeypatch):
    import harness_datasets.audit_run

    protocol, out = _protocol(tmp_path), tmp_path / "out"
    assert cli("run", str(protocol), "--out", str(out))[0] == 0

    def no_audit(*args, **kwargs):
        raise AssertionError("audited again")

    monkeypatch.setattr(harness_datasets.audit_run, "audit", no_audit)
    assert cli("run", str(protocol), "--out", str(out))[0] == 0  # the same data: the cached audit
    assert json.loads((out / "audit.json").read_text())["cached"] is True
    (out / "report.html").unlink()
    assert cli("report", str(out))[0] == 0  # re-rendered from audit.json
    assert "test/good/100.png" in (out / "report.html").read_text()


def test_the_audit_never_changes_a_number(cli, tmp_path):
    results = {}
    for audit in (True, False):
        out = tmp_path / f"out-{audit}"
        assert cli("run", str(_protocol(tmp_path, audit=audit)), "--out", str(out))[0] == 0
        results[audit] = pd.read_csv(out / "results.csv")
    columns = [c for c in METRICS if c in results[True]]
    assert columns
    pd.testing.assert_frame_equal(results[True][columns], results[False][columns])
    assert not json.loads((tmp_path / "out-False" / "audit.json").read_text())["ran"]


def test_a_clean_dataset_says_nothing_found(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(_protocol(tmp_path, "btech")), "--out", str(out))[0] == 0
    assert "audit: nothing found" in (out / "report.html").read_text()
    assert "audit: nothing found" in (out / "report.tex").read_text()


@pytest.mark.parametrize(("audit", "note"), [(False, "dataset.audit is false"), (None, "embedded synthetic")])
def test_a_run_without_audit_says_so(cli, tmp_path, small_protocol, audit, note):
    protocol = _protocol(tmp_path, audit=False) if audit is False else small_protocol
    out = tmp_path / "out"
    assert cli("run", str(protocol), "--out", str(out))[0] == 0
    for report in ("report.html", "report.tex"):
        assert note in (out / report).read_text()
    assert not (Path(os.environ["HARNESS_CACHE_DIR"]) / "audits").exists()


def test_an_output_without_audit_json_still_renders(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(_protocol(tmp_path, "btech")), "--out", str(out))[0] == 0
    (out / "audit.json").unlink()
    assert cli("report", str(out))[0] == 0
    assert "this output has no audit.json" in (out / "report.html").read_text()


def test_a_failing_audit_is_a_note_not_a_failed_run(cli, tmp_path, monkeypatch):
    import harness_datasets.audit_run

    def broken(*args, **kwargs):
        raise RuntimeError("hash library missing")

    monkeypatch.setattr(harness_datasets.audit_run, "audit", broken)
    out = tmp_path / "out"
    code, _, stderr = cli("run", str(_protocol(tmp_path, "btech")), "--out", str(out))
    assert code == 0, stderr
    assert "dataset audit failed: RuntimeError" in stderr
    assert "it failed (RuntimeError: hash library missing)" in (out / "report.html").read_text()


def test_audit_paths_are_escaped_in_both_reports(cli, tmp_path):
    out = tmp_path / "out"
    assert cli("run", str(_protocol(tmp_path, "btech")), "--out", str(out))[0] == 0
    audit = json.loads((out / "audit.json").read_text())
    finding = {"kind": "unreadable", "category": "01", "path": "<script>x</script>_%.png", "detail": "a & b"}
    audit["findings"] = [finding, {"kind": "unreadable", "path": 3}]  # a malformed entry is skipped
    (out / "audit.json").write_text(json.dumps(audit))
    assert cli("report", str(out))[0] == 0
    html = (out / "report.html").read_text()
    assert "&lt;script&gt;x&lt;/script&gt;_%.png" in html and "<script>x" not in html
    assert r"\_\%.png" in (out / "report.tex").read_text()


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "I;16"])
def test_the_perceptual_hash_is_that_of_the_rgb_image_in_every_mode(tmp_path, mode):
    """A grey image is hashed without an RGB copy: the same bits as hashing the RGB copy."""
    import imagehash
    from harness_datasets.audit import _phash

    pixels = np.random.default_rng(0).integers(0, 255, (64, 96), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    path = tmp_path / f"image_{mode.replace(';', '')}.png"
    image.save(path)
    with Image.open(path) as reopened:
        expected = np.asarray(imagehash.phash(reopened.convert("RGB")).hash, dtype=bool).reshape(-1)
    assert np.array_equal(_phash(path), expected)
