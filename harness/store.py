"""Files on disk: atomic writes, the score cache, and staged output folders."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import OutputError
from harness.integrity import sha256_file

logger = logging.getLogger("harness.cache")

CACHE_ENV = "HARNESS_CACHE_DIR"
HOME_ENV = "HARNESS_HOME"


def harness_home() -> Path:
    """Where the harness keeps generated data and caches (``$HARNESS_HOME`` or ``~/.cache/harness``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "harness")


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``$HARNESS_HOME/scores``: one score cache shared by every protocol."""
    return Path(os.environ.get(CACHE_ENV) or harness_home() / "scores")


CACHE_SCHEMA = 4  # 4: checksummed, versioned entries; options naming files keyed by content; paths relative
"""Bumped when the layout of a cache entry changes; part of every cache key."""


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_dumps(data: Any) -> str:
    """JSON with numpy scalars and paths converted."""

    def default(value: Any) -> Any:
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        if isinstance(value, (Path, tuple, set)):
            return str(value) if isinstance(value, Path) else list(value)
        raise TypeError(f"cannot serialise {type(value).__name__}")

    return json.dumps(data, indent=2, default=default, sort_keys=False)


def check_writable(folder: Path) -> None:
    """Fail with one clear line when ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to output folder {folder}: {reason}; choose another --out") from None


class CacheEntryDamaged(Exception):
    """A cache entry that fails its checks (missing file, truncated, checksum or count mismatch)."""


ENTRY_FILES = ("scores.csv", "maps.npz")
ENTRIES = ".entries"
"""Sub-folder of the cache holding the versioned entry folders that ``ROOT/<key>`` links point to."""


class ScoreCache:
    """Content-addressed store of fitted-and-scored jobs: ``ROOT/<key>/{scores.csv, maps.npz, meta.json}``.

    ``ROOT/<key>`` is a symbolic link to a versioned folder ``ROOT/.entries/<key>.<random>``;
    a writer builds a new version beside it and swaps the link with one atomic rename, so a
    reader always sees a whole entry, even with concurrent writers. ``meta.json`` records the
    sha256 and size of every file and the counts the entry must hold (rows, maps' shape); an
    entry failing any check is named in one warning and treated as missing (the job is refitted).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._verified: dict[str, tuple[Path, tuple[Any, ...]]] = {}
        self._warned: set[str] = set()

    def path(self, key: str) -> Path:
        """The folder of one entry (the link; :meth:`resolve` gives the version it points to)."""
        return self.root / key

    def resolve(self, key: str) -> Path:
        """The versioned folder ``ROOT/<key>`` points to now; raises :class:`CacheEntryDamaged` if none."""
        link = self.path(key)
        if not link.is_symlink():
            raise CacheEntryDamaged("missing" if not link.exists() else "not a link to a versioned entry")
        target = os.readlink(link)
        folder = Path(target)
        if folder.is_absolute() or folder.parts[:1] != (ENTRIES,) or ".." in folder.parts or len(folder.parts) != 2:
            raise CacheEntryDamaged(f"link points outside the cache ({target})")
        resolved = self.root / folder
        if not resolved.is_dir():
            raise CacheEntryDamaged("missing (its version folder is gone)")
        return resolved

    def has(self, key: str) -> bool:
        """Whether the entry exists and passes its checks; a damaged one is reported once and counts as missing."""
        try:
            self._entry(key)
        except CacheEntryDamaged as exc:
            if str(exc) != "missing" and key not in self._warned:
                self._warned.add(key)
                logger.warning("cache entry %s is damaged (%s); refitting it", self.path(key), exc)
            return False
        return True

    def _entry(self, key: str) -> Path:
        """The verified version folder of ``key`` (checks run once per version and file state)."""
        folder = self.resolve(key)
        state = tuple(_stat(folder / name) for name in ("meta.json", *ENTRY_FILES))
        known = self._verified.get(key)
        if known is None or known != (folder, state):
            verify_entry(folder)
            self._verified[key] = (folder, state)
        return folder

    def put(self, key: str, scores: pd.DataFrame, maps: np.ndarray | None, meta: dict[str, Any]) -> None:
        """Store one job; maps are kept as compressed float16. Checksums and counts go into ``meta.json``."""
        versions = self.root / ENTRIES
        versions.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=versions))
        link = self.root / f".{key}.link-{staging.name}"
        try:
            write_entry(staging, scores, maps, meta)
            os.symlink(f"{ENTRIES}/{staging.name}", link)
            old = self._current(key)
            os.replace(link, self.path(key))  # the atomic swap: readers see the old entry or the new one
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            raise
        if old is not None and old != staging:
            shutil.rmtree(old, ignore_errors=True)

    def _current(self, key: str) -> Path | None:
        """The version folder ``key`` points to now (to delete after the swap); moves a plain folder aside."""
        link = self.path(key)
        if link.is_symlink():
            try:
                return self.resolve(key)
            except CacheEntryDamaged:
                return None
        if link.exists():  # a plain folder (an earlier cache layout): moved aside, then deleted
            aside = Path(tempfile.mkdtemp(prefix=f"{key}.old-", dir=self.root / ENTRIES))
            os.replace(link, aside / "entry")
            return aside
        return None

    def scores(self, key: str) -> pd.DataFrame:
        """Per-image scores of one entry."""
        return pd.read_csv(self._entry(key) / "scores.csv", keep_default_na=False)

    def maps(self, key: str) -> np.ndarray | None:
        """Anomaly maps of the entry's test images (float32), or ``None``."""
        path = self._entry(key) / "maps.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return data["maps"].astype(np.float32)

    def meta(self, key: str) -> dict[str, Any]:
        """Metadata of one entry (model, options, weights, timings, versions, integrity)."""
        return json.loads((self._entry(key) / "meta.json").read_text())


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def write_entry(folder: Path, scores: pd.DataFrame, maps: np.ndarray | None, meta: dict[str, Any]) -> None:
    """Write one entry's files into ``folder``, meta.json last with the checksums and counts of the others."""
    scores.to_csv(folder / "scores.csv", index=False)
    if maps is not None:
        np.savez_compressed(folder / "maps.npz", maps=maps.astype(np.float16))
    files = {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        for name in ENTRY_FILES
        if (folder / name).is_file()
    }
    integrity = {
        "files": files,
        "rows": len(scores),
        "splits": {str(k): int(v) for k, v in scores["split"].value_counts().items()} if "split" in scores else {},
        "maps_shape": list(maps.shape) if maps is not None else None,
    }
    (folder / "meta.json").write_text(json_dumps({**meta, "integrity": integrity}))


