"""``mean_colour``'s options are checked by ``harness validate``, before anything is fitted."""

import pytest

from harness.cli import main

PROTOCOL = """include: kde_vs_test
dataset: {{layout: synthetic, image_size: 32, categories: [disc]}}
models: [{{name: mean_colour, options: {options}}}]
"""


def _validate(tmp_path, monkeypatch, options):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL.format(options=options))
    return main(["validate", str(path)])


@pytest.mark.parametrize("options", ["{nope: 1}", "{epsilon: '2'}", "{epsilon: 0}"])
def test_bad_options_are_one_error_line(tmp_path, monkeypatch, capsys, options):
    key = options[1:].split(":")[0]
    assert _validate(tmp_path, monkeypatch, options) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"models.0.options.{key}'" in errors[0]


@pytest.mark.parametrize("options", ["{}", "{epsilon: 2.0}", "{epsilon: 2}"])
def test_defaults_and_good_values_validate(tmp_path, monkeypatch, options):
    assert _validate(tmp_path, monkeypatch, options) == 0
