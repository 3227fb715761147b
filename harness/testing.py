"""A conformance suite for detector plugins, in the spirit of scikit-learn's ``check_estimator``.

Call it from a plugin's own tests::

    from harness.testing import check_detector, parametrize_checks

    def test_my_detector_conforms():
        check_detector("my_detector", MyDetector, options={"k": 3})

    @parametrize_checks("my_detector", MyDetector)
    def test_each_property(check):          # one test per property, with readable ids
        check()

Each check asserts one property and, when it fails, names the detector, the property and
what to fix. A property a detector cannot meet is declared with a reason
(``expected_failures={"batch_invariance": "batch norm uses batch statistics"}``): the check
then must fail (an unexpected pass is reported too, so stale declarations get noticed).

Checks that only score (one score per image, maps size, batch and order invariance, never
receives labels, the embedded dataset, scoring leaves the detector unchanged) share one fitted
detector per process and per subject (name, factory, options, image size, category, seed): the
fit is the costly part, and it is the same fit for each of them. That is sound because
``score()`` must not change the detector, and the check ``score_leaves_detector_unchanged``
asserts exactly that. The deterministic-fit check compares two fits of its own. A subject that declares
``score_leaves_detector_unchanged`` an expected failure gets a fresh fit in every check.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import Record
from harness.data.handover import SampleFolder
from harness.data.layouts import MVTecLayout
from harness.data.synthetic import ensure_generated
from harness.scoring import seed_everything
from harness.types import LabelledSample, Sample, Scores, detector_info

__all__ = ["CHECKS", "ConformanceError", "check_detector", "parametrize_checks", "suite", "validate_options"]

EMBEDDED = {"n_train": 12, "n_test_good": 4, "n_per_defect": 2, "size": 48, "seed": 0}


_SHARED_FITS: dict[tuple[Any, ...], tuple[Callable[..., Any], Any]] = {}
"""Fitted detectors shared by the score-only checks, newest last (the factory pins its id)."""
_SHARED_FITS_KEPT = 2


@functools.cache
def _sample_folder(image_size: int) -> SampleFolder:
    """The hand-over folder for one image size, one per process: samples outlive a Subject built inline."""
    return SampleFolder((image_size,) * 2, seed=0)


class ConformanceError(AssertionError):
    """A detector does not have a property of the contract."""


@dataclass
class Subject:
    """What the checks work on: the detector factory, its options and small embedded data."""

    name: str
    factory: Callable[..., Any]
    options: Mapping[str, Any]
    image_size: int
    category: str = "weave"
    share_fits: bool = True

    def build(self) -> Any:
        return self.factory(**dict(self.options))

    def records(self, split: str, category: str | None = None) -> list[Record]:
        root = ensure_generated(**{**EMBEDDED, "size": max(self.image_size, 32)})
        return MVTecLayout(root).load(category or self.category).split(split)

    def samples(self, split: str) -> list[Sample]:
        """The split's images as the harness hands them over: opaque names, record order kept."""
        records = self.records(split)
        handed = _sample_folder(self.image_size).hand_over(records, "fit")
        return [handed.samples[i] for i in np.argsort(handed.order)]

    def labelled(self) -> list[LabelledSample]:
        """Defective images with masks from another category, for supervised detectors only."""
        return _sample_folder(self.image_size).labelled([r for r in self.records("test", "grain") if r.label])

    def fitted(self, seed: int = 0) -> Any:
        seed_everything(seed)
        detector = self.build()
        if detector_info(detector).supervised:
            detector.fit(self.samples("train"), anomalies=self.labelled())
        else:
            detector.fit(self.samples("train"))
        return detector

    def shared_fit(self, seed: int = 0) -> Any:
        """A detector fitted as :meth:`fitted` does, fitted once per process for this subject.

        For checks that only call ``score()``, which must leave the detector unchanged. The key is
        the subject's identity (name, factory, options, image size, category, seed); the last few
        fits are kept, so a session does not hold every plugin's model at once.
        """
        if not self.share_fits:
            return self.fitted(seed)
        options = repr(sorted((str(k), repr(v)) for k, v in self.options.items()))
        key = (self.name, id(self.factory), options, self.image_size, self.category, seed)
        if key not in _SHARED_FITS:
            detector = self.fitted(seed)  # a failed fit is not kept: each check reports it
            while len(_SHARED_FITS) >= _SHARED_FITS_KEPT:
                del _SHARED_FITS[next(iter(_SHARED_FITS))]
            _SHARED_FITS[key] = (self.factory, detector)
        _SHARED_FITS[key] = _SHARED_FITS.pop(key)  # most recently used last
        return _SHARED_FITS[key][1]

    def fail(self, prop: str, problem: str, fix: str) -> ConformanceError:
        return ConformanceError(f"detector '{self.name}' fails '{prop}': {problem}. Fix: {fix}")


