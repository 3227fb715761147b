"""Dataset audit (``harness validate --audit``, ``harness run``): what in a dataset would make its results wrong.

The ``harness_dataset_audit`` hook of this plugin: the checks. :mod:`harness_datasets.audit_run`
caches, stores (``audit.json``) and reports the findings of a run; ``harness validate --audit``
prints them.

Checks, per category, on the records the protocol would use:

- ``unreadable``: an image or mask that PIL cannot decode;
- ``near_duplicate``: a training (or held-out) image whose perceptual hash is within
  ``max_distance`` bits of a test image's (the test set then partly measures memory);
- ``conflicting_labels``: the same image (perceptual hash within ``max_distance``) under two
  defect types or classes;
- ``empty_mask``: a defective test image whose masks have no defect pixel (in a category that has masks);
- ``mask_on_good``: a defect-free image with a mask that marks defect pixels.

Perceptual hash: ``imagehash.phash`` (64-bit DCT hash; Zauner 2010) on the full-resolution image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.datasets import Category, Record

MAX_DISTANCE = 4
"""Hamming distance (of 64 bits) at or below which two images count as near-duplicates."""


@dataclass(frozen=True)
class Finding:
    """One audit finding: what, in which category, which file, and the detail (e.g. the other file)."""

    kind: str
    category: str
    path: str
    detail: str = ""


def _phash(path: Path) -> np.ndarray | None:
    import imagehash

    try:
        with Image.open(path) as image:  # phash reads luminance: a grey image needs no RGB copy (same hash)
            grey = image if image.mode == "L" else image.convert("RGB")
            return np.asarray(imagehash.phash(grey).hash, dtype=bool).reshape(-1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def _mask_pixels(paths: Sequence[Path]) -> bool | None:
    """Whether any mask marks a defect pixel; ``None`` when one cannot be read."""
    found = False
    for path in paths:
        try:
            with Image.open(path) as image:
                found = found or bool(np.asarray(image.convert("L")).any())
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            return None
    return found


def _close_pairs(left: np.ndarray, right: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) for hash rows of ``left`` and ``right`` within ``max_distance`` bits."""
    pairs = []
    for start in range(0, len(left), 256):
        block = left[start : start + 256]
        distance = (block[:, None, :] != right[None, :, :]).sum(axis=-1)
        for i, j in zip(*np.nonzero(distance <= max_distance), strict=True):
            pairs.append((start + int(i), int(j), int(distance[i, j])))
    return pairs


def _hash_records(category: Category, findings: list[Finding]) -> tuple[list[Record], np.ndarray]:
    kept, hashes = [], []
    for record in category.records:
        value = _phash(record.path)
        if value is None:
            findings.append(Finding("unreadable", category.name, str(record.path), "image cannot be decoded"))
            continue
        kept.append(record)
        hashes.append(value)
    return kept, np.array(hashes, dtype=bool).reshape(len(hashes), -1)


def _duplicates(category: Category, records: list[Record], hashes: np.ndarray, max_distance: int) -> list[Finding]:
    findings = []
    train = [i for i, r in enumerate(records) if r.split in ("train", "holdout")]
    test = [i for i, r in enumerate(records) if r.split == "test"]
    if train and test:
        for i, j, d in _close_pairs(hashes[train], hashes[test], max_distance):
            a, b = records[train[i]], records[test[j]]
            findings.append(Finding("near_duplicate", category.name, str(b.path), f"train {a.path}, distance {d}"))
    for i, j, d in _close_pairs(hashes, hashes, max_distance):
        a, b = records[i], records[j]
        if i < j and a.defect_type != b.defect_type:
            detail = f"{a.defect_type} vs {b.defect_type}: {a.path}, distance {d}"
            findings.append(Finding("conflicting_labels", category.name, str(b.path), detail))
    return findings


def _masks(category: Category) -> list[Finding]:
    findings = []
    has_masks = any(r.mask_paths for r in category.records if r.label)
    for record in category.records:
        if not record.mask_paths and not (record.label and has_masks):
            continue
        marked = _mask_pixels(record.mask_paths)
        if marked is None:
            findings.append(Finding("unreadable", category.name, str(record.path), "a mask cannot be decoded"))
        elif record.label and not marked:
            findings.append(
                Finding("empty_mask", category.name, str(record.path), "defective, mask has no defect pixel")
            )
        elif not record.label and marked:
            findings.append(Finding("mask_on_good", category.name, str(record.path), "defect-free, mask marks pixels"))
    return findings


def audit(categories: Iterable[Category], max_distance: int = MAX_DISTANCE) -> list[Finding]:
    """Every finding in ``categories`` (see the module docstring)."""
    findings: list[Finding] = []
    for category in categories:
        records, hashes = _hash_records(category, findings)
        findings.extend(_duplicates(category, records, hashes, max_distance))
        findings.extend(_masks(category))
    return findings
