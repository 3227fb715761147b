"""Fit and score, with the cache: the only place where models run.

One job is one (model config, category, seed, training subset). Its key is a content hash
of everything that can change its scores; a job whose key is cached is never run again.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.data.base import Category, Record, absolute
from harness.data.extra_inputs import inputs_digest
from harness.data.handover import HandOver, SampleFolder
from harness.errors import HarnessError
from harness.integrity import by_content
from harness.protocol import ModelConfig
from harness.seeding import seed_on_import
from harness.store import CACHE_SCHEMA, ScoreCache
from harness.types import LabelledSample, Scores, detector_info

if TYPE_CHECKING:  # planning and validating jobs need no pandas; a job that runs imports it
    import pandas as pd


@dataclass(frozen=True)
class TrainingSubset:
    """Which training normals a model is fitted on; the rest of the train split is held out."""

    fraction_held_out: float
    split_seed: int

    def split(self, category: Category) -> tuple[list[Record], list[Record]]:
        """(fit, holdout): a seeded split of the defect-free training images (paper 000: 75 / 25).

        A dataset that ships its own held-out normals (records of the split ``"holdout"``) is not
        carved: all training images are fitted on and those are held out.

        A merged category (a unified model over several categories) is split per member, so each
        category keeps the same held-out images as its own model would.
        """
        if category.members:
            parts = [self.split(member) for member in category.members]
            return [r for fit, _ in parts for r in fit], [r for _, held in parts for r in held]
        train = category.split("train")
        if category.split("holdout"):  # the dataset's own held-out normals (MVTec AD 2 validation/good)
            return train, category.split("holdout")
        n_holdout = round(len(train) * self.fraction_held_out)
        order = np.random.default_rng(self.split_seed).permutation(len(train))
        held = set(order[:n_holdout].tolist())
        return ([r for i, r in enumerate(train) if i not in held], [r for i, r in enumerate(train) if i in held])

    def describe(self) -> dict[str, Any]:
        """The subset as it enters the cache key."""
        return {"holdout_fraction": self.fraction_held_out, "split_seed": self.split_seed}


@dataclass(frozen=True)
class Job:
    """One unit of work: fit ``model`` on a subset of ``category``'s normals with ``seed``, then score.

    The held-out normals of ``category`` and the test images of ``test_categories`` (by default
    ``category`` itself) are scored; each scored row keeps the name of the category it came from.
    """

    model: ModelConfig
    category: Category = field(repr=False)
    seed: int
    subset: TrainingSubset
    image_size: tuple[int, int]
    plugin: str
    plugin_version: str
    factory_version: str
    test_categories: tuple[Category, ...] = field(default=(), repr=False)
    efficiency: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """How to measure efficiency (``efficiency:`` in the protocol); measuring never changes scores."""
    inputs: tuple[str, ...] = ()
    """Per-sample inputs the model asks for besides the image (``ModelSpec.inputs``, e.g. ``("xyz",)``)."""

    @property
    def evaluated(self) -> tuple[Category, ...]:
        """The categories whose test images this job scores."""
        return self.test_categories or (self.category,)

    @property
    def key(self) -> str:
        """Content hash of the model config, data, subset, seed and versions.

        Nothing absolute enters it: data by content and relative paths (``Category.fingerprint``),
        options that name existing files or folders by their content hash (so new weights at the
        same path are a new job, and the same weights elsewhere are the same job).
        """
        if "_key" not in self.__dict__:
            object.__setattr__(self, "_key", self._compute_key())
        return self.__dict__["_key"]

    def _compute_key(self) -> str:
        payload = {
            "schema": CACHE_SCHEMA,
            "model": self.model.name,
            "options": by_content(dict(self.model.options)),
            "plugin": [self.plugin, self.plugin_version, self.factory_version],
            "data": self.category.fingerprint(),
            "category": self.category.name,
            "image_size": list(self.image_size),
            "seed": self.seed,
            "subset": self.subset.describe(),
        }
        if self.test_categories:
            payload["tests"] = [[c.name, c.fingerprint()] for c in self.test_categories]
        if self.inputs:  # only models that read them: the point clouds' content enters their key
            records = [r for c in (self.category, *self.evaluated) for r in c.records]
            payload["inputs"] = [list(self.inputs), inputs_digest(records, self.inputs, self.record_id)]
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def data_root(self) -> Path:
        """The deepest folder holding every image of this job; cached rows name images relative to it."""
        if "_data_root" not in self.__dict__:
            paths = [
                os.path.dirname(_absolute_text(r.path)) for c in (self.category, *self.evaluated) for r in c.records
            ]
            object.__setattr__(self, "_data_root", Path(os.path.commonpath(paths)) if paths else Path("/"))
        return self.__dict__["_data_root"]

    def record_id(self, record: Record) -> str:
        """How a cached row names ``record``: its path relative to :meth:`data_root` (POSIX)."""
        return absolute(record.path).relative_to(self.data_root()).as_posix()


def _absolute_text(path: Path | str) -> str:
    """:func:`harness.data.base.absolute` as a string, without building Path objects (hot: once per image)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def record_ids(job: Job) -> dict[str, str]:
    """:meth:`Job.record_id` of every record of ``job`` mapped to its path as given (string work, no Path per image)."""
    root = str(job.data_root())
    ids: dict[str, str] = {}
    for category in (job.category, *job.evaluated):
        for r in category.records:
            text = _absolute_text(r.path)
            if root == os.sep:
                name = text[1:]
            elif text.startswith(root + os.sep):
                name = text[len(root) + 1 :]
            else:  # not under the root (cannot happen for the job's own records): the exact rule
                name = job.record_id(r)
            ids[name] = str(r.path)
    return ids