def _scores(subject: Subject, detector: Any, samples: Sequence[Sample], prop: str) -> Scores:
    result = detector.score(list(samples))
    if not isinstance(result, Scores):
        raise subject.fail(
            prop, f"score() returned {type(result).__name__}", "return harness.Scores(image=..., maps=...)"
        )
    return result


def check_one_finite_score_per_image(subject: Subject) -> None:
    """score() returns exactly one finite image score per sample (on the subject's shared fit)."""
    test = subject.samples("test")
    scores = _scores(subject, subject.shared_fit(), test, "one finite score per image")
    if scores.image.shape != (len(test),):
        raise subject.fail(
            "one finite score per image",
            f"{scores.image.shape[0]} scores for {len(test)} images",
            "return a 1-D array with one score per sample, in the order given",
        )
    if not np.isfinite(scores.image).all():
        raise subject.fail(
            "one finite score per image",
            f"{int((~np.isfinite(scores.image)).sum())} NaN/inf scores",
            "guard divisions and logs; scores must be finite",
        )


def check_maps_match_input_size(subject: Subject) -> None:
    """Maps, when given, are (N, H, W) at the input image size and finite (shared fit)."""
    test = subject.samples("test")
    scores = _scores(subject, subject.shared_fit(), test, "maps match the input size")
    if scores.maps is None:
        return
    expected = (len(test), subject.image_size, subject.image_size)
    if scores.maps.shape != expected:
        raise subject.fail(
            "maps match the input size",
            f"maps of shape {scores.maps.shape}, expected {expected}",
            "resize maps to each sample's image size (H x W of sample.image)",
        )
    if not np.isfinite(scores.maps).all():
        raise subject.fail("maps match the input size", "maps contain NaN or inf", "keep map values finite")


def check_batch_invariance(subject: Subject) -> None:
    """Scoring all images at once or in batches of one gives the same scores (shared fit)."""
    detector = subject.shared_fit()
    test = subject.samples("test")
    together = _scores(subject, detector, test, "batch invariance").image
    alone = np.concatenate([_scores(subject, detector, [s], "batch invariance").image for s in test])
    if not np.allclose(together, alone, rtol=1e-4, atol=1e-6):
        worst = float(np.max(np.abs(together - alone)))
        raise subject.fail(
            "batch invariance",
            f"scores change with batch size (max difference {worst:.3g})",
            "score each image independently (eval mode, no batch statistics)",
        )


def check_order_invariance(subject: Subject) -> None:
    """Reversing the samples reverses the scores and changes nothing else (shared fit)."""
    detector = subject.shared_fit()
    test = subject.samples("test")
    forward = _scores(subject, detector, test, "order invariance").image
    backward = _scores(subject, detector, test[::-1], "order invariance").image[::-1]
    if not np.allclose(forward, backward, rtol=1e-4, atol=1e-6):
        raise subject.fail(
            "order invariance",
            "scores depend on the order of the samples",
            "do not share state between images while scoring",
        )


