"""Which files of an output folder the harness wrote: ``.harness-owned.json``, and the checks that use it.

``harness run`` refuses an output folder holding files it did not write unless ``--force``
is given, and even then it replaces or removes only files listed in the folder's manifest.
An output folder inside the score cache, or holding it, is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import OutputError
from harness.integrity import file_mismatch, file_record

MANIFEST = ".harness-owned.json"
LOCK_NAME = ".harness.lock"
INTERNAL_PREFIXES = (".staging-", ".old-", f".{MANIFEST}.", ".write-test-")
LEGACY_NAMES = ("results.csv", "run.json", "report.html", "report.tex")
LEGACY_FOLDERS = ("figures", "scores")


def _internal(name: str) -> bool:
    return name in (MANIFEST, LOCK_NAME) or name.startswith(INTERNAL_PREFIXES)


def folder_files(out: Path) -> list[str]:
    """Every file (or link) under ``out`` as a POSIX path relative to it, links not followed."""
    found: list[str] = []
    for parent, dirs, files in os.walk(out):
        rel_parent = Path(parent).relative_to(out)
        if rel_parent == Path("."):  # the harness's own lock, manifest and staging are no output
            dirs[:] = [d for d in dirs if not _internal(d)]
            files = [f for f in files if not _internal(f)]
        links = [d for d in dirs if (Path(parent) / d).is_symlink()]
        found += [(rel_parent / name).as_posix() for name in [*files, *links]]
    return sorted(found)


def owned_files(out: Path) -> set[str]:
    """The files the harness wrote into ``out`` (its manifest; for a folder from before manifests, its known names)."""
    path = out / MANIFEST
    if path.is_file() and not path.is_symlink():
        return set(recorded(out))
    if (out / "run.json").is_file() and (out / "results.csv").is_file():  # written before manifests existed
        return {
            name
            for name in folder_files(out)
            if name in LEGACY_NAMES or (name.split("/", 1)[0] in LEGACY_FOLDERS and "/" in name)
        }
    return set()


def foreign_files(out: Path) -> list[str]:
    """Files under ``out`` that the harness did not write."""
    owned = owned_files(out)
    return [name for name in folder_files(out) if name not in owned]


def recorded(out: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries: file name -> ``{"sha256", "bytes"}`` (empty when it has none or is unreadable)."""
    path = out / MANIFEST
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        files = json.loads(path.read_text()).get("files", {})
    except (ValueError, AttributeError, OSError):
        return {}
    if isinstance(files, list):
        return {str(name): {} for name in files}
    return {str(name): dict(info) if isinstance(info, dict) else {} for name, info in files.items()}


def record(out: Path, names: Iterable[str], replace: bool = False) -> None:
    """Add ``names`` (with their checksums) to ``out``'s manifest, or make them the whole manifest with ``replace``."""
    from harness import __version__
    from harness.store import json_dumps, write_atomic

    files = {} if replace else recorded(out) or {name: {} for name in owned_files(out)}  # a legacy folder's names
    for name in names:
        path = out / name
        files[name] = file_record(path) if path.is_file() else {}
    manifest = {"written_by": f"harness {__version__}", "files": dict(sorted(files.items()))}
    write_atomic(out / MANIFEST, json_dumps(manifest))


def check_unchanged(out: Path, name: str) -> None:
    """Refuse ``out/name`` when the manifest recorded a checksum it no longer matches (cut short or edited)."""
    expected = recorded(out).get(name, {})
    path = out / name
    if expected.get("sha256") and file_mismatch(path, expected):
        raise OutputError(
            f"{path} is not the file the run wrote (its size or checksum differs: cut short or edited); "
            f"rerun `harness run` into {out}"
        )


def check_not_foreign(out: Path, names: Iterable[str]) -> None:
    """Refuse to replace any of ``names`` in ``out`` that exists there and was not written by the harness."""
    owned = owned_files(out)
    for name in names:
        target = out / name
        if (target.exists() or target.is_symlink()) and name not in owned:
            raise OutputError(
                f"{target} was not written by the harness and would be replaced; move it away or choose another --out"
            )


def check_output_folder(out: Path, cache_root: Path, force: bool = False) -> None:
    """Everything about ``out`` that would stop a run, found before anything is fitted (one line each)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"output folder {out} is a file; choose another --out")
    out_real, cache_real = out.resolve(), cache_root.resolve()
    if out_real.is_relative_to(cache_real) or cache_real.is_relative_to(out_real):
        where = "is" if out_real == cache_real else "is inside" if out_real.is_relative_to(cache_real) else "holds"
        raise OutputError(
            f"output folder {out} {where} the score cache {cache_root}; choose an --out outside the cache (or --cache)"
        )
    foreign = foreign_files(out)
    if foreign and not force:
        raise OutputError(
            f"output folder {out} holds {len(foreign)} file(s) the harness did not write (e.g. {foreign[0]}); "
            "choose a new or empty --out, or pass --force to write beside them (they are kept)"
        )
    if foreign:
        check_not_foreign(out, LEGACY_NAMES)
