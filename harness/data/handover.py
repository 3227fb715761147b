"""The leakage guard: how images are handed to a detector, and how its scores come back.

A detector gets nothing a label could be read from. Each image is decoded by the harness,
resized to the job's image size and written as an uncompressed PNG (:func:`png_bytes`) into a fresh folder that
this module creates for one job, under a name that is a hash of its pixels
(``3f9c....png``). So the only things a detector can observe besides the pixels are:

- ``sample.path``: a hash of the pixels in a folder of hashes (no class folder, no original
  name, no symbolic link to follow: ``Path.resolve`` and ``os.readlink`` lead nowhere else);
- the file's bytes, size and times: exactly the pixels it also gets as ``sample.image``, stored
  without compression (the size depends on the image size only) and with one fixed mtime;
- the order: a seeded permutation of the records (seed from the job), undone by the harness
  before labels are joined (:meth:`HandOver.restore`).

Limit: the pixels themselves are visible, as they must be; and code running in the harness's
process could inspect the interpreter's memory. The guard covers what the plugin contract
hands over, not a sandbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import tempfile
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness.data.base import Record, load_image, load_mask
from harness.errors import HarnessError
from harness.types import LabelledSample, Sample

FIXED_MTIME = 946684800  # 2000-01-01: every handed-over file has the same times
FOLDER_PREFIX = "harness-samples-"
"""A hand-over folder is ``<temp>/harness-samples-<pid>-<random>``, named for the process that made it."""
STREAMS = {"fit": 0, "score": 1, "supervised": 2}
DECODE_THREADS = 4
DECODE_CHUNK = 64
"""Images decoded and resized at once (Pillow releases the GIL while decoding); the files are written in order."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def opaque_name(pixels: np.ndarray) -> str:
    """The file name an image is handed over under: a hash of its pixels and shape, ``.png``."""
    digest = hashlib.blake2b(digest_size=12, person=b"harness-sample")
    digest.update(repr(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return f"{digest.hexdigest()}.png"


def shuffled_order(n: int, seed: int, stream: str) -> np.ndarray:
    """The seeded permutation records are handed over in (one independent stream per purpose)."""
    return np.random.default_rng([int(seed), STREAMS[stream]]).permutation(n)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An H x W x 3 uint8 image as a minimal PNG: IHDR, one stored (uncompressed) IDAT, IEND; nothing else.

    Every row uses filter 0 and the zlib stream stored blocks, so the file's size is a function of
    H x W only and its bytes are the pixels plus fixed framing. About 8x faster to write than
    Pillow's encoder (which tries a filter per row) and 4x faster to read back.
    """
    height, width = pixels.shape[:2]
    raw = np.zeros((height, width * 3 + 1), dtype=np.uint8)  # a leading 0 per row: filter "none"
    raw[:, 1:] = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.data, 0)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class HandOver:
    """Samples in the order a detector gets them, and how to put its results back in record order."""

    samples: list[Sample]
    order: np.ndarray
    """``samples[i]`` is the image of ``records[order[i]]``."""

    def restore(self, values: Any) -> Any:
        """Per-sample results (scores, maps: first axis = samples) back in the records' order."""
        if values is None:
            return None
        array = np.asarray(values)
        restored = np.empty_like(array)
        restored[self.order] = array
        return restored


class SampleFolder:
    """A per-job temporary folder of opaque, read-only image files; removed (our files only) on close.

    Use as a context manager::

        with SampleFolder((256, 256), seed=job.seed) as folder:
            fit = folder.hand_over(fit_records, "fit")
            detector.fit(fit.samples)
    """

    def __init__(self, size: tuple[int, int], seed: int) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        try:
            self.root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        except OSError as exc:
            raise _no_room(tempfile.gettempdir(), exc) from None
        self._written: set[str] = set()
        self._names: dict[Path, str] = {}
        self._finalizer = weakref.finalize(self, _remove, self.root, self._written)

    def __enter__(self) -> SampleFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the files this folder wrote, then the folder when nothing else is left in it."""
        self._finalizer()

    def file_for(self, path: Path) -> Path:
        """The opaque file holding ``path``'s image at this folder's size (written on first use)."""
        self.prepare([path])
        return self.root / self._names[path]

    def prepare(self, paths: Iterable[Path]) -> None:
        """Decode, resize and write every image of ``paths`` not yet handed over (decoded in threads, in order).

        A file that cannot be decoded raises the same :class:`DatasetError` as it would alone: the
        first one in ``paths``' order.
        """
        todo = list(dict.fromkeys(p for p in paths if p not in self._names))
        if len(todo) <= 1:
            self._prepare_chunk(todo, map)
            return
        with ThreadPoolExecutor(min(DECODE_THREADS, os.cpu_count() or 1)) as pool:
            for start in range(0, len(todo), DECODE_CHUNK):  # a chunk's pixels in memory at a time
                self._prepare_chunk(todo[start : start + DECODE_CHUNK], pool.map)

    def prepare_elsewhere(self, paths: Sequence[Path]) -> Callable[[], None]:
        """Start :meth:`prepare` of ``paths`` in a forked process (its own cores, no GIL shared); returns ``adopt()``.

        ``adopt()`` waits for it and takes over the files it wrote (this folder removes them). Whatever
        it did not prepare (a file that failed to decode) is prepared here by :meth:`hand_over`, which
        raises the same error. Fork before starting any thread: the forked process inherits no held lock.
        """
        context = get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_prepare_child, args=(self, list(paths), sender, os.getpid()), daemon=True)
        process.start()
        sender.close()

        def adopt() -> None:
            with contextlib.suppress(EOFError, OSError):
                names, written = receiver.recv()
                self._written.update(written)
                self._names.update(names)
            receiver.close()
            process.join()

        return adopt

    def _prepare_chunk(self, paths: list[Path], mapper: Callable[..., Iterable[np.ndarray]]) -> None:
        size = self.size
        decoded = mapper(lambda path: load_image(path, size), paths)
        named = [(path, opaque_name(pixels), pixels) for path, pixels in zip(paths, decoded, strict=True)]
        self._write_all([(name, pixels) for _, name, pixels in named if name not in self._written])
        self._names.update((path, name) for path, name, _ in named)

    def _write_all(self, files: list[tuple[str, np.ndarray]]) -> None:
        if not files:
            return
        with self._writable():
            for name, pixels in files:
                if name not in self._written:  # twins: identical pixels share one file
                    self._write(name, lambda target, pixels=pixels: target.write_bytes(png_bytes(pixels)))

    @contextlib.contextmanager
    def _writable(self) -> Iterator[None]:
        """The folder writable while the block runs; a failed write raises the one no-room error."""
        self.root.chmod(stat.S_IRWXU)
        try:
            yield
        except OSError as exc:
            raise _no_room(self.root, exc) from None
        finally:
            self.root.chmod(stat.S_IRUSR | stat.S_IXUSR)
            os.utime(self.root, (FIXED_MTIME, FIXED_MTIME))

    def _write(self, name: str, save: Callable[[Path], Any]) -> None:
        target = self.root / name
        self._written.add(name)
        save(target)
        target.chmod(stat.S_IRUSR | stat.S_IRGRP)
        os.utime(target, (FIXED_MTIME, FIXED_MTIME))

    def hand_over(self, records: Sequence[Record], stream: str, inputs: Sequence[str] = ()) -> HandOver:
        """Label-free samples for ``records`` in a seeded shuffled order; files written before returning.

        ``inputs`` (a model's ``ModelSpec.inputs``, e.g. ``("xyz",)``) adds those per-sample inputs,
        written here under opaque names too (:mod:`harness.data.extra_inputs`).
        """
        order = shuffled_order(len(records), self.seed, stream)
        self.prepare(records[i].path for i in order)
        files = [self.root / self._names[records[i].path] for i in order]
        samples = [Sample(f, _loader(f)) for f in files]
        if inputs:
            from harness.data.extra_inputs import with_inputs

            samples = with_inputs(self, [records[i] for i in order], samples, inputs)
        return HandOver(samples, order)

    def add_file(self, name: str, save: Callable[[Path], None]) -> Path:
        """Write one more opaque file ``name`` with ``save(path)`` (read-only, fixed times); once per name."""
        if name not in self._written:
            with self._writable():
                self._write(name, save)
        return self.root / name

    def labelled(self, records: Sequence[Record]) -> list[LabelledSample]:
        """Labelled defects for supervised detectors: labels on purpose, paths opaque, masks as arrays."""
        order = shuffled_order(len(records), self.seed, "supervised")
        self.prepare(records[i].path for i in order)
        samples = []
        for index in order:
            record = records[index]
            file = self.file_for(record.path)
            mask = load_mask(record.mask_paths, self.size)
            samples.append(LabelledSample(file, _loader(file), _constant(mask), record.defect_type))
        return samples


def _prepare_child(folder: SampleFolder, paths: list[Path], sender: Any, parent: int) -> None:
    """Body of :meth:`SampleFolder.prepare_elsewhere`'s process: prepare, then send what it wrote (even on failure)."""
    from harness.isolation import die_with_parent

    die_with_parent(parent)
    with contextlib.suppress(OSError):  # the job's process imports its model meanwhile: that is the critical path
        os.nice(5)
    folder._finalizer.detach()  # the files are the job's process' to remove
    try:
        folder.prepare(paths)
    except BaseException:  # the job's process prepares the rest and raises the real error
        pass
    finally:
        sender.send((folder._names, folder._written))
        sender.close()
        os._exit(0)


def remove_left_by(pid: int) -> None:
    """Remove the hand-over folders of job process ``pid`` (a child of this one) that ended without removing them.

    Waits for ``pid`` to end (a killed or crashed job), without reaping it: its pid cannot name a new
    process meanwhile. Only files with the hand-over's marks go (read-only, times 2000-01-01), and a
    folder only when that empties it: anything else put there stays, with its folder.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    for root in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}{pid}-*"):
        with contextlib.suppress(OSError):
            _remove(root, {f.name for f in root.iterdir() if _handed_over(f.stat())})


def _handed_over(info: os.stat_result) -> bool:
    return info.st_mtime == FIXED_MTIME and not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def _no_room(folder: Path | str, exc: OSError) -> HarnessError:
    return HarnessError(
        f"cannot write the images handed to detectors into {folder}: {exc.strerror or exc}; "
        "free space there or point TMPDIR at a writable folder with room"
    )


def _loader(file: Path):
    return lambda: _read_png(file)


def _constant(array: np.ndarray):
    return lambda: array


def _remove(root: Path, written: set[str]) -> None:
    with contextlib.suppress(OSError):
        root.chmod(stat.S_IRWXU)
    for name in written:
        with contextlib.suppress(FileNotFoundError):
            (root / name).unlink()
    written.clear()
    with contextlib.suppress(OSError):  # not empty: a plugin wrote there, and its files are not ours to delete
        root.rmdir()


__all__ = ["HandOver", "SampleFolder", "opaque_name", "png_bytes", "shuffled_order"]
