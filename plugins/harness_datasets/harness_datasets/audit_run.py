"""The dataset audit inside a run: computed once per dataset content, stored as ``audit.json``, shown in the report.

``harness run`` calls ``harness_run_audit`` after its jobs: this plugin audits the categories the
run evaluates (the ``harness_dataset_audit`` hook, :mod:`harness_datasets.audit`: near-duplicates
across train and test, the same image under two defect types, empty masks on defect images,
masks on good images, unreadable files) unless ``dataset.audit`` says otherwise, and the run
writes the record to ``audit.json`` beside ``results.csv``. The report's "Dataset audit" section
(``harness_report_sections``) renders that file again without auditing. Findings are warnings:
the audit never removes an image or changes a number.

The result is cached under ``<cache>/audits/<key>.json``, the key being the audit's version and
the categories' content fingerprints (``Category.fingerprint()``, which the jobs' cache keys
compute anyway), so a rerun on the same data pays nothing. Paths are stored relative to the
deepest folder holding every audited image, so a moved dataset reuses the entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import HarnessError, ReportSection, write_atomic
from harness.datasets import Category

log = logging.getLogger("harness")
MAX_DISTANCE = 4
"""Hamming distance (of 64 bits) at or below which two images count as near-duplicates."""
AUDIT_FILE = "audit.json"
AUDIT_VERSION = 1
"""Bump when the audit's checks change what they find (invalidates cached audits)."""
EXAMPLES = 5
"""Example paths the report shows per kind of finding (audit.json keeps them all)."""
KINDS = {
    "near_duplicate": "near-duplicates across train and test (perceptual hash)",
    "conflicting_labels": "the same image under two defect types or classes",
    "empty_mask": "defect images whose mask marks no pixel",
    "mask_on_good": "defect-free images whose mask marks pixels",
    "unreadable": "files that cannot be decoded",
}
FINDING_FIELDS = ("kind", "category", "path", "detail")
SYNTHETIC_NOTE = (
    "not run: the embedded synthetic dataset is generated, its images near-identical by construction "
    "(set dataset.audit: true to audit it anyway)"
)
CHECKS = (
    "near-duplicates across train and test, the same image under two defect types, empty masks on defect images, "
    "masks on good images, unreadable files"
)


def audit_setting(dataset: Any) -> tuple[bool, str]:
    """(whether a run audits, why not): ``dataset.audit`` true/false, or null = on except for the embedded dataset."""
    setting = getattr(dataset, "audit", None)
    if setting is False:
        return False, "not run: dataset.audit is false (harness validate --audit runs it on demand)"
    if setting is None and getattr(dataset, "effective_layout", "") == "synthetic":
        return False, SYNTHETIC_NOTE
    return True, ""


def audit_key(categories: Sequence[Category], max_distance: int = MAX_DISTANCE) -> str:
    """The cache key of an audit: its version, threshold and each category's name and content fingerprint."""
    payload = [AUDIT_VERSION, max_distance, [[c.name, c.fingerprint()] for c in categories]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:20]


def _root(categories: Sequence[Category]) -> Path:
    paths = [
        os.path.abspath(Path(p).expanduser()) for c in categories for r in c.records for p in (r.path, *r.mask_paths)
    ]
    return Path(os.path.commonpath(paths)) if paths else Path("/")


def _relative(finding: dict[str, str], root: Path) -> dict[str, str]:
    prefix = f"{root}{os.sep}"
    return {k: str(finding.get(k, "")).replace(prefix, "") for k in FINDING_FIELDS}


def audit(categories: Sequence[Category], max_distance: int = MAX_DISTANCE) -> list[dict[str, str]]:
    """Every finding in ``categories`` (``kind``, ``category``, ``path``, ``detail``): the first audit plugin's."""
    from harness.runs import get_plugins

    found = get_plugins().manager.hook.harness_dataset_audit(categories=list(categories), max_distance=max_distance)
    if found is None:
        raise HarnessError("no installed plugin audits datasets (harness_dataset_audit; plugins/harness_datasets)")
    return [{k: str(f.get(k, "")) for k in FINDING_FIELDS} for f in found]


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when it cannot be read or parsed."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_cached(path: Path) -> list[dict[str, str]] | None:
    data = _read_json(path)
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list) or not all(_is_finding(f) for f in findings):
        return None  # damaged or foreign: audited again
    return findings


def _is_finding(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), str) for k in FINDING_FIELDS)


