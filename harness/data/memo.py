"""What the harness learnt about a dataset's files, remembered across runs while the files stay the same.

A category's content fingerprint (part of every cache key) reads every byte of every image, and
the data checks open every header: seconds per run on a real dataset, for an answer that only
changes when a file does. Both are remembered in ``$HARNESS_HOME/data-memo.json`` under a key
made of each file's path, split, defect type and ``os.stat`` identity (device, inode, size,
mtime and ctime in nanoseconds). Any write to a file changes its ctime, which no user call can
set back, so a changed, replaced, moved or re-linked file gives a new key and the work is
redone; so does a new harness version. Only successful checks are remembered. The score
cache's entry checks (checksums of scores and maps) are remembered the same way
(:func:`checked_once`), by the entry files' stat identity.

The memo is a plain JSON file of hex digests (no pickle); it is read once per process, holds the
latest :data:`LIMIT` answers and is written atomically. It is written only into a
``HARNESS_HOME`` that exists (nothing is created for it), and a memo that cannot be read or
written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MEMO_FILE = "data-memo.json"
LIMIT = 4096
VERSION = 1
"""Bumped when what is remembered (the fingerprint's or the checks' definition) changes."""

SETTLE_SECONDS = 2
"""Files changed more recently than this are checked again rather than remembered (ctime ticks are coarse)."""

_LOADED: dict[str, Any] = {}


def _new_digest(purpose: str, count: int) -> Any:
    from harness import __version__

    digest = hashlib.blake2b(digest_size=16, person=b"harness-memo")
    digest.update(f"{purpose}|{VERSION}|{__version__}|{count}\n".encode())
    return digest


def _identity(path: Path | str) -> tuple[str, int]:
    """(a line naming ``path`` by its absolute path and full stat identity, its ctime in ns); raises OSError."""
    st = os.stat(path)
    line = f"{os.path.abspath(path)}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}\n"
    return line, st.st_ctime_ns


def stat_key(purpose: str, records: Sequence[Any]) -> str | None:
    """A key naming ``records`` (paths, splits, types, masks) and each file's stat identity; ``None`` if one is gone."""
    digest = _new_digest(purpose, len(records))
    try:
        for record in records:
            digest.update(f"{record.split}|{record.defect_type}|{len(record.mask_paths)}\n".encode())
            for path in (record.path, *record.mask_paths):
                digest.update(_identity(path)[0].encode())
    except OSError:
        return None
    return f"{purpose}:{digest.hexdigest()}"


def remembered(purpose: str, records: Sequence[Any], compute: Callable[[], str]) -> str:
    """``compute()``, or the answer it gave for the same files before (see the module doc)."""
    return _remembered(stat_key(purpose, records), compute)


def _remembered(key: str | None, compute: Callable[[], str]) -> str:
    memo = _memo()
    if key is not None and isinstance(memo.get(key), str):
        return memo[key]
    value = compute()
    if key is not None:
        _remember(key, value)
    return value


def files_key(purpose: str, paths: Sequence[Path]) -> str | None:
    """A key naming ``paths`` by stat identity (an absent one as absent); ``None`` while one changed too recently.

    A file whose ctime is under :data:`SETTLE_SECONDS` old could still be rewritten within the same
    ctime tick without a visible change, so its answer is not remembered yet (git's "racily clean" rule).
    """
    digest = _new_digest(purpose, len(paths))
    now = time.time_ns()
    for path in paths:
        try:
            line, ctime = _identity(path)
        except FileNotFoundError:
            digest.update(f"{os.path.abspath(path)}|absent\n".encode())
            continue
        except OSError:
            return None
        if now - ctime < SETTLE_SECONDS * 1_000_000_000:
            return None
        digest.update(line.encode())
    return f"{purpose}:{digest.hexdigest()}"


def checked_once(purpose: str, paths: Sequence[Path], check: Callable[[], None]) -> None:
    """Run ``check()`` (which raises on failure) unless it passed before for the same files (see :func:`files_key`)."""
    _remembered(files_key(purpose, paths), lambda: check() or "ok")  # check() returns None when it passes


def _path() -> Path:
    from harness.store import harness_home

    return harness_home() / MEMO_FILE


def _memo() -> dict[str, Any]:
    path = str(_path())
    if path not in _LOADED:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            data = {}
        _LOADED.clear()
        _LOADED[path] = data if isinstance(data, dict) else {}
    return _LOADED[path]


def _remember(key: str, value: str) -> None:
    memo = _memo()
    memo.pop(key, None)
    memo[key] = value
    while len(memo) > LIMIT:
        memo.pop(next(iter(memo)))
    from harness.store import write_atomic

    path = _path()
    if path.parent.is_dir():  # never creates the harness home
        with contextlib.suppress(OSError):
            write_atomic(path, json.dumps(memo))


__all__ = ["checked_once", "files_key", "remembered", "stat_key"]
