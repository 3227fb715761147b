"""The anomalib adapter: local weights, offline errors, option checks, raw scores."""

import re

import numpy as np
import pytest
import torch
from harness_anomalib import AnomalibFactory
from harness_anomalib.catalogue import image_model_names, why_unavailable

from harness import ModelError, ProtocolError, Sample


def _samples(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    return [Sample(f"img{i}.png", lambda im=im: im) for i, im in enumerate(images)]


def test_every_anomalib_image_model_is_registered():
    names = image_model_names()
    assert {"padim", "patchcore", "stfpm", "fastflow", "efficient_ad", "dinomaly"} <= set(names)
    assert why_unavailable("padim") is None


def test_local_weights_file_is_loaded_into_the_backbone(tmp_path):
    import timm

    torch.manual_seed(123)
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    detector = AnomalibFactory("padim")(backbone="resnet18", weights=str(tmp_path), n_features=16)
    detector.fit(_samples(4))
    assert detector.weights == "local file: resnet18.pth"
    loaded = detector.model.model.feature_extractor.feature_extractor.state_dict()
    assert torch.equal(loaded["conv1.weight"].cpu(), reference.state_dict()["conv1.weight"])  # any device


def test_weights_of_another_architecture_are_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, path)
    with pytest.raises(ModelError, match=r"no tensor of other\.pth matches"):
        AnomalibFactory("padim")(backbone="resnet18", weights=str(path)).fit(_samples(2))


def test_pretrained_offline_is_a_clear_error():
    with pytest.raises(ModelError, match=r"options.weights=.*pre_trained=false"):
        AnomalibFactory("padim")(backbone="resnet18").fit(_samples(2))


def test_unknown_option_names_the_closest():
    with pytest.raises(ProtocolError, match="Did you mean 'backbone'"):
        AnomalibFactory("padim").check_options({"backbon": "resnet18"}, key="models.0.options")


def test_raw_scores_and_maps_at_input_size():
    detector = AnomalibFactory("padim")(backbone="resnet18", pre_trained=False, n_features=16)
    torch.manual_seed(0)
    detector.fit(_samples(6))
    scores = detector.score(_samples(3, seed=1))
    assert detector.weights == "random-init"
    assert scores.image.shape == (3,) and np.isfinite(scores.image).all()
    assert scores.maps.shape == (3, 32, 32)
    assert len(set(np.round(scores.image, 6))) == 3  # raw, not normalised and clamped to 0/1


@pytest.mark.slow
def test_option_names_read_from_source_match_the_imported_signatures():
    from harness_anomalib.detector import constructor_options
    from harness_anomalib.signatures import source_options

    read = {name: source_options(name) for name in image_model_names()}
    assert sum(names is not None for names in read.values()) >= 0.8 * len(read)  # the rest are imported
    for name, names in read.items():
        if names is not None:
            assert set(names) == constructor_options(name), name


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("n_features", "abc", "'n_features' should be int | None, got 'abc'"),
        ("pre_trained", "yes", "'pre_trained' should be bool"),
        ("layers", "layer1", "'layers' should be list[str]"),
        ("batch_size", 0, "'batch_size' should be a positive integer"),
        ("accelerator", "tpu", "'accelerator' should be one of auto"),
        ("weights", "/no/such/backbone.pth", "weights: no file or folder"),
    ],
)
def test_option_values_of_the_wrong_type_are_refused_before_any_fit(option, value, expected):
    with pytest.raises(ProtocolError, match=re.escape(expected)) as raised:
        AnomalibFactory("padim").check_options({option: value}, key="models.0.options")
    assert raised.value.key == f"models.0.options.{option}"


def test_every_models_own_defaults_pass_the_value_check():
    """The types read from anomalib's annotations never refuse anomalib's own default values."""
    import ast

    from harness_anomalib import signatures

    checked = 0
    for name in image_model_names():
        constructor = signatures._constructor(name)
        if constructor is None:
            continue
        positional, defaults = [*constructor.args.posonlyargs, *constructor.args.args], constructor.args.defaults
        pairs = [
            *zip(positional[len(positional) - len(defaults) :], defaults, strict=True),
            *zip(constructor.args.kwonlyargs, constructor.args.kw_defaults, strict=True),
        ]
        for argument, default in pairs:
            if default is None or argument.arg in signatures.SET_BY_ADAPTER:
                continue
            try:
                value = ast.literal_eval(default)
            except (ValueError, TypeError, SyntaxError):
                continue
            AnomalibFactory(name).check_options({argument.arg: value}, key="models.0.options")
            checked += 1
    assert checked > 100