def check_score_leaves_detector_unchanged(subject: Subject) -> None:
    """Scoring changes nothing: the same images score the same after other scoring in between.

    The score-only checks share one fitted detector on this property; a detector that learns,
    counts or caches something in ``score()`` that changes later scores fails here.
    """
    detector = subject.shared_fit()
    test = subject.samples("test")
    first = _scores(subject, detector, test, "score leaves the detector unchanged")
    for batch in ([test[0]], test[::-1], test[1:] or test):
        _scores(subject, detector, batch, "score leaves the detector unchanged")
    again = _scores(subject, detector, test, "score leaves the detector unchanged")
    same = np.allclose(first.image, again.image, rtol=1e-4, atol=1e-6)
    if same and first.maps is not None and again.maps is not None and first.maps.shape == again.maps.shape:
        same = np.allclose(first.maps, again.maps, rtol=1e-4, atol=1e-6)
    if not same or (first.maps is None) != (again.maps is None):
        raise subject.fail(
            "score leaves the detector unchanged",
            "the same images score differently after the detector scored other batches",
            "learn only in fit(); keep score() free of updates to the detector's state",
        )


def check_deterministic_fit(subject: Subject) -> None:
    """Two fits with the same seed give the same scores (two fits of its own, never shared)."""
    test = subject.samples("test")
    first = _scores(subject, subject.fitted(seed=0), test, "deterministic fit").image
    second = _scores(subject, subject.fitted(seed=0), test, "deterministic fit").image
    if not np.allclose(first, second, rtol=1e-4, atol=1e-6):
        raise subject.fail(
            "deterministic fit",
            "two fits with seed 0 give different scores",
            "draw randomness from numpy/torch/random, which the harness seeds",
        )


def check_no_labels(subject: Subject) -> None:
    """Scores depend on the pixels only, not on file names, folders or order.

    The harness hands images over under opaque names in a shuffled order; this check scores the
    same test images under two sets of names that suggest opposite labels (``test/good/...``
    for the defects and ``test/scratch/...`` for the normals, then the reverse), each in another
    order, and asks for the same score per image. The samples carry no label attribute at all.
    It only scores, so it uses the subject's shared fit (fitted on the usual opaque names).
    """
    detector = subject.shared_fit()
    records = subject.records("test")
    test = subject.samples("test")
    for attribute in ("label", "defect_type", "mask", "split"):
        if hasattr(test[0], attribute):
            raise subject.fail("never receives labels", f"samples expose '{attribute}'", "report this harness bug")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for flip, seed in ((False, 1), (True, 2)):
            renamed = []  # the same images as files named for the opposite label (folders created as needed)
            for i, (sample, record) in enumerate(zip(test, records, strict=True)):
                label = "good" if (record.label == 1) != flip else "scratch"
                path = Path(folder) / f"set{seed}" / "test" / label / f"{i:03d}{record.path.suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sample.path, path)
                renamed.append(Sample(path, lambda s=sample: s.image))
            order = np.random.default_rng(seed).permutation(len(renamed))
            scores = _scores(subject, detector, [renamed[i] for i in order], "never receives labels").image
            results.append(scores[np.argsort(order)])
    if not np.allclose(results[0], results[1], rtol=1e-4, atol=1e-6):
        raise subject.fail(
            "never receives labels",
            "scores change when only the file names, folders and order of the samples change",
            "never read labels from paths or positions; use sample.image only",
        )


def check_embedded_dataset(subject: Subject) -> None:
    """Fits and scores a category of the embedded dataset at small size, with a usable ranking.

    It scores the subject's shared fit, which is a fit on that category's training images.
    """
    test = subject.samples("test")
    scores = _scores(subject, subject.shared_fit(), test, "works on the embedded dataset").image
    if np.ptp(scores) == 0:
        raise subject.fail(
            "works on the embedded dataset",
            "all scores are equal: the ranking carries no signal",
            "check that fit() learns from the samples",
        )


