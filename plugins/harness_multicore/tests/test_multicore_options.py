"""The models' options are checked by ``harness validate``, before anything is fitted."""

import pytest

from harness.testing import validate_options


def _validate(tmp_path, monkeypatch, name, options):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return validate_options(name, options, tmp_path)


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("mc2", "{nope: 1}", "nope"),
        ("mc4", "{n_predictors: 3}", "n_predictors"),  # fixed by the name
        ("mc8", "{coreset_size: '500'}", "coreset_size"),
        ("multicore", "{n_predictors: true}", "n_predictors"),
        ("multicore", "{candidates: [p3-s1-chebyshev]}", "candidates.0"),
        ("multicore", "{ssa: {buckets: 2.5}}", "ssa.buckets"),
        ("patchcore_plus", "{distance: chebyshev}", "distance"),
        ("patchcore_plus", "{stride: 0}", "stride"),
    ],
)
def test_bad_options_are_one_error_line(tmp_path, monkeypatch, name, options, key):
    code, errors = _validate(tmp_path, monkeypatch, name, options)
    assert code == 2
    assert len(errors) == 1 and f"models.0.options.{key}'" in errors[0]


@pytest.mark.parametrize("name", ["multicore", "mc2", "mc4", "mc8", "patchcore_plus"])
def test_defaults_and_the_smoke_scale_validate(tmp_path, monkeypatch, name):
    from test_multicore import SMALL, SMALL_PATCHCORE

    small = SMALL_PATCHCORE if name == "patchcore_plus" else SMALL
    assert _validate(tmp_path, monkeypatch, name, "{}")[0] == 0
    assert _validate(tmp_path, monkeypatch, name, str(small))[0] == 0
