"""Dinomaly's options are declared as a model and checked by ``harness validate``, before anything is fitted."""

import inspect

import pytest
from harness_dinomaly_recon import harness_models
from harness_dinomaly_recon.detector import DinomalyDetector
from harness_dinomaly_recon.options import DinomalyOptions

from harness.testing import validate_options


@pytest.mark.parametrize("model", ["dinomaly_recon", "dinomaly_plain"])
@pytest.mark.parametrize(
    ("options", "key"),
    [("{nope: 1}", "nope"), ("{iterations: '3'}", "iterations"), ("{pretrained: 1}", "pretrained"), ("{lr: x}", "lr")],
)
def test_validate_refuses_an_unknown_or_wrong_typed_option(tmp_path, model, options, key):
    code, errors = validate_options(model, options, tmp_path)
    assert code == 2 and len(errors) == 1 and f"models.0.options.{key}" in errors[0]


def test_the_defaults_and_the_smoke_options_validate(tmp_path):
    assert DinomalyOptions.model_validate(DinomalyOptions().model_dump()) == DinomalyOptions()
    assert validate_options("dinomaly_recon", "{}", tmp_path) == (0, [])
    small = "{encoder: vit_small_patch14_reg4_dinov2, pretrained: false, iterations: 3, batch_size: 4}"
    assert validate_options("dinomaly_plain", small, tmp_path) == (0, [])


def test_one_field_per_constructor_option_with_its_default():
    assert {factory.options_model for factory in harness_models().values()} == {DinomalyOptions}
    defaults = {name: p.default for name, p in inspect.signature(DinomalyDetector).parameters.items()}
    del defaults["reconstruction"]  # set by the model name
    assert {name: field.default for name, field in DinomalyOptions.model_fields.items()} == defaults
