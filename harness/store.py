"""Files on disk: atomic writes, the score cache, and staged output folders."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import OutputError

CACHE_ENV = "HARNESS_CACHE_DIR"
HOME_ENV = "HARNESS_HOME"


def harness_home() -> Path:
    """Where the harness keeps generated data and caches (``$HARNESS_HOME`` or ``~/.cache/harness``)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "harness")


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``$HARNESS_HOME/scores``: one score cache shared by every protocol."""
    return Path(os.environ.get(CACHE_ENV) or harness_home() / "scores")


CACHE_SCHEMA = 3  # 3: torch seeded in every job (the first torch job of a process was not)
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


class ScoreCache:
    """Content-addressed store of fitted-and-scored jobs: ``ROOT/<key>/{scores.csv, maps.npz, meta.json}``.

    An entry appears whole or not at all (written in a temporary folder, then renamed).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The folder of one entry."""
        return self.root / key

    def has(self, key: str) -> bool:
        """Whether the entry exists and is complete."""
        return (self.path(key) / "meta.json").is_file()

    def put(
        self,
        key: str,
        scores: pd.DataFrame,
        maps: np.ndarray | None,
        meta: dict[str, Any],
        split_maps: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Store one job; maps are kept as compressed float16.

        ``maps`` are the test images'; ``split_maps`` those of other scored splits
        (``{"holdout": ..., "unlabelled": ...}``), read back with :meth:`split_maps`.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            scores.to_csv(staging / "scores.csv", index=False)
            if maps is not None:
                extra = {name: m.astype(np.float16) for name, m in (split_maps or {}).items() if m is not None}
                np.savez_compressed(staging / "maps.npz", maps=maps.astype(np.float16), **extra)
            (staging / "meta.json").write_text(json_dumps(meta))
            target = self.path(key)
            if target.exists():  # an incomplete leftover, or a concurrent writer's identical entry
                shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def scores(self, key: str) -> pd.DataFrame:
        """Per-image scores of one entry."""
        return pd.read_csv(self.path(key) / "scores.csv", keep_default_na=False)

    def maps(self, key: str) -> np.ndarray | None:
        """Anomaly maps of the entry's test images (float32), or ``None``."""
        path = self.path(key) / "maps.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            return data["maps"].astype(np.float32)

    def split_maps(self, key: str, split: str) -> np.ndarray | None:
        """Anomaly maps of the entry's ``split`` ("holdout", "unlabelled") as float32, or ``None``.

        ``None`` also for entries written before those maps were kept.
        """
        path = self.path(key) / "maps.npz"
        if not path.is_file() or split in ("maps", "test"):
            return None
        with np.load(path, allow_pickle=False) as data:
            return data[split].astype(np.float32) if split in data.files else None

    def meta(self, key: str) -> dict[str, Any]:
        """Metadata of one entry (model, options, weights, timings, versions)."""
        return json.loads((self.path(key) / "meta.json").read_text())


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
