"""Content hashes of files and folders, remembered per (path, size, mtime) within a process.

The score cache keys options that name files (weights, a teacher, a penalty folder) by what
they hold, not by where they are, and checks every cache entry against the checksums it was
written with.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_MEMO: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes (hex)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    """``{"sha256", "bytes"}`` of a file: what cache entries, derived artefacts and manifests record."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def file_mismatch(path: Path, expected: Mapping[str, Any]) -> str | None:
    """Why ``path`` is not the file ``expected`` (a :func:`file_record`) describes, or None when it is."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != expected.get("bytes"):
        return f"{path.name} has {size} bytes, expected {expected.get('bytes')}"
    if sha256_file(path) != expected.get("sha256"):
        return f"{path.name} checksum mismatch"
    return None


def file_digest(path: Path) -> str:
    """:func:`sha256_file`, computed once per (path, inode, size, mtime_ns) in this process."""
    stat = os.stat(path)
    memo_key = (str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if memo_key not in _MEMO:
        _MEMO[memo_key] = sha256_file(path)
    return _MEMO[memo_key]


def tree_digest(folder: Path) -> str:
    """A sha256 over a folder tree: every file's path relative to ``folder`` and its content hash."""
    digest = hashlib.sha256()
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(parent) / name
            if path.is_file():
                digest.update(f"{path.relative_to(folder).as_posix()}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def content_digest(path: Path) -> str:
    """The content hash of a file or of a folder tree."""
    return tree_digest(path) if path.is_dir() else file_digest(path)


def existing_path(value: Any) -> Path | None:
    """``value`` as a path when it is a string naming an existing file or folder, else None."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        return None
    try:
        path = Path(os.path.expanduser(str(value)))
        return path if path.exists() else None
    except (OSError, ValueError):
        return None


def by_content(value: Any) -> Any:
    """``value`` with every string that names an existing file or folder replaced by its content hash.

    Nested dicts and lists are walked. So new weights at the same path give a new value, and
    the same weights moved or copied elsewhere give the same one.
    """
    if isinstance(value, dict):
        return {str(k): by_content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [by_content(v) for v in value]
    path = existing_path(value)
    if path is None:
        return value
    kind = "folder" if path.is_dir() else "file"
    return {f"{kind}_sha256": content_digest(path)}