def verify_entry(folder: Path) -> None:
    """Raise :class:`CacheEntryDamaged` naming the first check ``folder`` fails."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        raise CacheEntryDamaged("meta.json is missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CacheEntryDamaged(f"meta.json is not valid JSON: {exc}") from None
    integrity = meta.get("integrity") if isinstance(meta, dict) else None
    if not isinstance(integrity, dict) or not isinstance(integrity.get("files"), dict):
        raise CacheEntryDamaged("meta.json has no integrity record")
    files = integrity["files"]
    if "scores.csv" not in files:
        raise CacheEntryDamaged("meta.json lists no scores.csv")
    for name in ENTRY_FILES:
        path = folder / name
        if name not in files:
            if path.exists():
                raise CacheEntryDamaged(f"{name} is not listed in meta.json")
            continue
        if not path.is_file():
            raise CacheEntryDamaged(f"{name} is missing")
        expected = files[name]
        if path.stat().st_size != expected.get("bytes"):
            raise CacheEntryDamaged(f"{name} has {path.stat().st_size} bytes, expected {expected.get('bytes')}")
        if sha256_file(path) != expected.get("sha256"):
            raise CacheEntryDamaged(f"{name} checksum mismatch")
    _verify_counts(folder, meta, integrity)


def _verify_counts(folder: Path, meta: dict[str, Any], integrity: dict[str, Any]) -> None:
    """Rows and splits of scores.csv and the maps' shape against meta.json's counts."""
    try:
        scores = pd.read_csv(folder / "scores.csv", keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise CacheEntryDamaged(f"scores.csv cannot be read: {exc}") from None
    n_holdout, n_test = meta.get("n_holdout"), meta.get("n_test")
    splits = scores["split"].value_counts().to_dict() if "split" in scores else {}
    if len(scores) != integrity.get("rows") or len(scores) != (n_holdout or 0) + (n_test or 0):
        raise CacheEntryDamaged(f"scores.csv has {len(scores)} rows, expected {n_holdout} + {n_test}")
    if splits.get("holdout", 0) != n_holdout or splits.get("test", 0) != n_test:
        raise CacheEntryDamaged(f"scores.csv splits {splits} do not match n_holdout={n_holdout}, n_test={n_test}")
    if not np.all(np.isfinite(pd.to_numeric(scores.get("score", pd.Series(dtype=float)), errors="coerce"))):
        raise CacheEntryDamaged("scores.csv holds non-numeric or non-finite scores")
    shape = integrity.get("maps_shape")
    if shape is not None and (shape[0] != n_test or list(shape[1:]) != list(meta.get("image_size", shape[1:]))):
        raise CacheEntryDamaged(f"maps of shape {shape} for {n_test} test images of size {meta.get('image_size')}")


LOCK_NAME = ".harness.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` for a run; a second run into the same folder stops at once."""
    import fcntl

    check_writable(out)
    path = out / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise OutputError(
                f"another harness run ({holder}) is writing to {out}; wait for it to finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; on success move its files into ``out``.

    On failure nothing in ``out`` changes, so earlier results stay as they were.
    """
    check_writable(out)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        yield staging
        for item in sorted(staging.iterdir()):
            target = out / item.name
            if item.is_dir():
                old = None
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=".old-", dir=out))
                    os.replace(target, old / item.name)
                os.replace(item, target)
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