def cached_scores(job: Job, cache: ScoreCache) -> pd.DataFrame:
    """The job's cached rows with ``path`` joined back to the current records (the dataset may have moved)."""
    table = cache.scores(job.key)
    root = job.data_root()
    current = record_ids(job)
    table["path"] = [current.get(str(name), str(root / str(name))) for name in table["path"]]
    return table


@dataclass
class JobOutcome:
    """What became of a job: ``status`` is "cached", "fitted" or "failed"."""

    job: Job
    status: str
    error: str | None = None


@dataclass
class FittedJob:
    """A job once fitted and scored, as ``harness_fit_and_score`` wrappers get it from ``yield``.

    ``figures`` holds the timers and goes to the cache entry's ``efficiency`` (``run.json`` keeps the timers):
    a wrapper adds its measurements there. The scores are not here: the harness keeps them.
    """

    detector: Any
    samples: Sequence[Any]
    """The scored samples, as handed to the detector (opaque names, shuffled, no labels)."""
    fit_seconds: float
    score_seconds: float
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.figures = {"fit_seconds": self.fit_seconds, "score_seconds": self.score_seconds, **self.figures}


@dataclass(frozen=True)
class JobView:
    """What a ``harness_fit_and_score`` wrapper learns of its job: names and sizes, no image, path or label."""

    key: str
    model: str
    options: Mapping[str, Any]
    category: str
    seed: int
    image_size: tuple[int, int]


