"""``harness export OUT --to DIR``: a run's scores and maps in the layout ``precomputed`` reads back.

For every (model, seed) of the run, ``DIR/<model>/seed<seed>/`` gets:

- ``scores.csv``: ``path,score,split`` for every scored image (held-out normals and test images),
  ``path`` relative to the dataset root as the layout lists it;
- ``anomaly_images/<path with .tiff>``: each map as a float32 TIFF (when the model gives maps),
  the held-out normals' and unlabelled images' too when the cache has them;
- ``anomaly_images_thresholded/<path with .png>``: each map binarised (0/255) at the pixel
  threshold from the held-out normals only (:func:`harness.runs.holdout_pixel_threshold`),
  when their maps are cached.

For MVTec AD 2 (layout option ``private: true``) this is its submission folder's layout
(``anomaly_images/<object>/test_private/000_regular.tiff`` and ``anomaly_images_thresholded/...png``).

The run's jobs are found again from ``run.json`` (its protocol and job keys) and read from the
score cache; nothing is fitted. Files are written only inside ``DIR`` (a new or empty folder, or
one this command wrote before: it holds ``.harness-export``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness import HarnessError, write_atomic
from harness.runs import Job, OutputError, ScoreCache, holdout_pixel_threshold

MARKER = ".harness-export"


def _plan(out: Path) -> tuple[dict[str, Any], list[Job], Path]:
    """The run record, the jobs of the run (re-planned from its protocol) and the dataset root."""
    from harness.runs import get_plugins, load_protocol, open_dataset, resolve

    record_path = out / "run.json"
    if not record_path.is_file():
        raise HarnessError(f"{out} has no run.json; pass the --out folder of a finished harness run")
    run = json.loads(record_path.read_text())
    config = dict(run["config"])
    if (run.get("dataset") or {}).get("root"):  # the root as the run resolved it (a relative one is anchored)
        config["dataset"] = {**(config.get("dataset") or {}), "root": run["dataset"]["root"]}
    with tempfile.TemporaryDirectory(prefix="harness-export-") as scratch:
        protocol_file = Path(scratch) / Path(run.get("protocol_file") or "protocol.yaml").name
        protocol_file.write_text(yaml.safe_dump(config))
        protocol = load_protocol(protocol_file)
    plugins = get_plugins()
    plan = resolve(protocol, plugins, check_options=False)
    source = open_dataset(protocol.dataset, plugins)
    root = Path(getattr(source, "root", None) or protocol.dataset.root).resolve()
    return run, plan.jobs, root


def _rows(job: Job, table: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The cached rows with ``path`` relative to the dataset root (rows: held-out, test, then unlabelled)."""
    _, holdout = job.subset.split(job.category)
    records = holdout + [r for split in ("test", "unlabelled") for c in job.evaluated for r in c.split(split)]
    if len(records) != len(table):
        raise HarnessError(f"cache entry {job.key} has {len(table)} rows for {len(records)} images; rerun the protocol")
    relative = [r.path.resolve().relative_to(root).as_posix() for r in records]
    return pd.DataFrame({"path": relative, "score": table["score"].to_numpy(float), "split": table["split"]})


def _write_maps(folder: Path, rows: pd.DataFrame, maps: np.ndarray | None, split: str, threshold: float) -> int:
    """Float maps as TIFF; binary ones (0/255 PNG) at the held-out pixel threshold when there is one."""
    import tifffile
    from PIL import Image

    if maps is None:
        return 0
    paths = rows.loc[rows["split"] == split, "path"].tolist()
    for relative, values in zip(paths, maps, strict=True):
        target = folder / "anomaly_images" / Path(relative).with_suffix(".tiff")
        target.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(target, np.asarray(values, dtype=np.float32))
        if np.isfinite(threshold):
            binary = folder / "anomaly_images_thresholded" / Path(relative).with_suffix(".png")
            binary.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(((values >= threshold) * 255).astype(np.uint8)).save(binary)
    return len(paths)


def _prepare(target: Path) -> None:
    if target.exists() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise OutputError(f"--to {target} is not empty and was not written by harness export; choose a new folder")
    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text("written by harness export\n")


def export_run(out: Path, target: Path) -> list[Path]:
    """Write ``out``'s scores and maps under ``target``; returns the folders written (one per model and seed)."""
    run, jobs, root = _plan(out)
    wanted = {j["key"] for j in run.get("jobs", []) if j.get("status") != "failed"}
    cache = ScoreCache(Path(run["cache"]))
    _prepare(target)
    tables: dict[Path, list[pd.DataFrame]] = {}
    for job in (j for j in jobs if j.key in wanted):
        if not cache.has(job.key):
            raise HarnessError(f"job {job.key} of {out} is no longer in the cache {cache.root}; rerun the protocol")
        folder = target / job.model.label / f"seed{job.seed}"
        rows = _rows(job, cache.scores(job.key), root)
        held = cache.split_maps(job.key, "holdout")
        threshold = holdout_pixel_threshold(held)
        _write_maps(folder, rows, cache.maps(job.key), "test", threshold)
        _write_maps(folder, rows, held, "holdout", threshold)
        _write_maps(folder, rows, cache.split_maps(job.key, "unlabelled"), "unlabelled", threshold)
        tables.setdefault(folder, []).append(rows)
    for folder, parts in tables.items():
        table = pd.concat(parts).drop_duplicates("path")
        write_atomic(folder / "scores.csv", table.to_csv(index=False))
    return sorted(tables)
