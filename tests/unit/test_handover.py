"""The hand-over folder: opaque names, nothing in the files but the pixels, a seeded order undone exactly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from harness.data.base import Record
from harness.data.handover import FIXED_MTIME, SampleFolder, opaque_name, shuffled_order


def _records(tmp_path: Path, n: int = 12) -> list[Record]:
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        folder = tmp_path / "test" / ("good" if i % 2 else "scratch")
        folder.mkdir(parents=True, exist_ok=True)
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", folder.name * (i + 1))
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path, pnginfo=info)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
        records.append(Record(path, "test", folder.name))
    return records


def test_files_hold_only_the_resized_pixels_under_a_hash_name(tmp_path):
    records = _records(tmp_path)
    with SampleFolder((16, 16), seed=0) as folder:
        handed = folder.hand_over(records, "score")
        paths = [s.path for s in handed.samples]
        assert len({p.parent for p in paths}) == 1 and all(p.parent == folder.root for p in paths)
        assert all(p.suffix == ".png" and len(p.stem) == 24 and p.stem.isalnum() for p in paths)
        assert all(not p.is_symlink() and p.resolve() == p.resolve().parent / p.name for p in paths)
        assert {os.path.getsize(p) for p in paths} == {os.path.getsize(paths[0])}  # size: a function of H x W
        assert {os.stat(p).st_mtime for p in paths} == {FIXED_MTIME}
        for sample in handed.samples:
            assert sample.image.shape == (16, 16, 3)
            assert opaque_name(sample.image) == sample.path.name
            with Image.open(sample.path) as image:
                assert not image.text  # no metadata carried over
                assert (np.asarray(image) == sample.image).all()
            assert not os.stat(sample.path).st_mode & stat.S_IWUSR
    assert not folder.root.exists()


def test_order_is_seeded_shuffled_and_restored(tmp_path):
    records = _records(tmp_path)
    with SampleFolder((16, 16), seed=3) as folder:
        first = folder.hand_over(records, "score")
        again = folder.hand_over(records, "score")
        other = SampleFolder((16, 16), seed=4)
        assert list(first.order) == list(again.order) == list(shuffled_order(len(records), 3, "score"))
        assert list(first.order) != list(range(len(records)))
        assert list(other.hand_over(records, "score").order) != list(first.order)
        other.close()
        values = np.array([float(first.order[i]) for i in range(len(records))])  # "score" = record index
        assert list(first.restore(values)) == list(range(len(records)))
        maps = np.stack([np.full((2, 2), v) for v in values])
        assert list(first.restore(maps)[:, 0, 0]) == list(range(len(records)))
        assert first.restore(None) is None


def test_samples_reference_no_original_path(tmp_path):
    """Nothing reachable from a sample (its loader's closure included) names the original file."""
    records = _records(tmp_path)
    with SampleFolder((16, 16), seed=0) as folder:
        sample = folder.hand_over(records, "fit").samples[0]
        cells = [c.cell_contents for c in (sample._loader.__closure__ or ())]
        assert all(str(tmp_path / "test") not in str(c) for c in [*cells, sample.path, repr(sample)])


def test_labelled_samples_keep_labels_but_not_paths(tmp_path):
    records = _records(tmp_path)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((20, 24), 255, np.uint8)).save(mask)
    defects = [Record(r.path, "supervised", "scratch", (mask,)) for r in records[:4]]
    with SampleFolder((16, 16), seed=0) as folder:
        labelled = folder.labelled(defects)
        assert all(s.path.parent == folder.root and s.defect_type == "scratch" for s in labelled)
        assert all(s.mask.shape == (16, 16) and s.mask.all() for s in labelled)


def test_close_removes_only_the_files_it_wrote(tmp_path):
    records = _records(tmp_path, 3)
    folder = SampleFolder((8, 8), seed=0)
    folder.hand_over(records, "fit")
    folder.root.chmod(0o700)
    foreign = folder.root / "plugin-cache.bin"
    foreign.write_bytes(b"a plugin's own file")
    folder.close()
    assert foreign.read_bytes() == b"a plugin's own file"
    assert [p.name for p in folder.root.iterdir()] == ["plugin-cache.bin"]
    assert all(r.path.is_file() for r in records)
    foreign.unlink()
    folder.root.rmdir()


def test_identical_pixels_share_one_file(tmp_path):
    records = _records(tmp_path, 2)
    twin = tmp_path / "twin.png"
    twin.write_bytes(records[0].path.read_bytes())
    with SampleFolder((16, 16), seed=0) as folder:
        paths = {folder.file_for(r.path) for r in (records[0], Record(twin, "test"))}
        assert len(paths) == 1


@pytest.mark.parametrize("stream", ["fit", "score", "supervised"])
def test_streams_are_independent(stream):
    orders = {s: tuple(shuffled_order(20, 0, s)) for s in ("fit", "score", "supervised")}
    assert sum(order == orders[stream] for order in orders.values()) == 1


def test_images_prepared_elsewhere_are_adopted_and_removed_with_the_folder(tmp_path, monkeypatch):
    records = _records(tmp_path)
    with SampleFolder((16, 16), seed=0) as alone:
        expected = [s.path.name for s in alone.hand_over(records, "score").samples]
    with SampleFolder((16, 16), seed=0) as folder:
        folder.prepare_elsewhere([r.path for r in records])()
        written = sorted(p.name for p in folder.root.iterdir())
        monkeypatch.setattr(folder, "_write", lambda *a: pytest.fail("adopted files are not written again"))
        handed = folder.hand_over(records, "score")
        assert [s.path.name for s in handed.samples] == expected and written == sorted(set(expected))
    assert not folder.root.exists()


def test_an_image_that_fails_elsewhere_fails_here_with_the_same_error(tmp_path):
    from harness.errors import DatasetError

    records = _records(tmp_path, 6)
    records[3].path.write_bytes(b"not an image")
    with SampleFolder((16, 16), seed=0) as alone, pytest.raises(DatasetError) as direct:
        alone.hand_over(records, "fit")
    with SampleFolder((16, 16), seed=0) as folder:
        folder.prepare_elsewhere([r.path for r in records])()
        with pytest.raises(DatasetError) as adopted:
            folder.hand_over(records, "fit")
    assert str(adopted.value) == str(direct.value)
    assert not folder.root.exists()  # what the other process wrote was removed too


def test_a_dead_jobs_hand_over_folder_is_removed_but_what_others_put_there_stays(tmp_path, monkeypatch):
    """``remove_left_by``: the files with the hand-over's marks go; a foreign file keeps itself and its folder."""
    import tempfile

    from harness.data.handover import remove_left_by

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = SampleFolder((8, 8), seed=0)
    folder._finalizer.detach()  # as in a job's process killed before it closed the folder
    folder.prepare([_image_file(tmp_path, "a.png"), _image_file(tmp_path, "b.png")])
    clean = SampleFolder((8, 8), seed=0)
    clean._finalizer.detach()
    clean.prepare([_image_file(tmp_path, "c.png")])
    clean.root.chmod(0o700)
    (clean.root / "notes.txt").write_text("a plugin's file")
    remove_left_by(os.getpid() + 1)  # another process's folders: untouched
    assert len(list(folder.root.iterdir())) == 2
    remove_left_by(os.getpid())
    assert not folder.root.exists()
    assert [f.name for f in clean.root.iterdir()] == ["notes.txt"]


def _image_file(folder, name):
    path = folder / name
    Image.fromarray(np.full((8, 8, 3), ord(name[0]), dtype=np.uint8)).save(path)
    return path
