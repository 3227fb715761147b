"""What is deterministic per cached job, kept beside its scores: metric values (JSON) and figures (PNG, PDF).

"Score once, calibrate many": a rerun or another question over the same cached scores should pay
for neither the pixel metrics (seconds each, and the libraries they import) nor a figure that
shows the same data. Each artefact is stored under ``CACHE/.derived/<aa>/<digest>.*``, where the
digest is the sha256 of everything it depends on (the score entry's content hashes, the view of
it, the metric or renderer version). Like a score entry, every artefact carries a record
(``<digest>.json``: sha256 and size of each file, and the value with its own sha256); it is
verified on every read, and a damaged or partial artefact is named in one warning, ignored and
recomputed. Only JSON, PNG and PDF are written, never pickles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.integrity import file_mismatch
from harness.store import CacheEntryDamaged as _Damaged
from harness.store import write_atomic

logger = logging.getLogger("harness.cache")

DERIVED = ".derived"
"""Sub-folder of the score cache holding derived artefacts."""
LAYOUT_VERSION = 1
"""Bumped when the layout of a derived artefact changes; part of every digest."""
FILE_SUFFIXES = (".png", ".pdf")


def digest(*parts: object) -> str:
    """The sha256 (hex) of ``parts`` as canonical JSON (numbers, strings, lists, dicts; others by ``str``)."""
    blob = json.dumps([LAYOUT_VERSION, *parts], sort_keys=True, default=str, allow_nan=True).encode()
    return hashlib.sha256(blob).hexdigest()


def value_digest(value: Any) -> str:
    """The sha256 of a JSON value in canonical form (how a stored value is checked)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, allow_nan=True).encode()).hexdigest()


class DerivedCache:
    """Derived artefacts of cached jobs, content-addressed under ``ROOT/.derived``."""

    def __init__(self, cache_root: Path) -> None:
        self.root = Path(cache_root) / DERIVED
        self._warned: set[str] = set()

    def _base(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _record(self, key: str) -> dict[str, Any] | None:
        """The verified record of ``key``, or ``None`` (missing; damaged ones are named once)."""
        path = self._base(key).with_suffix(".json")
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            _verify(record, self._base(key))
        except (ValueError, OSError, KeyError, TypeError, _Damaged) as exc:
            if key not in self._warned:
                self._warned.add(key)
                logger.warning("derived cache artefact %s is damaged (%s); recomputing it", path, exc)
            return None
        return record

    def get_value(self, key: str) -> Any | None:
        """The JSON value stored under ``key`` if it is there and intact, else ``None``."""
        record = self._record(key)
        return None if record is None else record.get("value")

    def put_value(self, key: str, value: Any) -> None:
        """Store a JSON value (numbers, NaN included, strings, lists, dicts) under ``key``."""
        self._write_record(key, {"value": value, "value_sha256": value_digest(value), "files": {}})

    def get_files(self, key: str, target: Path) -> bool:
        """Copy the files stored under ``key`` to ``target`` (same stem, each suffix); False if absent or damaged."""
        record = self._record(key)
        if record is None or not record["files"]:
            return False
        base = self._base(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in record["files"]:
            shutil.copyfile(base.with_suffix(suffix), target.with_suffix(suffix))
        return True

    def put_files(self, key: str, source: Path) -> None:
        """Store the files beside ``source`` with the suffixes of :data:`FILE_SUFFIXES` that exist."""
        base = self._base(key)
        files = {}
        for suffix in FILE_SUFFIXES:
            path = source.with_suffix(suffix)
            if path.is_file():
                data = path.read_bytes()
                try:
                    write_atomic(base.with_suffix(suffix), data)
                except OSError as exc:  # a read-only or full cache: drawn again next time
                    self._cannot_write(exc)
                    return
                files[suffix] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        if files:
            self._write_record(key, {"value": None, "value_sha256": value_digest(None), "files": files})

    def _write_record(self, key: str, record: Mapping[str, Any]) -> None:
        try:
            write_atomic(self._base(key).with_suffix(".json"), json.dumps(record, allow_nan=True))
        except OSError as exc:  # a read-only or full cache: the artefact is recomputed next time
            self._cannot_write(exc)

    def _cannot_write(self, exc: OSError) -> None:
        """One warning per run when the cache cannot take derived artefacts (they are recomputed next time)."""
        if "write" not in self._warned:
            self._warned.add("write")
            logger.warning("cannot store derived artefacts in %s (%s); they are recomputed each run", self.root, exc)


def _verify(record: Mapping[str, Any], base: Path) -> None:
    """Raise :class:`_Damaged` naming the first check a record and its files fail."""
    if value_digest(record["value"]) != record["value_sha256"]:
        raise _Damaged("value checksum mismatch")
    for suffix, expected in record["files"].items():
        if suffix not in FILE_SUFFIXES:
            raise _Damaged(f"unexpected file kind {suffix!r}")
        problem = file_mismatch(base.with_suffix(suffix), expected)
        if problem:
            raise _Damaged(problem)


def floats(value: Mapping[str, Any]) -> dict[str, float]:
    """A stored ``{name: number}`` mapping as floats (``None`` read back as NaN)."""
    return {str(k): (float("nan") if v is None else float(v)) for k, v in value.items()}


def is_number_map(value: Any, names: list[str]) -> bool:
    """Whether ``value`` is a mapping holding a number for every one of ``names``."""
    return isinstance(value, dict) and all(
        isinstance(value.get(n), (int, float)) and not isinstance(value.get(n), bool) for n in names
    )
