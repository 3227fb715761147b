"""Cheating detectors: each scores images by something other than their pixels (HARNESS_PLUGINS=cheats).

Every one of them reads a label perfectly when handed the dataset's own files in folder order
(tests/integration/test_attacks_data.py checks that), and must score at chance through
``harness run``, which hands images over under opaque names in a shuffled order.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np

import harness

DEFECT_WORDS = ("crack", "scratch", "defect", "anomal")


def _good_in(text: str) -> float:
    return 0.0 if "good" in text else 1.0


def _readlink(path: Path) -> float:
    try:
        return _good_in(os.readlink(path))
    except OSError:  # not a link
        return 0.5


def _embedded_label(path: Path) -> float:
    data = Path(path).read_bytes()
    return 1.0 if any(word.encode() in data for word in DEFECT_WORDS) else 0.0


FEATURES = {
    "path_substring_good": lambda p: _good_in(str(p)),
    "parent_folder": lambda p: 0.0 if p.parent.name == "good" else 1.0,
    "defect_words": lambda p: float(any(w in "/".join(p.parts[-3:]).lower() for w in DEFECT_WORDS)),
    "file_name_number": lambda p: float("".join(c for c in p.stem if c.isdigit()) or 0),
    "resolved_path": lambda p: _good_in(str(Path(p).resolve())),
    "readlink": _readlink,
    "file_size": lambda p: float(os.path.getsize(p)),
    "mtime": lambda p: os.stat(p).st_mtime,
    "inode": lambda p: float(os.stat(p).st_ino),
    "ctime": lambda p: float(os.stat(p).st_ctime_ns),
    "metadata_in_bytes": _embedded_label,
}
"""Per-file cheats: the image score is this function of ``sample.path``."""


class PathCheat:
    """Scores each image by a function of its path or file."""

    weights = "none"

    def __init__(self, feature: str) -> None:
        self.feature = FEATURES[feature]

    def fit(self, samples):
        return self

    def score(self, samples):
        return harness.Scores(np.array([self.feature(Path(s.path)) for s in samples], dtype=float))


class PositionCheat:
    """Scores each image by where it arrives: its index over all score calls (``sign`` -1: reversed)."""

    weights = "none"

    def __init__(self, sign: float = 1.0, per_batch: bool = False) -> None:
        self.sign, self.per_batch = float(sign), per_batch
        self.counter = itertools.count()

    def fit(self, samples):
        return self

    def score(self, samples):
        if self.per_batch:
            return harness.Scores(self.sign * np.arange(len(samples), dtype=float))
        return harness.Scores(self.sign * np.array([next(self.counter) for _ in samples], dtype=float))


CHEATS = {
    **{f"cheat_{name}": (lambda name=name: PathCheat(name)) for name in FEATURES},
    "cheat_position": lambda: PositionCheat(1.0),
    "cheat_position_reversed": lambda: PositionCheat(-1.0),
    "cheat_position_in_batch": lambda: PositionCheat(1.0, per_batch=True),
}


class Honest:
    """The pixel-only reference: mean absolute difference from the training mean; counts its fits."""

    weights = "none"
    fits = 0

    def fit(self, samples):
        Honest.fits += 1
        self.mean = np.mean([s.image.astype(float) for s in samples], axis=0)
        return self

    def score(self, samples):
        maps = np.stack([np.abs(s.image.astype(float) - self.mean).mean(axis=-1) for s in samples])
        return harness.Scores(maps.reshape(len(samples), -1).max(axis=1), maps)


@harness.hookimpl
def harness_models():
    return {**CHEATS, "honest": Honest}
