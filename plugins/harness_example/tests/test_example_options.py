"""``mean_colour``'s options are checked by ``harness validate``, before anything is fitted."""

import pytest

from harness.testing import validate_options


def _validate(tmp_path, monkeypatch, options):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return validate_options("mean_colour", options, tmp_path)


@pytest.mark.parametrize("options", ["{nope: 1}", "{epsilon: '2'}", "{epsilon: 0}"])
def test_bad_options_are_one_error_line(tmp_path, monkeypatch, options):
    key = options[1:].split(":")[0]
    code, errors = _validate(tmp_path, monkeypatch, options)
    assert code == 2
    assert len(errors) == 1 and f"models.0.options.{key}'" in errors[0]


@pytest.mark.parametrize("options", ["{}", "{epsilon: 2.0}", "{epsilon: 2}"])
def test_defaults_and_good_values_validate(tmp_path, monkeypatch, options):
    assert _validate(tmp_path, monkeypatch, options)[0] == 0