class JobFailed(Exception):
    """A detector raised or returned unusable scores; the run goes on without this job."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (now, or the moment it is imported), so random-init models are reproducible.

    Plugins import torch lazily, inside their factories: seeding only an already-imported torch
    left the first torch job of a process unseeded, so its results depended on the job order.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    else:  # seeded the moment a plugin imports it; a job that never does never loads it
        seed_on_import("torch", lambda module: module.manual_seed(seed))


def _check_scores(scores: object, n: int, size: tuple[int, int], model: str) -> Scores:
    if not isinstance(scores, Scores):
        raise JobFailed(f"{model}.score() returned {type(scores).__name__}; expected harness.Scores")
    if scores.image.shape != (n,):
        raise JobFailed(f"{model}.score() returned {scores.image.shape[0]} image scores for {n} images")
    if not np.all(np.isfinite(scores.image)):
        raise JobFailed(f"{model}.score() returned non-finite image scores (NaN or inf)")
    if scores.maps is not None and scores.maps.shape[1:] != size:
        raise JobFailed(f"{model}.score() returned maps of size {scores.maps.shape[1:]}; expected {size}")
    if scores.maps is not None and not np.all(np.isfinite(scores.maps)):
        raise JobFailed(f"{model}.score() returned non-finite anomaly maps (NaN or inf)")
    return scores


def _score_in_batches(detector: Any, samples: list, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
    if not samples:
        return np.zeros(0), None
    images, maps = [], []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        size = batch[0].image.shape[:2]
        scores = _check_scores(detector.score(batch), len(batch), size, type(detector).__name__)
        images.append(scores.image)
        maps.append(None if scores.maps is None else scores.maps.astype(np.float16))  # as the cache keeps them
    has_maps = all(m is not None for m in maps)
    return np.concatenate(images), (np.concatenate(maps) if has_maps and maps else None)


def run_job(job: Job, factory: Callable[..., Any], cache: ScoreCache, meanwhile: Callable | None = None) -> None:
    """Fit and score one job and store it in ``cache``. Labels are joined only after scoring.

    The detector gets its images through a :class:`SampleFolder`: opaque names, a seeded shuffled
    order, held-out normals and test images mixed in one stream. Its scores are put back in the
    records' order here, and only then joined to labels. ``meanwhile`` runs in this thread while
    the images are handed over (a job's process imports its model's libraries there).
    """
    fit_records, holdout_records = job.subset.split(job.category)
    tests = [(category.name, record) for category in job.evaluated for record in category.split("test")]
    test_records = [record for _, record in tests]
    unlabelled = [(c.name, r) for c in job.evaluated for r in c.split("unlabelled")]  # no labels: never evaluated
    records = holdout_records + test_records + [r for _, r in unlabelled]
    with SampleFolder(job.image_size, job.seed) as folder:
        fit, scored = _hand_over(job, folder, fit_records, records, meanwhile)
        seed_everything(job.seed)  # after ``meanwhile``'s imports: as seeded after the run's process imported them
        detector, shuffled_scores, shuffled_maps, figures = _fit_and_score(job, factory, folder, fit, scored)
    all_scores, all_maps = scored.restore(shuffled_scores), scored.restore(shuffled_maps)
    n_holdout, n_labelled = len(holdout_records), len(holdout_records) + len(test_records)
    test_maps, split_maps = _maps_by_split(all_maps, n_holdout, n_labelled)
    supervision = {r.path for category in job.evaluated for r in category.split("supervised")}
    holdout_sources = [_source(job.category, r) for r in holdout_records]
    table = _scores_table(
        {
            "path": [job.record_id(r) for r in records],  # relative: a moved dataset reuses the entry
            "split": ["holdout"] * n_holdout + ["test"] * len(test_records) + ["unlabelled"] * len(unlabelled),
            "category": holdout_sources + [name for name, _ in tests] + [name for name, _ in unlabelled],
            "score": all_scores if records else [],
            # joined after scoring: the detector never saw these (unlabelled images have none: -1)
            "label": [r.label for r in records[:n_labelled]] + [-1] * len(unlabelled),
            "defect_type": [r.defect_type for r in records[:n_labelled]] + [""] * len(unlabelled),
            # a test image the protocol's supervision split also hands to supervised models
            "supervision": [r.path in supervision for r in records],
        }
    )
    meta = {
        "model": job.model.name,
        "label": job.model.label,
        "options": dict(job.model.options),
        "plugin": job.plugin,
        "plugin_version": job.plugin_version,
        "factory_version": job.factory_version,
        **detector_info(detector).record(),  # weights, supervised, detector name, device
        "category": job.category.name,
        "test_categories": [c.name for c in job.evaluated],
        "seed": job.seed,
        "subset": job.subset.describe(),
        "image_size": list(job.image_size),
        "n_fit": len(fit_records),
        "n_holdout": len(holdout_records),
        "n_test": len(test_records),
        "n_unlabelled": len(unlabelled),
        "fit_seconds": figures["fit_seconds"],
        "score_seconds": figures["score_seconds"],
        "efficiency": figures,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    cache.put(job.key, table, test_maps, meta, split_maps=split_maps)


def _hand_over(
    job: Job, folder: SampleFolder, fit: list[Record], scored: list[Record], meanwhile: Callable[[], None] | None
) -> tuple[HandOver, HandOver]:
    """The fit and scored hand-overs; with ``meanwhile``, written by a forked process while this one runs it.

    Every image is decoded and written before the detector exists: a corrupt one is a data error,
    raised here as it was. The ``harness_prepare_jobs`` hooks (a measuring plugin starting its meters)
    run in a thread meanwhile; a plugin whose preparation fails prepares again inside its wrapper.
    """
    from harness.plugins import get_plugins

    adopt = folder.prepare_elsewhere([r.path for r in (*fit, *scored)]) if meanwhile is not None else None
    with ThreadPoolExecutor(1, thread_name_prefix="harness-job") as pool:  # after the fork: it copies no thread
        prepared = pool.submit(
            get_plugins().call_each, "harness_prepare_jobs", efficiency=job.efficiency, forking=False
        )
        if adopt is not None:  # set with ``meanwhile``
            meanwhile()
            adopt()
        handed = folder.hand_over(fit, "fit", job.inputs), folder.hand_over(scored, "score", job.inputs)
        prepared.result()
    return handed


def _scores_table(columns: dict[str, Any]) -> pd.DataFrame:
    """A job's rows as a table (pandas imported here: planning and validating jobs need none)."""
    import pandas as pd

    return pd.DataFrame(columns)


