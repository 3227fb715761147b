"""The conformance suite passes a good detector and names the property a broken one lacks."""

import os

import numpy as np
import pytest

import harness
from harness.testing import CHECKS, ConformanceError, check_detector, parametrize_checks


class Good:
    def fit(self, samples):
        self.mean = np.mean([s.image.astype(float) for s in samples], axis=0)

    def score(self, samples):
        maps = np.stack([np.abs(s.image - self.mean).mean(axis=-1) for s in samples])
        return harness.Scores(maps.reshape(len(samples), -1).mean(axis=1), maps)


class WrongCount(Good):
    def score(self, samples):
        return harness.Scores(super().score(samples).image[:-1])


class NaNScores(Good):
    def score(self, samples):
        image = super().score(samples).image.copy()
        image[0] = np.nan
        return harness.Scores(image)


class SmallMaps(Good):
    def score(self, samples):
        result = super().score(samples)
        return harness.Scores(result.image, result.maps[:, ::2, ::2])


class BatchNormalised(Good):
    def score(self, samples):
        image = super().score(samples).image
        return harness.Scores(image - image.mean())


class OrderDependent(Good):
    def score(self, samples):
        image = super().score(samples).image
        return harness.Scores(image + np.arange(len(image)))


class Unseeded(Good):
    def fit(self, samples):
        super().fit(samples)
        self.noise = int.from_bytes(os.urandom(2), "little")

    def score(self, samples):
        return harness.Scores(super().score(samples).image + self.noise)


class ReadsPaths(Good):
    def score(self, samples):
        image = super().score(samples).image
        return harness.Scores(image + np.array(["good" not in str(s.path) for s in samples], float))


class ReadsParentFolder(Good):
    def score(self, samples):
        image = super().score(samples).image
        return harness.Scores(image + np.array([s.path.parent.name == "good" for s in samples], float))


class LearnsWhileScoring(Good):
    def score(self, samples):
        result = super().score(samples)
        self.mean = self.mean + 1.0  # state changed by scoring: later scores differ
        return result


class Constant(Good):
    def score(self, samples):
        return harness.Scores(np.zeros(len(samples)))


def test_a_conforming_detector_passes():
    check_detector("good", Good)


@pytest.mark.parametrize(
    ("detector", "prop", "fix"),
    [
        (WrongCount, "one finite score per image", "one score per sample"),
        (NaNScores, "one finite score per image", "must be finite"),
        (SmallMaps, "maps match the input size", "resize maps"),
        (BatchNormalised, "batch invariance", "score each image independently"),
        (OrderDependent, "order invariance", "do not share state"),
        (Unseeded, "deterministic fit", "which the harness seeds"),
        (ReadsPaths, "never receives labels", "never read labels from paths"),
        (ReadsParentFolder, "never receives labels", "never read labels from paths"),
        (Constant, "works on the embedded dataset", "learns from the samples"),
        (LearnsWhileScoring, "score leaves the detector unchanged", "learn only in fit()"),
    ],
)
def test_a_broken_detector_fails_with_what_to_fix(detector, prop, fix):
    with pytest.raises(ConformanceError) as failure:
        check_detector(detector.__name__, detector)
    message = str(failure.value)
    assert f"detector '{detector.__name__}' fails '{prop}'" in message and fix in message


def test_expected_failures_are_declared_with_a_reason_and_must_fail():
    check_detector("batch", BatchNormalised, expected_failures={"batch_invariance": "normalises per batch"})
    with pytest.raises(ConformanceError, match="remove the declaration"):
        check_detector("good", Good, expected_failures={"batch_invariance": "stale"})


def test_score_only_checks_share_one_fit():
    fits = []

    class Counted(Good):
        def fit(self, samples):
            fits.append(1)
            super().fit(samples)

    check_detector("counted", Counted)
    assert len(fits) == 3  # one shared by the checks that only score, two for determinism
    fits.clear()
    with pytest.raises(ConformanceError, match="remove the declaration"):
        check_detector("counted", Counted, expected_failures={"score_leaves_detector_unchanged": "stale"})
    assert len(fits) == len(CHECKS) + 1  # declared to change while scoring: a fresh fit per check


@parametrize_checks("good", Good)
def test_parametrised_checks(check):
    check()


def test_every_check_is_listed():
    """Every check_* function in harness.testing is in CHECKS (so suites run it), and the broken
    detectors above between them fail every one of them."""
    import inspect

    import harness.testing as testing

    defined = {f for name, f in inspect.getmembers(testing, inspect.isfunction) if name.startswith("check_")}
    defined.discard(testing.check_detector)  # the runner, not a property
    assert defined == set(CHECKS.values())
    broken = (
        WrongCount,
        SmallMaps,
        BatchNormalised,
        OrderDependent,
        Unseeded,
        ReadsPaths,
        Constant,
        LearnsWhileScoring,
    )
    failed = set()
    for detector in broken:
        for name, call in testing.suite(detector.__name__, detector):
            try:
                call()
            except ConformanceError:
                failed.add(name)
    assert failed == set(CHECKS)


def test_checks_run_with_tf32_off_and_restore_it():
    torch = pytest.importorskip("torch")
    from harness.testing import exact_float32

    seen = []

    class Probe(Good):
        def score(self, samples):
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return super().score(samples)

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        check_detector("probe", Probe)
        assert seen and set(seen) == {(False, False)}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with exact_float32():
            assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
