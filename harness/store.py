"""Files on disk: atomic writes, the score cache, and staged output folders."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from harness.errors import OutputError
from harness.integrity import file_mismatch, file_record
from harness.ownership import LOCK_NAME, check_not_foreign, check_output_folder, folder_files, owned_files, record

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


def check_writable(folder: Path, what: str = "output folder", hint: str = "choose another --out") -> None:
    """Fail with one clear line when ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to {what} {folder}: {reason}; {hint}") from None


class CacheEntryDamaged(Exception):
    """A cache entry that fails its checks (missing file, truncated, checksum or count mismatch)."""


class _Swapped(CacheEntryDamaged):
    """The version a link named was removed by a concurrent writer: read the link again."""


ENTRY_FILES = ("scores.csv", "maps.npz")
RETRIES = 5
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
        folder = link.readlink()
        if folder.is_absolute() or folder.parts[:1] != (ENTRIES,) or ".." in folder.parts or len(folder.parts) != 2:
            raise CacheEntryDamaged(f"link points outside the cache ({folder})")
        resolved = self.root / folder
        if not resolved.is_dir():
            raise _Swapped("missing (its version folder is gone)")
        return resolved

    def has(self, key: str, report: bool = True) -> bool:
        """Whether the entry exists and passes its checks; a damaged one counts as missing (named if ``report``)."""
        try:
            self._entry(key)
        except CacheEntryDamaged as exc:
            if report and str(exc) != "missing" and key not in self._warned:
                self._warned.add(key)
                logger.warning("cache entry %s is damaged (%s); refitting it", self.path(key), exc)
            return False
        return True

    def _entry(self, key: str) -> Path:
        """The verified version folder of ``key`` (checks run once per version and file state).

        A version a concurrent writer replaced and removed while it was being read is read again
        through the new link, so a reader never takes a rewrite for a missing entry.
        """
        for _ in range(RETRIES):
            try:
                folder = self.resolve(key)
            except _Swapped:
                continue
            try:
                state = tuple(_stat(folder / name) for name in ("meta.json", *ENTRY_FILES))
                if self._verified.get(key) != (folder, state):
                    verify_entry_once(folder)
                    self._verified[key] = (folder, state)
                return folder
            except (CacheEntryDamaged, FileNotFoundError):
                if folder.is_dir():  # still there: really damaged
                    raise
        raise CacheEntryDamaged("missing")

    def _read(self, key: str, read: Any) -> Any:
        """``read(folder)`` on the verified version of ``key``, again on the new one if it was swapped meanwhile."""
        for attempt in range(RETRIES):
            folder = self._entry(key)
            try:
                return read(folder)
            except FileNotFoundError:
                if attempt == RETRIES - 1 or folder.is_dir():
                    raise
        raise CacheEntryDamaged("missing")

    def put(
        self,
        key: str,
        scores: pd.DataFrame,
        maps: np.ndarray | None,
        meta: dict[str, Any],
        split_maps: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Store one job; maps as uncompressed float16 (read back memory-mapped). Checksums and counts in ``meta.json``.

        ``maps`` are the test images'; ``split_maps`` those of other scored splits
        (``{"holdout": ..., "unlabelled": ...}``), read back with :meth:`split_maps`.
        """
        versions = self.root / ENTRIES
        versions.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=versions))
        link = self.root / f".{key}.link-{staging.name}"
        try:
            write_entry(staging, scores, maps, meta, split_maps)
            os.symlink(f"{ENTRIES}/{staging.name}", link)
            with _key_lock(versions / f"{key}.lock"):  # writers swap one at a time; readers never wait
                old = self._current(key)
                os.replace(link, self.path(key))  # the atomic swap: readers see the old entry or the new one
                if old is not None and old != staging:
                    _remove_version(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            raise

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
        import pandas as pd

        return self._read(key, lambda folder: pd.read_csv(folder / "scores.csv", keep_default_na=False))

    def maps(self, key: str) -> np.ndarray | None:
        """Anomaly maps of the entry's test images (float32), or ``None``."""
        return self._read(key, _read_maps)

    def split_maps(self, key: str, split: str) -> np.ndarray | None:
        """Anomaly maps of the entry's ``split`` ("holdout", "unlabelled") as float32, or ``None``.

        ``None`` also for entries written before those maps were kept.
        """
        if split in ("maps", "test"):
            return None
        return self._read(key, lambda folder: _read_maps(folder, split))

    def meta(self, key: str) -> dict[str, Any]:
        """Metadata of one entry (model, options, weights, timings, versions, integrity)."""
        return self._read(key, lambda folder: json.loads((folder / "meta.json").read_text()))


@contextlib.contextmanager
def _key_lock(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_version(folder: Path) -> None:
    """Rename a replaced version away first (atomic), then delete it: a reader never sees it half deleted."""
    trash = folder.with_name(f"{folder.name}.removed")
    try:
        os.rename(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _read_maps(folder: Path, name: str = "maps") -> np.ndarray | None:
    """Array ``name`` of the entry's maps.npz as float32 (one copy in memory; the file is memory-mapped)."""
    if not (folder / "maps.npz").is_file():
        if not folder.is_dir():
            raise FileNotFoundError(folder)
        return None
    stored = npz_member(folder / "maps.npz", name)
    return None if stored is None else np.asarray(stored, dtype=np.float32)


def npz_member(path: Path, name: str) -> np.ndarray | None:
    """Array ``name`` of the .npz ``path``: memory-mapped when stored uncompressed, else read; ``None`` if absent.

    Only plain arrays are read (an object array, i.e. a pickle, is refused with ``ValueError``).
    """
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{name}.npy")
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:  # entries written compressed (before maps were mapped)
            with archive.open(info) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{name}.npy has no local zip header")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        shape, fortran, dtype = _npy_header(handle)
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{name}.npy holds Python objects, not plain numbers")
    if int(np.prod(shape)) * dtype.itemsize > info.file_size:
        raise ValueError(f"{name}.npy is shorter than its header says")
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _npy_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def write_entry(
    folder: Path,
    scores: pd.DataFrame,
    maps: np.ndarray | None,
    meta: dict[str, Any],
    split_maps: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write one entry's files into ``folder``, meta.json last with the checksums and counts of the others."""
    scores.to_csv(folder / "scores.csv", index=False)
    if maps is not None:
        extra = {name: m.astype(np.float16, copy=False) for name, m in (split_maps or {}).items() if m is not None}
        # stored, not deflated: read back memory-mapped
        np.savez(folder / "maps.npz", maps=maps.astype(np.float16, copy=False), **extra)
    files = {name: file_record(folder / name) for name in ENTRY_FILES if (folder / name).is_file()}
    integrity = {
        "files": files,
        "rows": len(scores),
        "splits": {str(k): int(v) for k, v in scores["split"].value_counts().items()} if "split" in scores else {},
        "maps_shape": list(maps.shape) if maps is not None else None,
    }
    (folder / "meta.json").write_text(json_dumps({**meta, "integrity": integrity}))


def verify_entry_once(folder: Path) -> None:
    """:func:`verify_entry`, skipped where the same files (by stat identity, see harness.data.memo) passed before.

    Checksumming every entry (its maps included) on every cached rerun costs more than the rerun's own work.
    """
    from harness.data.memo import checked_once

    paths = [folder / name for name in ("meta.json", *ENTRY_FILES)]
    checked_once(f"cache-entry:{folder}", paths, lambda: verify_entry(folder))


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
        problem = file_mismatch(path, files[name])
        if problem:
            raise CacheEntryDamaged(problem)
    _verify_counts(folder, meta, integrity)


def _verify_counts(folder: Path, meta: dict[str, Any], integrity: dict[str, Any]) -> None:
    """Rows and splits of scores.csv and the maps' shape against meta.json's counts."""
    import pandas as pd

    try:
        scores = pd.read_csv(folder / "scores.csv", keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise CacheEntryDamaged(f"scores.csv cannot be read: {exc}") from None
    n_holdout, n_test = meta.get("n_holdout"), meta.get("n_test")
    splits = scores["split"].value_counts().to_dict() if "split" in scores else {}
    n_other = meta.get("n_unlabelled") or 0  # images scored without labels (MVTec AD 2's private test sets)
    if len(scores) != integrity.get("rows") or len(scores) != (n_holdout or 0) + (n_test or 0) + n_other:
        raise CacheEntryDamaged(f"scores.csv has {len(scores)} rows, expected {n_holdout} + {n_test}")
    if splits.get("holdout", 0) != n_holdout or splits.get("test", 0) != n_test:
        raise CacheEntryDamaged(f"scores.csv splits {splits} do not match n_holdout={n_holdout}, n_test={n_test}")
    if not np.all(np.isfinite(pd.to_numeric(scores.get("score", pd.Series(dtype=float)), errors="coerce"))):
        raise CacheEntryDamaged("scores.csv holds non-numeric or non-finite scores")
    shape = integrity.get("maps_shape")
    if shape is not None and (shape[0] != n_test or list(shape[1:]) != list(meta.get("image_size", shape[1:]))):
        raise CacheEntryDamaged(f"maps of shape {shape} for {n_test} test images of size {meta.get('image_size')}")
    if (folder / "maps.npz").is_file():
        _verify_maps(folder / "maps.npz", shape)


def _verify_maps(path: Path, shape: list[int] | None) -> None:
    """maps.npz holds plain arrays, ``maps`` float16 of the recorded shape (never a pickled object).

    Headers only: the bytes were checked against their sha256 already, so nothing is decoded twice.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n.removesuffix(".npy") for n in archive.namelist()]
        arrays = {name: npz_member(path, name) for name in members}
        maps = arrays["maps"]
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CacheEntryDamaged(f"maps.npz cannot be read as plain arrays: {exc}") from None
    if maps.dtype != np.float16 or shape is None or list(maps.shape) != list(shape):
        raise CacheEntryDamaged(f"maps.npz holds {maps.dtype} maps of shape {list(maps.shape)}, expected {shape}")


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


def preflight(out: Path, cache_root: Path, force: bool = False) -> None:
    """Check ``HARNESS_HOME``, the cache and ``out`` before anything is fitted; each problem is one line (exit 2)."""
    check_home_and_cache(cache_root)
    check_output_folder(out, cache_root, force)
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    check_writable(existing)  # the nearest folder that exists: nothing is created before the run starts


def check_home_and_cache(cache_root: Path) -> None:
    """``HARNESS_HOME`` (where the embedded dataset is generated) and the cache: folders, writable."""
    home = harness_home()
    if home.exists() and not home.is_dir():
        raise OutputError(f"{HOME_ENV}={home} is a file, not a folder; point {HOME_ENV} at a folder")
    if cache_root.exists() and not cache_root.is_dir():
        raise OutputError(f"score cache {cache_root} is a file, not a folder; choose another --cache")
    check_writable(cache_root, what="score cache", hint="choose another --cache or set HARNESS_CACHE_DIR")


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; on success move its files into ``out``.

    Only files the harness wrote are replaced or removed (``.harness-owned.json``); a staged file
    whose name is taken by a foreign file stops the move before anything changes. On failure
    nothing in ``out`` changes, so earlier results stay as they were.
    """
    check_writable(out)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        yield staging
        new = folder_files(staging)
        check_not_foreign(out, new)
        old = owned_files(out)
        record(out, old | set(new))  # listed before they land: a crash leaves nothing foreign
        for name in new:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, target)
        for name in sorted(old - set(new)):  # our own stale outputs (an earlier run's figures)
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (out / name).unlink()
        record(out, new, replace=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