def run_audit(categories: Sequence[Category], dataset: Any, cache_root: Path | None) -> dict[str, Any]:
    """The audit record a run writes to ``audit.json``: findings (paths relative to ``root``), counts, cost.

    Reads and writes the cached result under ``cache_root/audits`` when given.
    """
    ran, note = audit_setting(dataset)
    if not ran:
        return {"version": AUDIT_VERSION, "ran": False, "note": note}
    root = _root(categories)
    key = audit_key(categories)
    cached_path = cache_root / "audits" / f"{key}.json" if cache_root is not None else None
    started = time.perf_counter()
    findings = _read_cached(cached_path) if cached_path is not None and cached_path.is_file() else None
    cached = findings is not None
    if findings is None:
        findings = [_relative(f, root) for f in audit(categories)]
        if cached_path is not None:
            entry = {"version": AUDIT_VERSION, "key": key, "findings": findings}
            write_atomic(cached_path, json.dumps(entry, indent=2))
    return {
        "version": AUDIT_VERSION,
        "ran": True,
        "cached": cached,
        "seconds": round(time.perf_counter() - started, 3),
        "key": key,
        "root": str(root),
        "categories": [c.name for c in categories],
        "images": sum(len(c.records) for c in categories),
        "max_distance": MAX_DISTANCE,
        "counts": dict(Counter(f["kind"] for f in findings)),
        "findings": findings,
    }


def audit_run(categories: Sequence[Category], dataset: Any, cache_root: Path | None) -> dict[str, Any]:
    """:func:`run_audit`, with one console warning when something is found; a failure is a note, never an error."""
    try:
        record = run_audit(categories, dataset, cache_root)
    except Exception as exc:  # the audit informs; it never stops a run
        log.warning("dataset audit failed: %s: %s (the run goes on)", type(exc).__name__, exc)
        return {"version": AUDIT_VERSION, "ran": False, "note": f"not run: it failed ({type(exc).__name__}: {exc})"}
    if record["ran"] and record["findings"]:
        counts = ", ".join(f"{n} {kind}" for kind, n in record["counts"].items())
        log.warning("dataset audit: %s (listed in the report and audit.json; numbers unchanged)", counts)
    elif record["ran"]:
        log.info("dataset audit: nothing found (%d images)", record["images"])
    return record


def read_audit(out: Path) -> dict[str, Any] | None:
    """``out/audit.json`` as written by a run, or ``None`` when absent or not an audit record."""
    path = out / AUDIT_FILE
    if not path.is_file() or path.is_symlink():
        return None
    data = _read_json(path)
    return data if isinstance(data, dict) and isinstance(data.get("ran"), bool) else None


def _group(title: str, found: list[dict[str, str]]) -> str:
    """One kind of finding as a paragraph: its title, count and first example paths."""
    examples = [
        f"{f['category']}: {f['path']}" + (f" ({f['detail']})" if f["detail"] else "") for f in found[:EXAMPLES]
    ]
    more = f"; and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
    return f"{title}: {len(found)}, e.g. " + "; ".join(examples) + more


def audit_section(out: Path) -> ReportSection:
    """The report's "Dataset audit" section from ``out/audit.json``: a note, or per kind its count and examples.

    Strings are left raw: the report escapes them (HTML and LaTeX).
    """
    record = read_audit(out)
    if record is None:
        note = "not run: this output has no audit.json (harness validate --audit runs it)"
        return ReportSection("Dataset audit", f"Dataset audit {note}.")
    if not record["ran"]:
        return ReportSection("Dataset audit", f"Dataset audit {record.get('note', 'not run')}.")
    findings = [f for f in record.get("findings", []) if _is_finding(f)]
    images = int(record.get("images", 0) or 0)
    if not findings:
        return ReportSection("Dataset audit", f"audit: nothing found ({images} images checked: {CHECKS}).")
    lead = (
        f"{len(findings)} finding{'s' if len(findings) != 1 else ''} in the {images} images of this run. They are "
        "warnings: no image was removed and no number changed; every finding is in audit.json. Paths are relative "
        f"to {record.get('root', '')}."
    )
    paragraphs = [lead]
    for kind in dict.fromkeys([*KINDS, *(f["kind"] for f in findings)]):
        found = [f for f in findings if f["kind"] == kind]
        if found:
            paragraphs.append(_group(KINDS.get(kind, kind), found))
    return ReportSection("Dataset audit", "\n\n".join(paragraphs))