def _maps_by_split(
    maps: np.ndarray | None, n_holdout: int, n_labelled: int
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """(test maps, the other splits' maps) from maps in held-out, test, unlabelled order."""
    if maps is None:
        return None, {}
    others = {"holdout": maps[:n_holdout], "unlabelled": maps[n_labelled:]}
    return maps[n_holdout:n_labelled], {name: part for name, part in others.items() if len(part)}


def _fit_and_score(
    job: Job, factory: Callable[..., Any], folder: SampleFolder, fit: HandOver, scored: HandOver
) -> tuple[Any, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Build, fit and score the detector on the handed-over samples, inside the plugins' measuring wrappers.

    Returns the detector, its scores and maps in the handed-over (shuffled) order, and the figures.
    """
    kept: dict[str, Any] = {}

    def run() -> FittedJob:
        detector = factory(**dict(job.model.options))
        started = time.perf_counter()
        stages = getattr(job.subset, "stages", lambda _: None)(job.category)  # a continual sequence
        if detector_info(detector).supervised:
            detector.fit(fit.samples, anomalies=labelled_samples(job, folder))
        elif stages:  # files already written for the fit hand-over: these only reorder them per stage
            from harness.subsets import teach

            teach(detector, [folder.hand_over(stage, "fit", job.inputs).samples for stage in stages])
        else:
            detector.fit(fit.samples)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        kept["scores"], kept["maps"] = _score_in_batches(detector, scored.samples)
        return _with_fit_notes(FittedJob(detector, scored.samples, fit_seconds, time.perf_counter() - started))

    try:
        fitted = measured(job, run)
    except (HarnessError, KeyboardInterrupt, JobFailed):
        raise
    except Exception as exc:
        tail = traceback.extract_tb(exc.__traceback__)[-1]
        raise JobFailed(f"{type(exc).__name__}: {exc} (at {Path(tail.filename).name}:{tail.lineno})") from exc
    return fitted.detector, kept["scores"], kept["maps"], fitted.figures


def _with_fit_notes(fitted: FittedJob) -> FittedJob:
    """What the fit chose (e.g. MultiCore's predictors) and a fit shared with sibling models, in ``fit_note``."""
    info = detector_info(fitted.detector)  # read after scoring: a fit may set it
    notes = [info.fit_note]
    shared = info.shared_fit_seconds
    if shared is not None:  # the detector loaded a fit made once for sibling models
        notes.append(f"fit shared with sibling models: trained once in {shared:.1f} s (energy: loading)")
        fitted.fit_seconds = fitted.figures["fit_seconds"] = float(shared)
    if any(notes):
        fitted.figures["fit_note"] = "; ".join(note for note in notes if note)
    return fitted


NOT_MEASURED = (
    "efficiency: not measured when this job was fitted (no plugin wrapped harness_fit_and_score then; "
    "plugins/harness_efficiency measures jobs fitted while it is installed)"
)


def measured(job: Job, run: Callable[[], FittedJob]) -> FittedJob:
    """``run()`` (build, fit and score) inside every plugin's ``harness_fit_and_score`` wrapper.

    The model's own exception is raised as it was; a wrapper's exception costs only its figures
    (``energy_note`` says so), and a wrapper that fails before the fit leaves the job unmeasured.
    """
    from harness.plugins import get_plugins

    hook = get_plugins().manager.hook.harness_fit_and_score
    state: dict[str, Any] = {}

    def innermost(job: Job, efficiency: Mapping[str, Any]) -> FittedJob:
        try:
            fitted = state["fitted"] = run()
        except BaseException as exc:
            state["error"] = exc
            raise
        state["kept"] = (fitted.detector, fitted.samples, fitted.fit_seconds, fitted.score_seconds)
        return fitted

    note = None if hook.get_hookimpls() else NOT_MEASURED
    view = JobView(job.key, job.model.name, dict(job.model.options), job.category.name, job.seed, job.image_size)
    try:
        hook.call_extra([innermost], {"job": view, "efficiency": dict(job.efficiency)})
    except Exception as exc:
        note = None if "error" in state else f"efficiency: a measuring plugin failed ({type(exc).__name__}: {exc})"
    if "error" in state:
        raise state["error"]
    fitted = state.get("fitted") or innermost(view, job.efficiency)  # a wrapper failed before the fit
    return _as_measured(fitted, state["kept"], note)


def _is_plain(value: Any) -> bool:
    """A figure the cache entry can hold: a number, string, ``None``, or a list or mapping of them."""
    if isinstance(value, (list, tuple)):
        return all(map(_is_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, (str, numbers.Number))


def _as_measured(fitted: FittedJob, kept: tuple[Any, ...], note: str | None) -> FittedJob:
    """The harness's own detector, samples and timers (whatever a wrapper set), and figures that are plain values."""
    figures = {k: v for k, v in fitted.figures.items() if _is_plain(v)}
    dropped = sorted(set(fitted.figures) - set(figures))
    notes = [
        figures.pop("energy_note", None),
        note,
        f"figures that are not plain values left out: {dropped}" * bool(dropped),
    ]
    if any(notes):
        figures["energy_note"] = "; ".join(str(n) for n in notes if n)
    detector, samples, fit_seconds, score_seconds = kept
    return FittedJob(
        detector,
        samples,
        fit_seconds,
        score_seconds,
        {**figures, "fit_seconds": fit_seconds, "score_seconds": score_seconds},
    )


def labelled_samples(job: Job, folder: SampleFolder) -> list[LabelledSample]:
    """The defective images a protocol's ``supervision:`` set aside, with their masks (supervised models only).

    They carry their labels on purpose; their paths are opaque like every other sample's.
    """
    if not job.category.split("supervised"):
        raise HarnessError(
            f"model '{job.model.name}' is supervised but category '{job.category.name}' has no "
            "labelled anomalies set aside; declare supervision: {anomaly_train_fraction: 0.5}"
        )
    return folder.labelled(job.category.split("supervised"))


def _source(category: Category, record: Record) -> str:
    for member in category.members:
        if record in member.records:
            return member.name
    return category.name
