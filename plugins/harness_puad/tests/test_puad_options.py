"""PUAD's options are declared as a model and checked by ``harness validate``, before anything is fitted."""

import inspect

import pytest
from harness_puad import harness_models
from harness_puad.detector import PUAD, TRAINER_OPTIONS
from harness_puad.options import PUADOptions

from harness.testing import validate_options


@pytest.mark.parametrize("model", ["puad", "puad_efficientad", "puad_mahalanobis"])
@pytest.mark.parametrize(
    ("options", "key"),
    [
        ("{nope: 1}", "nope"),
        ("{max_steps: '3'}", "max_steps"),
        ("{penalty: 0}", "penalty"),
        ("{features: x}", "features"),
    ],
)
def test_validate_refuses_an_unknown_or_wrong_typed_option(tmp_path, model, options, key):
    code, errors = validate_options(model, options, tmp_path)
    assert code == 2 and len(errors) == 1 and f"models.0.options.{key}" in errors[0]


def test_the_defaults_and_the_smoke_options_validate(tmp_path):
    assert PUADOptions.model_validate(PUADOptions().model_dump()) == PUADOptions()
    assert validate_options("puad", "{}", tmp_path) == (0, [])
    assert validate_options("puad", "{pretrained: false, penalty: false, max_steps: 3}", tmp_path) == (0, [])


def test_one_field_per_constructor_option_with_its_default():
    assert {factory.options_model for factory in harness_models().values()} == {PUADOptions}
    parameters = inspect.signature(PUAD).parameters
    direct = {name: p.default for name, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
    del direct["mode"]  # set by the model name
    assert set(PUADOptions.model_fields) == set(direct) | set(TRAINER_OPTIONS)
    assert all(PUADOptions.model_fields[name].default == default for name, default in direct.items())