CHECKS: dict[str, Callable[[Subject], None]] = {
    "one_finite_score_per_image": check_one_finite_score_per_image,
    "maps_match_input_size": check_maps_match_input_size,
    "batch_invariance": check_batch_invariance,
    "order_invariance": check_order_invariance,
    "score_leaves_detector_unchanged": check_score_leaves_detector_unchanged,
    "deterministic_fit": check_deterministic_fit,
    "never_receives_labels": check_no_labels,
    "embedded_dataset": check_embedded_dataset,
}
"""Every check by name, in the order they run."""


OPTIONS_PROTOCOL = """include: kde_vs_test
dataset: {{layout: synthetic, image_size: 32, categories: [disc]}}
models: [{{name: {model}, options: {options}}}]
"""


def validate_options(model: str, options: str, folder: Path) -> tuple[int, list[str]]:
    """``harness validate`` of a small protocol that gives ``model`` these ``options`` (YAML flow text, e.g. "{k: 3}").

    Returns the exit status and the ``Error:`` lines: an options model that refuses a value gives
    status 2 and one line naming ``models.0.options.<key>``, before anything is fitted. The protocol
    file is written into ``folder``; the embedded dataset goes where ``HARNESS_HOME`` says.
    """
    import io

    from harness.cli import main

    path = Path(folder) / "options.yaml"
    path.write_text(OPTIONS_PROTOCOL.format(model=model, options=options))
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        code = main(["validate", str(path)])
    return code, [line for line in stderr.getvalue().splitlines() if line.startswith("Error:")]


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for the checks (torch's CUDA matmuls and convolutions), restored afterwards.

    On Ampere and later GPUs TF32 rounds float32 products to 10 mantissa bits, so the same image
    scored in two batches can differ by ~1e-3: a batch-invariance or determinism check would then
    measure the hardware's rounding, not the detector.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def suite(
    name: str,
    factory: Callable[..., Any],
    options: Mapping[str, Any] | None = None,
    *,
    image_size: int = 32,
    expected_failures: Mapping[str, str] | None = None,
) -> list[tuple[str, Callable[[], None]]]:
    """(check name, zero-argument callable) pairs; expected failures are inverted with their reason."""
    expected = dict(expected_failures or {})
    unknown = set(expected) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks in expected_failures: {sorted(unknown)}; known: {sorted(CHECKS)}")
    # a detector declared to change while scoring cannot share one fit between the checks
    shared = "score_leaves_detector_unchanged" not in expected
    subject = Subject(name, factory, dict(options or {}), image_size, share_fits=shared)

    def call(check_name: str) -> None:
        try:
            with exact_float32():
                CHECKS[check_name](subject)
        except Exception as exc:  # a crash is a failure of the property being checked
            if check_name in expected:
                return
            if isinstance(exc, ConformanceError):
                raise
            raise ConformanceError(
                f"detector '{name}' fails '{check_name}': it raised {type(exc).__name__}: {exc}. "
                "Fix: see the traceback of this check"
            ) from exc
        if check_name in expected:
            raise ConformanceError(
                f"detector '{name}' passes '{check_name}', declared as an expected failure "
                f"({expected[check_name]}); remove the declaration"
            )

    return [(check_name, functools.partial(call, check_name)) for check_name in CHECKS]


def check_detector(
    name: str,
    factory: Callable[..., Any],
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Run every check; raise one :class:`ConformanceError` listing every property that failed."""
    failures = []
    for _, call in suite(name, factory, options, **kwargs):
        try:
            call()
        except ConformanceError as exc:
            failures.append(str(exc))
    if failures:
        raise ConformanceError("\n".join(failures))


def parametrize_checks(
    name: str, factory: Callable[..., Any], options: Mapping[str, Any] | None = None, **kwargs: Any
) -> Any:
    """A ``pytest.mark.parametrize`` over the checks: the test receives ``check`` and calls it."""
    import pytest

    pairs = suite(name, factory, options, **kwargs)
    return pytest.mark.parametrize("check", [call for _, call in pairs], ids=[f"{name}-{n}" for n, _ in pairs])
